// A js-libp2p relay peer set up the way js-waku's @waku/relay sets up
// GossipSub (wakuGossipSub in packages/relay/src/relay.ts: StrictNoSign,
// message id = sha256(data), multicodec /vac/waku/relay/2.0.0, no floodsub
// fallback, gossipsub's default D parameters), on the libp2p that @waku/sdk
// builds (websockets, noise, mplex, identify, ping, waku metadata).
// @waku/relay itself is not on npm for this libp2p generation (WAKU-NOTES.md).
//
// options: {addr, pubsubTopic, contentTopic, publish: N, expect: M, hold, timeoutMs}
//          hold: after publishing and receiving, stay connected until stdin
//          closes (stopping at once would drop what is still in the outbound
//          stream buffer: a burst of 500 lost ~40% that way)
// prints:  {"event":"mesh", peers}       once our node is in its mesh for the topic
//          {"event":"published", hashes} after publishing N WakuMessages
//          {"event":"received", hash, payload (hex), contentTopic, timestamp}
//                                        per WakuMessage relayed to it, until M

import { GossipSub } from "@chainsafe/libp2p-gossipsub";
import { SignaturePolicy } from "@chainsafe/libp2p-gossipsub/types";
import { multiaddr } from "@multiformats/multiaddr";
import { sha256 } from "@noble/hashes/sha256";
import { messageHashStr } from "@waku/core";
import { proto_message } from "@waku/proto";
import { createLibp2pAndUpdateOptions } from "@waku/sdk";

import { CLUSTER_ID, NUM_SHARDS, emit, released, run, toHex, until } from "./lib.mjs";

const RELAY_CODECS = ["/vac/waku/relay/2.0.0"];

function wakuGossipSub() {
  return (components) => {
    const pubsub = new GossipSub(components, {
      msgIdFn: ({ data }) => sha256(data),
      globalSignaturePolicy: SignaturePolicy.StrictNoSign,
      fallbackToFloodsub: false
    });
    pubsub.multicodecs = RELAY_CODECS;
    return pubsub;
  };
}

run(async ({ addr, pubsubTopic, contentTopic, publish = 0, expect = 0, hold = false }) => {
  const libp2p = await createLibp2pAndUpdateOptions({
    defaultBootstrap: false,
    networkConfig: { clusterId: CLUSTER_ID, numShardsInCluster: NUM_SHARDS },
    libp2p: {
      filterMultiaddrs: false,
      hideWebSocketInfo: true,
      services: { pubsub: wakuGossipSub() }
    }
  });
  await libp2p.start();
  const gossipsub = libp2p.services.pubsub;
  let received = 0;
  let allReceived;
  const receivedAll = new Promise((resolve) => (allReceived = resolve));
  if (expect === 0) allReceived();
  gossipsub.addEventListener("gossipsub:message", ({ detail }) => {
    if (detail.msg.topic !== pubsubTopic) return;
    const msg = proto_message.WakuMessage.decode(detail.msg.data);
    // Like a js-waku decoder: only our content topic. Others share the shard,
    // and gossip (IHAVE/IWANT) hands a newcomer recent messages of the topic.
    if (msg.contentTopic !== contentTopic) return;
    emit("received", {
      hash: messageHashStr(pubsubTopic, msg),
      payload: toHex(msg.payload),
      contentTopic: msg.contentTopic,
      timestamp: String(msg.timestamp ?? ""),
      // StrictNoSign: these must be absent on the wire
      from: detail.msg.from?.toString() ?? null,
      seqno: detail.msg.sequenceNumber?.toString() ?? null
    });
    received += 1;
    if (received >= expect) allReceived();
  });
  gossipsub.subscribe(pubsubTopic);

  const ma = multiaddr(addr);
  const peerId = ma.getPeerId();
  await libp2p.dial(ma);
  const peers = await until(
    `our node in the ${pubsubTopic} mesh`,
    () => {
      const mesh = gossipsub.getMeshPeers(pubsubTopic);
      return mesh.includes(peerId) ? mesh : null;
    },
    15000
  );
  emit("mesh", { peers });

  const hashes = [];
  for (let i = 0; i < publish; i++) {
    const msg = {
      payload: new TextEncoder().encode(`from js #${i + 1}`),
      contentTopic,
      version: 0,
      timestamp: BigInt(Date.now()) * 1000000n + BigInt(i)
    };
    const { recipients } = await gossipsub.publish(pubsubTopic, proto_message.WakuMessage.encode(msg));
    if (!recipients.some((r) => r.toString() === peerId)) {
      throw new Error(`publish #${i + 1} did not go to our node (recipients: ${recipients})`);
    }
    hashes.push(messageHashStr(pubsubTopic, msg));
  }
  if (publish) emit("published", { hashes });

  await receivedAll;
  if (hold) {
    emit("holding");
    await released();
  }
  await libp2p.stop();
});
