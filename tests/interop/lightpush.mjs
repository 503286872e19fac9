// A js-waku light node sends messages with light push (19/WAKU2-LIGHTPUSH,
// v3 by default; the legacy 2.0.0-beta1 codec with useLegacy) to a Boxless node.
//
// options: {addr, contentTopic, count, useLegacy, idleMs, tag, timeoutMs}
//          idleMs: stay connected this long before sending (js-waku opened its
//          light push streams at identify and will use them then)
// prints:  {"event":"sent", hash, payload (hex), successes: [peer ids], failures: [..]}
//          one per message

import { messageHashStr } from "@waku/core";
import { Protocols } from "@waku/sdk";

import { dial, emit, lightNode, readyFor, run, toHex } from "./lib.mjs";

run(async ({ addr, contentTopic, count = 1, useLegacy = false, idleMs = 0, tag = "lightpush" }) => {
  const waku = await lightNode();
  const { remotePeer } = await dial(waku, addr);
  const encoder = waku.createEncoder({ contentTopic });
  // js-waku's LightPush protocol enum covers both codecs
  await readyFor(waku, remotePeer, Protocols.LightPush, encoder.pubsubTopic);
  if (idleMs) {
    await new Promise((r) => setTimeout(r, idleMs));
    const open = waku.libp2p.getConnections(remotePeer).filter((c) => c.status === "open");
    emit("after-idle", { open: open.length });
  }
  for (let i = 1; i <= count; i++) {
    const message = {
      payload: new TextEncoder().encode(`${tag} #${i}`),
      timestamp: new Date()
    };
    // The hash our node will compute: same proto object the encoder sends.
    const proto = await encoder.toProtoObj(message);
    const result = await waku.lightPush.send(encoder, message, { autoRetry: false, useLegacy });
    emit("sent", {
      hash: messageHashStr(encoder.pubsubTopic, proto),
      payload: toHex(message.payload),
      successes: result.successes.map(String),
      failures: result.failures.map((f) => ({ error: f.error, peerId: f.peerId?.toString() }))
    });
  }
  await waku.stop();
});
