// Helia (helia 7 + @helia/unixfs 8) as the independent peer of the Boxless blob
// interop tests and bench. Importing Helia takes seconds, so one process serves a
// whole session: it starts a Helia node on loopback TCP (Noise, yamux), prints
// {event:"ready", addrs, peerId}, then runs one JSON command per stdin line:
//   {cmd:"add", file, chunkSize?, maxLinks?}   -> {event:"added", cid, ms}
//   {cmd:"fetch", addr, cid, out?}              -> {event:"fetched", bytes, ms, sha256, rss}
//   {cmd:"quit"} or end of stdin                -> {event:"done"}
// Options (argv[2], JSON): timeoutMs, the script's own deadline.
import { createHash } from 'node:crypto'
import { readFileSync, createWriteStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { createHelia } from 'helia'
import { libp2pDefaults } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import { multiaddr } from '@multiformats/multiaddr'

const opts = JSON.parse(process.argv[2] ?? '{}')
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const deadline = setTimeout(() => { emit({ event: 'timeout' }); process.exit(3) }, opts.timeoutMs ?? 60000)

async function makeHelia () {
  const cfg = libp2pDefaults()
  cfg.addresses = { listen: ['/ip4/127.0.0.1/tcp/0'] }
  cfg.transports = [cfg.transports[1]] // tcp
  cfg.connectionEncrypters = [cfg.connectionEncrypters[0]] // noise
  cfg.streamMuxers = [cfg.streamMuxers[0]] // yamux
  cfg.peerDiscovery = []
  cfg.services = { identify: cfg.services.identify, ping: cfg.services.ping }
  // no delegated routers or HTTP gateways: this is a loopback test, bitswap only
  const helia = await createHelia({ libp2p: cfg, routers: [], http: { delegatedRouters: [], recursiveGateways: [] } })
  await helia.start()
  return helia
}

async function add (fs, cmd) {
  const start = Date.now()
  const cid = await fs.addBytes(readFileSync(cmd.file), {
    chunker: fixedSize({ chunkSize: cmd.chunkSize ?? 262144 }),
    layout: balanced({ maxChildrenPerNode: cmd.maxLinks ?? 174 }),
    rawLeaves: true,
    cidVersion: 1
  })
  return { event: 'added', cid: cid.toString(), ms: Date.now() - start }
}

async function fetch (helia, fs, cmd) {
  await helia.libp2p.dial(multiaddr(cmd.addr))
  const start = Date.now()
  const hash = createHash('sha256')
  const out = cmd.out ? createWriteStream(cmd.out) : null
  let bytes = 0
  let rss = process.memoryUsage().rss
  for await (const buf of fs.cat(CID.parse(cmd.cid).toString(), { signal: AbortSignal.timeout(cmd.timeoutMs ?? 60000), providers: [multiaddr(cmd.addr)] })) {
    hash.update(buf)
    bytes += buf.length
    if (out && !out.write(buf)) await new Promise((resolve) => out.once('drain', resolve))
    if ((bytes & 0xffffff) < buf.length) rss = Math.max(rss, process.memoryUsage().rss)
  }
  if (out) await new Promise((resolve) => out.end(resolve))
  return { event: 'fetched', bytes, ms: Date.now() - start, sha256: hash.digest('hex'), rss }
}

async function main () {
  const helia = await makeHelia()
  const fs = unixfs(helia)
  emit({ event: 'ready', peerId: helia.libp2p.peerId.toString(), addrs: helia.libp2p.getMultiaddrs().map(String) })
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line.trim()) continue
    const cmd = JSON.parse(line)
    if (cmd.cmd === 'quit') break
    try {
      emit(cmd.cmd === 'add' ? await add(fs, cmd) : await fetch(helia, fs, cmd))
    } catch (err) {
      emit({ event: 'failed', message: String(err?.message ?? err), stack: String(err?.stack) })
    }
  }
  await helia.stop()
}

main().then(() => { clearTimeout(deadline); emit({ event: 'done' }); process.exit(0) }, (err) => {
  emit({ event: 'error', message: String(err?.stack ?? err) })
  process.exit(2)
})
