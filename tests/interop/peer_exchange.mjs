// js-waku meets our ENRs and our peer exchange service (34/WAKU2-PEER-EXCHANGE).
//
// options: {addr, enrs: ["enr:..."], expect, dialOne}
//   addr: our service's /ws address; enrs: records to decode with @waku/enr;
//   expect: how many peers to wait for from peer exchange discovery;
//   dialOne: dial one discovered peer (not the service) by the id js derived.
// prints:  {"event":"decoded", peerId, multiaddrs, waku2, shardInfo}  (one per enr)
//          {"event":"js-enr", text, peerId}   (a record js-waku signed, for us to decode)
//          {"event":"discovered", peers: {peerId: [multiaddr]}}
//          {"event":"dialed", peerId, remote}

import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { EnrCreator, EnrDecoder } from "@waku/enr";
import { createLightNode } from "@waku/sdk";

// EnrEncoder is not re-exported by the package index.
import { EnrEncoder } from "./node_modules/@waku/enr/dist/encoder.js";
import { CLUSTER_ID, NUM_SHARDS, emit, run, until } from "./lib.mjs";

run(async ({ addr, enrs = [], expect = 0, serviceId }) => {
  for (const text of enrs) {
    const enr = await EnrDecoder.fromString(text);
    emit("decoded", {
      peerId: enr.peerId?.toString(),
      multiaddrs: enr.peerInfo?.multiaddrs.map((m) => m.toString()),
      waku2: enr.waku2,
      shardInfo: enr.shardInfo
    });
  }

  const key = await generateKeyPair("secp256k1");
  const own = await EnrCreator.fromPeerId(peerIdFromPrivateKey(key));
  own.ip = "10.1.2.3";
  own.tcp = 60001;
  own.multiaddrs = [multiaddr("/dns4/example.org/tcp/443/wss")];
  own.waku2 = { relay: true, store: false, filter: true, lightPush: true };
  emit("js-enr", {
    text: await EnrEncoder.toString(own, key.raw),
    peerId: peerIdFromPrivateKey(key).toString()
  });

  if (!addr) return;
  const waku = await createLightNode({
    defaultBootstrap: false,
    discovery: { peerExchange: true, dns: false, peerCache: false },
    networkConfig: { clusterId: CLUSTER_ID, numShardsInCluster: NUM_SHARDS },
    libp2p: { filterMultiaddrs: false, hideWebSocketInfo: true }
  });
  const found = new Map();
  waku.libp2p.addEventListener("peer:discovery", (e) => {
    found.set(e.detail.id.toString(), e.detail.multiaddrs.map((m) => m.toString()));
  });
  // A plain libp2p dial: identify then triggers js-waku's peer exchange query.
  await waku.libp2p.dial(multiaddr(addr));
  await until(`${expect} peers from peer exchange`, () => found.size >= expect, 15000);
  emit("discovered", { peers: Object.fromEntries(found) });
  const other = [...found.entries()].find(([id]) => id !== serviceId);
  if (other) {
    const conn = await waku.libp2p.dial(multiaddr(other[1][0]));
    emit("dialed", { peerId: other[0], remote: conn.remotePeer.toString() });
  }
  await waku.stop();
});
