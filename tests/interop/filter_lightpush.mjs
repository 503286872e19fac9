// The independent light-node check of issue 10: one js-waku light node
// subscribes with filter to a content topic on a Boxless node, then light
// pushes `count` messages itself (every `otherEvery`-th one on another content
// topic, which must not come back), and counts what filter pushes back to it
// within `waitMs` of the last send.
//
// options: {addr, contentTopic, otherTopic, count: 25, otherEvery: 5,
//           waitMs: 3000, concurrent: false, timeoutMs}
//          concurrent: send the light pushes all at once instead of one by one
// prints:  {"event":"subscribed", ok, ms}        (ms: subscribe call duration)
//          {"event":"sent", ok, hash, contentTopic}  one per light push
//          {"event":"result", expected, received, unexpected, firstMs, lastMs,
//           missing: [hashes]}                      once, at the end
//          firstMs/lastMs: first/last push after the first send (null if none)

import { messageHashStr } from "@waku/core";
import { Protocols } from "@waku/sdk";

import { dial, emit, lightNode, readyFor, run } from "./lib.mjs";

run(async ({ addr, contentTopic, otherTopic, count = 25, otherEvery = 5, waitMs = 3000, concurrent = false }) => {
  const waku = await lightNode();
  const { remotePeer } = await dial(waku, addr);
  const decoder = waku.createDecoder({ contentTopic });
  const wanted = waku.createEncoder({ contentTopic });
  const other = waku.createEncoder({ contentTopic: otherTopic });
  if (other.pubsubTopic !== wanted.pubsubTopic) {
    throw new Error("otherTopic must map to the same shard as contentTopic");
  }
  await readyFor(waku, remotePeer, Protocols.Filter, decoder.pubsubTopic);
  await readyFor(waku, remotePeer, Protocols.LightPush, decoder.pubsubTopic);

  const received = new Set();
  let unexpected = 0;
  let firstSendAt = null;
  let firstMs = null;
  let lastMs = null;
  const t0 = Date.now();
  const ok = await waku.filter.subscribe(decoder, (msg) => {
    if (msg.contentTopic !== contentTopic) {
      unexpected += 1;
      return;
    }
    received.add(msg.hashStr);
    const at = Date.now() - (firstSendAt ?? Date.now());
    firstMs ??= at;
    lastMs = at;
  });
  emit("subscribed", { ok, ms: Date.now() - t0 });
  if (!ok) throw new Error("filter subscription was refused");

  const expected = [];
  let failedSends = 0;
  const sendOne = async (i) => {
    const isOther = otherEvery > 0 && i % otherEvery === 0;
    const encoder = isOther ? other : wanted;
    const message = { payload: new TextEncoder().encode(`soak #${i}`), timestamp: new Date() };
    const hash = messageHashStr(encoder.pubsubTopic, await encoder.toProtoObj(message));
    firstSendAt ??= Date.now();
    const result = await waku.lightPush.send(encoder, message, { autoRetry: false });
    const sentOk = result.successes.length > 0;
    emit("sent", { ok: sentOk, hash, contentTopic: encoder.contentTopic, failures: result.failures });
    if (sentOk && !isOther) expected.push(hash);
    if (!sentOk) failedSends += 1;
  };
  if (concurrent) {
    await Promise.all(Array.from({ length: count }, (_, i) => sendOne(i + 1)));
  } else {
    for (let i = 1; i <= count; i++) await sendOne(i);
  }
  const deadline = Date.now() + waitMs;
  while (received.size < expected.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  emit("result", {
    expected: expected.length,
    failedSends,
    received: received.size,
    unexpected,
    firstMs,
    lastMs,
    missing: expected.filter((h) => !received.has(h))
  });
  await waku.stop();
});
