// A js-waku light node subscribes with filter (12/WAKU2-FILTER v2) to a
// content topic on a Boxless node and reports what is pushed to it.
//
// options: {addr, contentTopic, expect: M, timeoutMs}
// prints:  {"event":"subscribed", ok}    once the subscription is acknowledged
//          {"event":"received", hash, payload (hex), pubsubTopic, contentTopic}
//          per pushed message, until M have come

import { Protocols } from "@waku/sdk";

import { dial, emit, lightNode, readyFor, run, toHex } from "./lib.mjs";

run(async ({ addr, contentTopic, expect = 1 }) => {
  const waku = await lightNode();
  const { remotePeer } = await dial(waku, addr);
  const decoder = waku.createDecoder({ contentTopic });
  await readyFor(waku, remotePeer, Protocols.Filter, decoder.pubsubTopic);
  let received = 0;
  let done;
  const all = new Promise((resolve) => (done = resolve));
  const ok = await waku.filter.subscribe(decoder, (msg) => {
    emit("received", {
      hash: msg.hashStr,
      payload: toHex(msg.payload),
      pubsubTopic: msg.pubsubTopic,
      contentTopic: msg.contentTopic
    });
    received += 1;
    if (received >= expect) done();
  });
  emit("subscribed", { ok });
  if (!ok) throw new Error("filter subscription was refused");
  await all;
  await waku.filter.unsubscribe(decoder);
  await waku.stop();
});
