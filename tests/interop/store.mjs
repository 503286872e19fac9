// A js-waku light node queries a Boxless node's store (13/WAKU2-STORE v3).
//
// options: {addr, contentTopic, api: "ordered" | "generator", pageSize,
//           forward, hashes: [hex] (a message-hash lookup), idleMs, timeoutMs}
//          idleMs: wait this long between connecting and querying (js-waku opens
//          its store stream right after identify and uses it whenever asked)
// prints:  {"event":"ready", pubsubTopic}
//          {"event":"page", size}             (api "generator": one per page)
//          {"event":"message", hash, payload (hex), timestamp (ns string),
//           pubsubTopic, contentTopic}        (one per message, in order received)

import { Protocols } from "@waku/sdk";

import { dial, emit, fromHex, lightNode, readyFor, run, toHex } from "./lib.mjs";

function report(msg) {
  emit("message", {
    hash: msg.hashStr,
    payload: toHex(msg.payload),
    // Decoded messages carry the wire timestamp (ns) as a bigint in proto.
    timestamp: String(msg.proto?.timestamp ?? ""),
    pubsubTopic: msg.pubsubTopic,
    contentTopic: msg.contentTopic
  });
}

run(async ({ addr, contentTopic, api = "ordered", pageSize, forward = true, hashes, idleMs = 0 }) => {
  const waku = await lightNode();
  const { remotePeer } = await dial(waku, addr);
  const decoder = waku.createDecoder({ contentTopic });
  await readyFor(waku, remotePeer, Protocols.Store, decoder.pubsubTopic);
  if (idleMs) await new Promise((r) => setTimeout(r, idleMs));
  emit("ready", { pubsubTopic: decoder.pubsubTopic });
  const query = { paginationForward: forward };
  if (pageSize !== undefined) query.paginationLimit = pageSize;
  if (hashes) query.messageHashes = hashes.map(fromHex);
  if (api === "generator") {
    for await (const page of waku.store.queryGenerator([decoder], query)) {
      const msgs = await Promise.all(page);
      emit("page", { size: msgs.length, decoded: msgs.filter(Boolean).length });
      for (const msg of msgs) if (msg) report(msg);
    }
  } else {
    await waku.store.queryWithOrderedCallback([decoder], (msg) => report(msg), query);
  }
  await waku.stop();
});
