// Group calls (docs/calls.md "Group calls"): a mesh of up to 8 people. This
// browser holds one RTCPeerConnection per other participant; the node relays each
// pair's offer/answer/ICE candidates end-to-end encrypted and decides who is in
// (/api/v1/group-calls...). Of each pair the smaller key offers (the node says
// `need_offer`), so offers never cross. Shows: the ring (and a banner in the group
// chat while a call runs there), the grid of participants with names, muted /
// camera-off state and who is speaking (inbound audio level), each pair's call
// code, and leave. Media helpers come from the 1:1 module (js/call.js).
// Only the UI that started or joined holds media (`owner`, the node's `session`);
// others follow, and offer "Rejoin" (a reloaded page, a second tab): the node then
// makes new connections with everyone and this page holds the media.
// Repairs: a pair whose connection fails (or stays disconnected 3 s) is restarted
// by the side whose turn it is to offer (an ICE restart on the same connection),
// 3 attempts with backoff; the other side asks for a new connection if that does
// not come. Then the tile says "Connection lost" with a Retry. Each pair has a
// round (`epoch`: a new connection, `gen`: a new offer/answer) from the node.

import { call } from "./api.js";
import { firstCandidates, formatDuration, glyph, media, startTone, stopTone } from "./call.js";
import { h, mount, toast } from "./dom.js";
import { group } from "./store.js";

let state = null; // GET /group-calls/current .call
let iceServers = [];
let owner = false;
let mySession = 0; // the node's `session` when this page took the media
let localStream = null;
// key hex -> {pc, epoch, gen, stream, remoteSet, iceUsed, pending, described, offering,
//             stats, badSince, attempts, nextTry, lost}
const peers = new Map();
const DISCONNECTED_GRACE_MS = 5000; // "disconnected" this long counts as failed
const REPAIRS = 3; // attempts per outage, RETRY_AFTER_MS x 1, 2, 4 apart
const RETRY_AFTER_MS = 5000;
const CONNECT_GRACE_MS = 45000; // no offer/answer by then counts as failed
let screen = null;
let localVideo = null; // our own tile's <video>, kept across renders
let syncing = Promise.resolve();
let dirty = false;
let meter = null; // the stats timer (who is speaking, muted, camera off)
let clock = null;
let off = {}; // kind -> true while our mic is muted / camera is off
// The mesh sends one copy of our video per participant (uplink x (n - 1)): ask for less.
const MESH_VIDEO = { width: { ideal: 320 }, height: { ideal: 240 }, frameRate: { ideal: 15 } };
const banners = new Set(); // mounted group-chat banners: {chat, el}

/** A group call holds our media in this UI (1:1 calls refuse to start meanwhile). */
export function inGroupCall() {
  return owner;
}

function groupName(chat) {
  const g = group(chat.split(":")[1]);
  return (g && g.name) || "Group";
}

// -- actions -----------------------------------------------------------------------------

/** Start a call in a group chat (`chat` is `group:<gid>`) and ring its members. */
export async function startGroupCall(chat, { video = false } = {}) {
  if (owner || state) {
    toast(state && !owner ? "A call runs in a group: join it from its banner" : "You are already in a call", "error");
    return;
  }
  await exclusive(async () => {
    try {
      await fetchCurrent();
      localStream = await media(video && MESH_VIDEO);
      state = await call("POST", "/group-calls", { chat, video });
      mySession = state.session;
      owner = true;
      render();
    } catch (err) {
      teardown();
      state = null;
      render();
      toast(`Could not start the call: ${err.message}`, "error");
    }
  });
  schedule();
}

// Start, join and each sync pass run one at a time, in order.
function exclusive(fn) {
  syncing = syncing.then(fn).catch((err) => console.warn("group call", err));
  return syncing;
}

async function join() {
  if (!state || owner) return;
  const ringing = state;
  stopTone();
  await exclusive(async () => {
    try {
      localStream = await media(ringing.video && MESH_VIDEO);
      // (in a call we are in already — a reloaded page — the node rejoins)
      state = await call("POST", `/group-calls/${ringing.call_id}/join`);
      mySession = state.session;
      owner = true;
      render();
      refreshBanners();
    } catch (err) {
      toast(`Could not join: ${err.message}`, "error");
      if (ringing.ringing) leave();
      else teardown(); // a rejoin that failed: the call stays, "Rejoin" stays offered
    }
  });
  schedule();
}

function leave() {
  const s = state;
  if (!s) return;
  call("POST", `/group-calls/${s.call_id}/leave`).catch(() => {});
  teardown();
  state = null;
  render();
  refreshBanners();
}

async function fetchCurrent() {
  const got = await call("GET", "/group-calls/current");
  iceServers = got.ice_servers || iceServers;
  return got.call;
}

function teardown() {
  stopTone();
  clearInterval(meter);
  clearInterval(clock);
  meter = null;
  clock = null;
  for (const p of peers.values()) p.pc.close();
  peers.clear();
  if (localStream) localStream.getTracks().forEach((t) => t.stop());
  localStream = null;
  localVideo = null;
  owner = false;
  off = {};
}

// -- the mesh: one peer connection per participant ------------------------------------------

function peerFor(x) {
  const key = x.key;
  let p = peers.get(key);
  if (p && p.epoch === x.epoch) return p;
  if (p) {
    p.pc.close(); // the node replaced this pair's connection (a rejoin, a retry)
    peers.delete(key);
  }
  const pc = new RTCPeerConnection({
    iceServers: iceServers.map((s) => (typeof s === "string" ? { urls: s } : s)),
    bundlePolicy: "max-bundle",
  });
  // one <video> per peer for the whole call: re-rendering the grid must not blank it
  const video = h("video", { autoplay: true, playsinline: true });
  p = { pc, video, epoch: x.epoch, gen: x.gen, stream: null, remoteSet: false, iceUsed: 0, pending: [], described: false, offering: false, stats: {}, senders: {}, badSince: 0, attempts: 0, nextTry: 0, lost: false, since: Date.now(), up: false };
  peers.set(key, p);
  localStream.getTracks().forEach((t) => {
    p.senders[t.kind] = pc.addTrack(t, localStream);
    if (off[t.kind]) p.senders[t.kind].replaceTrack(null);
  });
  pc.onicecandidate = (e) => {
    if (!e.candidate || !e.candidate.candidate || !state) return;
    if (p.described) postIce(key, [e.candidate.candidate]);
    else p.pending.push(e.candidate.candidate);
  };
  pc.ontrack = (e) => {
    p.stream = e.streams[0];
    if (p.video.srcObject !== p.stream) p.video.srcObject = p.stream;
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected" && state) {
      call("POST", `/group-calls/${state.call_id}/peers/${key}/connected`).catch(() => {});
    }
    render();
  };
  return p;
}

function postIce(key, candidates) {
  if (!state) return;
  call("POST", `/group-calls/${state.call_id}/peers/${key}/candidates`, { candidates }).catch(() => {});
}

// Post our offer/answer for the round it was made for; the node's view comes back
// (null when the node moved to a newer round meanwhile: the next sync catches up).
async function describe(key, p) {
  await firstCandidates(p.pc, p.pending.length > 0); // the first candidates ride in the SDP
  p.pending = [];
  const body = { sdp: p.pc.localDescription.sdp, epoch: p.epoch, gen: p.gen };
  let got;
  try {
    got = await call("POST", `/group-calls/${state.call_id}/peers/${key}/description`, body);
  } catch (err) {
    if (err.code !== "stale_round") throw err;
    schedule();
    return null;
  }
  p.described = true;
  if (p.pending.length) postIce(key, p.pending.splice(0));
  return got;
}

// A new offer/answer round on the same connection (an ICE restart).
function newRound(p, gen) {
  Object.assign(p, { gen, remoteSet: false, iceUsed: 0, described: false, pending: [], offering: false });
}

// Bring the peer connections in line with the node's view. Runs one at a time
// (a burst of events coalesces into one more pass).
function schedule() {
  if (dirty) return;
  dirty = true;
  exclusive(async () => {
    dirty = false;
    await syncOnce();
  });
}

async function syncOnce() {
  const now = await fetchCurrent();
  if (!now || (state && now.call_id !== state.call_id)) {
    if (state) teardown(); // ended (or a ring we did not take ran out)
    state = now;
    render();
    return;
  }
  if (owner && now.session !== mySession) {
    teardown(); // another page rejoined: it holds the media now
    state = now;
    toast("The call goes on in another window");
    render();
    refreshBanners();
    return;
  }
  const was = state;
  state = now;
  if (now.rung && !owner && (!was || was.call_id !== now.call_id)) startTone("ring");
  if (!owner) checkHolder(now);
  if (!owner || now.ringing) {
    render();
    return;
  }
  const keys = new Set(now.participants.map((x) => x.key));
  for (const [key, p] of peers) {
    if (!keys.has(key)) {
      p.pc.close(); // left, or silent too long
      peers.delete(key);
    }
  }
  // every pair at once: each one's offer/answer waits on its own round trip
  const done = await Promise.allSettled(now.participants.map((x) => syncPeer(x)));
  for (const r of done) if (r.status === "rejected") console.warn("group call pair", r.reason);
  render();
}

async function syncPeer(x) {
  const p = peerFor(x);
  if (p.gen !== x.gen) newRound(p, x.gen); // their ICE restart: answer it on this connection
  if (x.need_offer && !p.offering) {
    p.offering = true;
    await p.pc.setLocalDescription(await p.pc.createOffer());
    await describe(x.key, p);
  } else if (x.remote_kind === "offer" && !p.remoteSet) {
    await setRemote(p, "offer", x.remote_sdp);
    await p.pc.setLocalDescription(await p.pc.createAnswer());
    await addCandidates(x, p);
    await describe(x.key, p);
  } else if (x.remote_kind === "answer" && !p.remoteSet && p.offering) {
    await setRemote(p, "answer", x.remote_sdp);
  }
  await addCandidates(x, p);
}

async function setRemote(p, type, sdp) {
  p.remoteSet = true;
  try {
    await p.pc.setRemoteDescription({ type, sdp });
  } catch (err) {
    p.remoteSet = false; // e.g. an answer to an offer we replaced: the repairs go on
    throw err;
  }
}

async function addCandidates(x, p) {
  if (!p.remoteSet) return;
  const fresh = x.remote_candidates.slice(p.iceUsed);
  p.iceUsed = x.remote_candidates.length;
  for (const candidate of fresh) await p.pc.addIceCandidate({ candidate, sdpMLineIndex: 0 }).catch(() => {});
}

// -- repairs: a failed pair is restarted (bounded), then shown lost with a Retry -----------

function watch() {
  const now = Date.now();
  for (const [key, p] of peers) {
    const st = p.pc.connectionState;
    if (st === "connected") p.up = true;
    const stuck = !p.up && !p.pc.remoteDescription && now - p.since > CONNECT_GRACE_MS; // no offer/answer came
    if (st !== "failed" && st !== "closed" && st !== "disconnected" && !stuck) {
      if (st === "connected" && (p.badSince || p.lost)) {
        Object.assign(p, { badSince: 0, attempts: 0, nextTry: 0, lost: false });
        render();
      }
      continue;
    }
    if (!p.badSince) p.badSince = now;
    if (st === "disconnected" && now - p.badSince < DISCONNECTED_GRACE_MS) continue;
    if (p.lost || now < p.nextTry) continue;
    if (p.attempts >= REPAIRS) {
      p.lost = true;
      render();
      continue;
    }
    p.attempts += 1;
    p.nextTry = now + RETRY_AFTER_MS * 2 ** (p.attempts - 1);
    render();
    exclusive(() => repair(key, p));
  }
}

async function repair(key, p) {
  const x = state && owner && state.participants.find((q) => q.key === key);
  if (!x || peers.get(key) !== p) return; // left, or replaced meanwhile
  if (p.pc.connectionState === "closed") {
    await retryPair(key); // this end is gone: a new connection
  } else if (x.offerer) {
    // our turn: an ICE restart on the same connection (new ufrag/pwd, same DTLS)
    Object.assign(p, { remoteSet: false, iceUsed: 0, described: false, pending: [], offering: true });
    await p.pc.setLocalDescription(await p.pc.createOffer({ iceRestart: true }));
    const got = await describe(key, p);
    const y = got && got.participants.find((q) => q.key === key);
    if (y) p.gen = y.gen; // the node started a new round with this offer
  } else if (p.attempts >= REPAIRS) {
    await retryPair(key); // their restarts did not come or did not help: ask anew
  }
}

async function retryPair(key) {
  if (!state) return;
  await call("POST", `/group-calls/${state.call_id}/peers/${key}/retry`).catch(() => {});
  schedule();
}

// Who is speaking, muted, camera off: from each connection's inbound stats.
async function measure() {
  watch();
  for (const [key, p] of peers) {
    const st = { audio: 0, frames: 0, level: 0 };
    try {
      (await p.pc.getStats()).forEach((s) => {
        if (s.type !== "inbound-rtp") return;
        if (s.kind === "audio") {
          st.audio = s.bytesReceived || 0;
          st.level = s.audioLevel || 0;
        } else if (s.kind === "video") st.frames = s.framesDecoded || 0;
      });
    } catch (err) {
      continue; // closed meanwhile
    }
    const last = p.stats;
    const muted = last.audio !== undefined && st.audio === last.audio;
    const camOff = last.frames !== undefined && st.frames === last.frames;
    p.stats = { ...st, muted, camOff, speaking: st.level > 0.02 && !muted };
    const tile = document.querySelector(`.gc-tile[data-key="${key}"]`);
    if (tile) {
      tile.classList.toggle("speaking", p.stats.speaking);
      tile.classList.toggle("muted", p.stats.muted);
      tile.classList.toggle("cam-off", Boolean(state && state.video && p.stats.camOff));
    }
  }
}

async function setTrack(kind, on) {
  const track = localStream && localStream.getTracks().find((t) => t.kind === kind);
  if (!track) return;
  off[kind] = !on;
  track.enabled = on;
  render();
  for (const p of peers.values()) {
    if (p.senders[kind]) await p.senders[kind].replaceTrack(on ? track : null);
  }
}

// -- events from the node ----------------------------------------------------------------

// -- which of our pages holds the call's media -------------------------------------------
// A page that finds us in a call (not ringing) that it does not hold asks our other
// tabs; if none holds it, the holder was closed or reloaded and its pagehide did not
// reach the node: tell the node (it leaves unless a page rejoins), once per call.
const tabs = "BroadcastChannel" in window ? new BroadcastChannel("boxless-group-call") : null;
const HOLDER_WAIT_MS = 1500;
let asked = null; // {call_id, held} of the last question
if (tabs) {
  tabs.onmessage = (e) => {
    const m = e.data || {};
    if (m.ask && owner && state && state.call_id === m.ask) tabs.postMessage({ held: m.ask });
    if (m.held && asked && asked.call_id === m.held) asked.held = true;
  };
}

function checkHolder(now) {
  if (!tabs || now.ringing || now.detached || (asked && asked.call_id === now.call_id)) return;
  const ask = { call_id: now.call_id, held: false };
  asked = ask;
  tabs.postMessage({ ask: now.call_id });
  setTimeout(() => {
    if (ask.held || owner || !state || state.call_id !== ask.call_id || state.detached) return;
    call("POST", `/group-calls/${ask.call_id}/detach`, { session: state.session })
      .then(() => schedule())
      .catch(() => {});
  }, HOLDER_WAIT_MS);
}

/** The event stream (re)opened: a page opened mid-ring (or mid-call) shows it. */
export function resumeGroupCall() {
  schedule();
  refreshBanners();
}

/** A `group_call` event (app.js onEvent). */
export function onGroupCallEvent(ev) {
  if (ev.ended && state && state.call_id === ev.call_id) {
    teardown();
    state = null;
    render();
  }
  if (!ev.ended) schedule();
  refreshBanners();
}

// -- the screens -------------------------------------------------------------------------

function tile(x) {
  const p = peers.get(x.key);
  const video = p ? p.video : h("video", { autoplay: true, playsinline: true });
  const connected = p && p.pc.connectionState === "connected";
  const st = (p && p.stats) || {};
  const lost = Boolean(p && p.lost);
  const flags = [connected ? "connected" : "", st.speaking ? "speaking" : "", st.muted ? "muted" : "", st.camOff && state.video ? "cam-off" : "", lost ? "lost" : ""];
  return h("div", { class: `gc-tile ${flags.join(" ")}`, dataset: { key: x.key } },
    video,
    h("div", { class: "gc-label" },
      h("span", { class: "gc-name" }, x.name || x.key.slice(0, 8)),
      h("span", { class: "gc-flags" }, h("span", { class: "gc-mute", title: "Muted" }, glyph("mic", 14), "muted")),
    ),
    x.code ? h("span", { class: "gc-code", title: "Compare with this person: equal codes mean nobody is in the middle" }, x.code) : null,
    connected ? null : lost ? lostNote(x.key) : h("span", { class: "gc-wait" }, p && p.attempts ? "Reconnecting…" : "Connecting…"),
  );
}

function lostNote(key) {
  const retry = () => {
    const p = peers.get(key);
    if (p) Object.assign(p, { lost: false, attempts: 0, nextTry: 0, badSince: 0 });
    render();
    exclusive(() => retryPair(key));
  };
  return h("div", { class: "gc-wait gc-lost" },
    h("span", {}, "Connection lost"),
    h("button", { class: "gc-retry", type: "button", dataset: { key }, onclick: retry }, "Retry"),
  );
}

function ensureScreen() {
  if (!screen) {
    screen = h("section", { class: "call-screen group-call", id: "group-call-screen", role: "dialog", "aria-label": "Group call" });
    document.body.append(screen);
  }
  return screen;
}

function render() {
  // the ring screen only when we were rung; a call seen running shows the chat's banner
  if (!state || (!owner && !state.rung)) {
    if (screen) screen.remove();
    screen = null;
    return;
  }
  const el = ensureScreen();
  const name = groupName(state.chat);
  el.dataset.phase = owner ? "in-call" : "ringing";
  if (!owner) {
    const by = state.started_by_name ? `${state.started_by_name} · ` : "";
    mount(el,
      h("div", { class: "call-ring" },
        h("div", { class: "call-avatar pulse" }, glyph(state.video ? "video" : "phone", 40)),
        h("h2", { class: "call-name" }, name),
        h("p", { class: "call-status" }, `${by}Group ${state.video ? "video" : "voice"} call`),
        h("div", { class: "call-actions" },
          h("button", { class: "call-btn decline", id: "gc-decline", "aria-label": "Decline", onclick: leave }, glyph("phone", 28)),
          h("button", { class: "call-btn accept", id: "gc-join", "aria-label": "Join", onclick: join }, glyph(state.video ? "video" : "phone", 28)),
        ),
      ),
    );
    return;
  }
  stopTone();
  if (!localVideo) localVideo = h("video", { autoplay: true, playsinline: true, muted: true });
  const local = localVideo;
  if (local.srcObject !== localStream) local.srcObject = localStream;
  local.muted = true;
  const micOn = !off.audio;
  const camOn = !off.video;
  const n = state.participants.length + 1;
  mount(el,
    h("div", { class: "call-top" },
      h("h2", { class: "call-name" }, name),
      h("p", { class: "call-status", id: "gc-status" }, `${n} ${n === 1 ? "person" : "people"} · ${formatDuration(elapsed())}`),
    ),
    h("div", { class: `gc-grid n${Math.min(n, 9)}`, id: "gc-grid" },
      h("div", { class: `gc-tile me ${micOn ? "" : "muted"}`, dataset: { key: "me" } }, local,
        h("div", { class: "gc-label" }, h("span", { class: "gc-name" }, "You"))),
      ...state.participants.map(tile),
    ),
    h("div", { class: "call-actions" },
      h("button", { class: `call-btn ${micOn ? "" : "off"}`, id: "gc-mute", "aria-pressed": String(!micOn), "aria-label": micOn ? "Mute" : "Unmute", onclick: () => setTrack("audio", !micOn) }, glyph("mic")),
      state.video
        ? h("button", { class: `call-btn ${camOn ? "" : "off"}`, id: "gc-camera", "aria-pressed": String(!camOn), "aria-label": camOn ? "Camera off" : "Camera on", onclick: () => setTrack("video", !camOn) }, glyph("video"))
        : null,
      h("button", { class: "call-btn decline", id: "gc-leave", "aria-label": "Leave", onclick: leave }, glyph("phone", 28)),
    ),
  );
  if (!meter) meter = setInterval(() => measure().catch(() => {}), 700);
  if (!clock) {
    clock = setInterval(() => {
      const s = document.getElementById("gc-status");
      const m = state ? state.participants.length + 1 : 0;
      if (s && state) s.textContent = `${m} ${m === 1 ? "person" : "people"} · ${formatDuration(elapsed())}`;
    }, 1000);
  }
}

function elapsed() {
  const since = (state && (state.joined_at_ms || state.started_at_ms)) || Date.now();
  return Math.max(0, Math.floor((Date.now() - since) / 1000));
}

// -- the group chat's header buttons and its "call running" banner ------------------------

/** Voice and video call buttons for a group chat's header. */
export function groupCallButtons(chat) {
  return [
    h("button", { class: "icon-button call-start", id: "group-call-audio", type: "button", "aria-label": "Group voice call", onclick: () => startGroupCall(chat, { video: false }) }, glyph("phone")),
    h("button", { class: "icon-button call-start", id: "group-call-video", type: "button", "aria-label": "Group video call", onclick: () => startGroupCall(chat, { video: true }) }, glyph("video")),
  ];
}

/** A banner in the group chat while a call runs there that this UI is not in. */
export function groupCallBanner(chat) {
  const el = h("div", { class: "gc-banner", hidden: true, role: "status" });
  banners.add({ chat, el });
  fillBanner(chat, el);
  return el;
}

function fillBanner(chat, el) {
  const show = state && state.chat === chat && !owner;
  el.hidden = !show;
  if (!show) return;
  const who = state.participants.length + (state.ringing ? 0 : 1);
  // not ringing, not ours: we are in it, but another page holds the media (or held it
  // before this page was reloaded)
  const elsewhere = !state.ringing;
  const kind = state.video ? "video" : "voice";
  const text = !elsewhere
    ? `A ${kind} call is running · ${who} in`
    : state.detached
      ? `You are still in this ${kind} call (its page was closed or reloaded) · ${who} in`
      : `You are in this ${kind} call on another page · ${who} in`;
  mount(el,
    glyph(state.video ? "video" : "phone", 16),
    h("span", {}, text),
    h("button", { class: "gc-banner-join", id: elsewhere ? "gc-rejoin" : null, type: "button", onclick: join }, elsewhere ? "Rejoin" : "Join"),
  );
}

function refreshBanners() {
  syncing.then(() => {
    for (const b of [...banners]) {
      if (!b.el.isConnected && b.el.dataset.seen) banners.delete(b);
      else fillBanner(b.chat, b.el);
      b.el.dataset.seen = "1";
    }
  });
}

// A tab closing or reloading lets the media go: the node leaves the call unless a
// page rejoins within its grace (a reload shows "Rejoin" in the group chat).
window.addEventListener("pagehide", () => {
  if (owner && state) {
    fetch(`/api/v1/group-calls/${state.call_id}/detach`, {
      method: "POST",
      keepalive: true,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ session: mySession }),
    });
  }
});
