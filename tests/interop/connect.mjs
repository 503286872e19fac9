// A js-waku light node dials a Boxless node and reports what it learned:
// the connection (transport, encryption, muxer), what identify said, and the
// cluster/shards our metadata answered with, as js-waku decoded and stored them.
//
// options: {addr, topics: [pubsub topic], clusterId, expectHangUp, timeoutMs}
// prints:  {"event":"connected", remoteAddr, encryption, multiplexer, status}
//          {"event":"identified", peerId, protocols, agentVersion, listenAddrs, ...}
//          then, on our cluster:
//            {"event":"metadata", clusterId, shards, onShard: {<topic>: bool}}
//            {"event":"still-connected", open}
//          or with expectHangUp (a light node of another cluster):
//            {"event":"hung-up", afterMs}   once our node has closed the connection

import { decodeRelayShard } from "@waku/utils";

import { CLUSTER_ID, dial, emit, lightNode, run, until } from "./lib.mjs";

run(async ({ addr, topics = [], clusterId = CLUSTER_ID, expectHangUp = false }) => {
  const waku = await lightNode(clusterId);
  const identified = new Promise((resolve) =>
    waku.libp2p.addEventListener("peer:identify", (e) => resolve(e.detail), { once: true })
  );
  const dialedAt = Date.now();
  const conn = await dial(waku, addr);
  emit("connected", {
    remoteAddr: conn.remoteAddr.toString(),
    encryption: conn.encryption,
    multiplexer: conn.multiplexer,
    status: conn.status
  });
  const peerId = conn.remotePeer;
  const openConns = () => waku.libp2p.getConnections(peerId).filter((c) => c.status === "open");

  if (expectHangUp) {
    await until("our node to hang up", () => openConns().length === 0, 15000);
    emit("hung-up", { afterMs: Date.now() - dialedAt });
    await waku.stop();
    return;
  }

  const id = await identified;
  emit("identified", {
    peerId: id.peerId.toString(),
    protocols: [...id.protocols].sort(),
    agentVersion: id.agentVersion,
    protocolVersion: id.protocolVersion,
    listenAddrs: id.listenAddrs.map(String),
    signedPeerRecord: Boolean(id.signedPeerRecord)
  });
  const shardInfo = await until(
    "the metadata handshake",
    async () => {
      const bytes = (await waku.libp2p.peerStore.get(peerId)).metadata.get("shardInfo");
      return bytes ? decodeRelayShard(bytes) : null;
    },
    10000
  );
  const onShard = {};
  for (const topic of topics) {
    // What js-waku's peer manager asks before using a peer for a topic.
    onShard[topic] = await waku.connectionManager.isPeerOnTopic(peerId, topic);
  }
  emit("metadata", { clusterId: shardInfo.clusterId, shards: shardInfo.shards, onShard });
  emit("still-connected", { open: openConns().length });
  await waku.stop();
});
