// Voice and video calls (docs/calls.md). The browser owns the WebRTC peer
// connection; the node relays its SDP and ICE candidates to the contact inside
// end-to-end encrypted messages (/api/v1/calls...) and decides the call's state
// (ringing, busy, timeouts). This module shows the incoming-call screen on every
// open UI, a ringback tone for the caller, the in-call view (mute, camera,
// speaker view, duration, call code, hang up) and the chat's call rows.
// Only the UI that started or accepted a call (`owner`) holds media; the others
// just follow its state.

import { call } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { contact } from "./store.js";
import { inGroupCall } from "./call_group.js";

const PATHS = {
  phone: "M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25 11.4 11.4 0 0 0 3.6.57 1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z",
  video: "M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11z",
  mic: "M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5.3-3a5.3 5.3 0 0 1-10.6 0H5a7 7 0 0 0 6 6.9V21h2v-3.1a7 7 0 0 0 6-6.9z",
  speaker: "M3 9v6h4l5 5V4L7 9zm13.5 3a4.5 4.5 0 0 0-2.5-4v8a4.5 4.5 0 0 0 2.5-4z",
};

export function glyph(name, size = 24) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", PATHS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

const REASONS = {
  hung_up: "Call ended",
  declined: "Call declined",
  busy: "Busy",
  missed: "No answer",
  failed: "Could not connect",
  lost: "Connection lost",
};

let state = null; // the running call as the node shows it (GET /calls/current)
let iceServers = [];
let pc = null;
let localStream = null;
let owner = false; // this UI holds the media of the running call
let pendingIce = []; // our candidates found before our offer/answer went out
let described = false; // our offer/answer went out: new candidates trickle at once
let remoteIceUsed = 0;
let remoteSet = false;
let tone = null;
let clock = null;
let speakerView = false;
let senders = {}; // kind -> RTCRtpSender of our track
let off = {}; // kind -> true while muted / camera off (the sender sends nothing)
let screen = null;
const logs = new Set(); // mounted chat call-row boxes: {chat, el}
// ICE repair: the caller restarts ICE when the connection fails (the callee answers
// the new offer on the same connection); after RESTARTS tries, or the callee after
// GIVE_UP_MS without the connection coming back, the call is hung up.
const RESTARTS = 3;
const GIVE_UP_MS = 20000;
let restartTries = 0;
let seenRestarts = 0; // the call's `restarts` this page has answered or made
let giveUp = null;

function nameOf(chat) {
  const c = contact(chat.split(":")[1]);
  return c ? c.display_name || c.name || "Contact" : "Contact";
}

export function formatDuration(s) {
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

// -- ringing tones (WebAudio, no files) --------------------------------------------------

export function startTone(kind) {
  stopTone();
  try {
    const ctx = new AudioContext();
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    const osc = ctx.createOscillator();
    osc.frequency.value = kind === "ring" ? 660 : 425;
    osc.connect(gain);
    osc.start();
    let on = false;
    const timer = setInterval(() => {
      on = !on;
      gain.gain.value = on ? 0.08 : 0;
    }, kind === "ring" ? 600 : 1000);
    tone = { ctx, timer };
  } catch (err) {
    tone = null; // no audio output: the screen still rings
  }
}

export function stopTone() {
  if (!tone) return;
  clearInterval(tone.timer);
  tone.ctx.close().catch(() => {});
  tone = null;
}

// -- the peer connection -----------------------------------------------------------------

function newPeer() {
  const p = new RTCPeerConnection({
    // RTCIceServer objects from the node; turn: ones carry short-lived credentials
    iceServers: iceServers.map((s) => (typeof s === "string" ? { urls: s } : s)),
    bundlePolicy: "max-bundle", // one transport: every candidate belongs to the first section
  });
  p.onicecandidate = (e) => {
    if (!e.candidate || !e.candidate.candidate) return;
    if (state && state.call_id && described) sendIce([e.candidate.candidate]);
    else pendingIce.push(e.candidate.candidate);
  };
  p.ontrack = (e) => {
    const remote = document.getElementById("call-remote");
    if (remote && remote.srcObject !== e.streams[0]) remote.srcObject = e.streams[0];
  };
  p.onconnectionstatechange = () => {
    if (!state) return;
    if (p.connectionState === "connected") {
      // Show it at once; the node hears it too (and keeps the call's clock).
      if (state.phase !== "connected") {
        state = { ...state, phase: "connected", connected_at_ms: Date.now() };
        render();
      }
      call("POST", `/calls/${state.call_id}/connected`).catch(() => {});
      restartTries = 0;
      clearTimeout(giveUp);
      giveUp = null;
    } else if (p.connectionState === "failed") {
      onFailed();
    }
  };
  return p;
}

function onFailed() {
  if (!state || !owner) return;
  if (state.outgoing && restartTries < RESTARTS) {
    restartTries += 1;
    restartIce().catch(() => hangUp());
  } else if (state.outgoing) {
    hangUp();
  } else if (!giveUp) {
    // the caller's restart should come; hang up if the connection does not come back
    giveUp = setTimeout(() => {
      giveUp = null;
      if (pc && pc.connectionState !== "connected") hangUp();
    }, GIVE_UP_MS);
  }
}

// The caller: a new offer with new ICE credentials on the same connection.
async function restartIce() {
  remoteSet = false;
  remoteIceUsed = 0;
  described = false;
  pendingIce = [];
  await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
  await gathered(pc);
  state = await call("POST", `/calls/${state.call_id}/restart`, { sdp: pc.localDescription.sdp });
  seenRestarts = state.restarts;
  described = true;
  if (pendingIce.length) sendIce(pendingIce.splice(0));
}

// The callee: the caller restarted ICE; answer its new offer on this connection.
async function answerRestart(now) {
  seenRestarts = now.restarts;
  remoteIceUsed = 0;
  described = false;
  await pc.setRemoteDescription({ type: "offer", sdp: now.remote_sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  state = await call("POST", `/calls/${now.call_id}/accept`, { sdp: pc.localDescription.sdp });
  described = true;
  if (pendingIce.length) sendIce(pendingIce.splice(0));
}

function sendIce(candidates) {
  call("POST", `/calls/${state.call_id}/candidates`, { candidates }).catch(() => {});
}

async function useRemote(current) {
  if (!pc || !owner) return;
  if (!remoteSet && current.remote_sdp) {
    remoteSet = true;
    await pc.setRemoteDescription({ type: current.outgoing ? "answer" : "offer", sdp: current.remote_sdp });
  }
  if (!remoteSet) return;
  const fresh = current.remote_candidates.slice(remoteIceUsed);
  remoteIceUsed = current.remote_candidates.length;
  for (const candidate of fresh) {
    await pc.addIceCandidate({ candidate, sdpMLineIndex: 0 }).catch(() => {});
  }
}

// Let the answer carry the first candidates (host ones take milliseconds; a
// STUN/TURN server's longer): the caller can start ICE checks as soon as the
// answer lands instead of waiting for a separate candidates message. We wait
// for the first candidate plus FIRST_GRACE_MS for its siblings, or gathering
// complete, at most GATHER_WAIT_MS; later candidates trickle.
const GATHER_WAIT_MS = 150;
const FIRST_GRACE_MS = 15;

async function gathered(p) {
  await firstCandidates(p, pendingIce.length > 0);
  pendingIce = []; // in the SDP already
}

/** Wait (bounded) until `p`'s first ICE candidates are in its local description
 * (`already`: one came before we asked). Group calls use it per peer (js/call_group.js). */
export async function firstCandidates(p, already) {
  if (p.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, GATHER_WAIT_MS);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      if (already) setTimeout(done, FIRST_GRACE_MS);
      p.addEventListener("icecandidate", () => setTimeout(done, FIRST_GRACE_MS), { once: true });
      p.addEventListener("icegatheringstatechange", () => {
        if (p.iceGatheringState === "complete") done();
      });
    });
  }
}

export async function media(video) {
  // `video`: true, or constraints (a group call's mesh sends one copy per peer: smaller)
  return navigator.mediaDevices.getUserMedia({ audio: true, video });
}

function teardown() {
  stopTone();
  clearInterval(clock);
  clock = null;
  if (pc) pc.close();
  if (localStream) localStream.getTracks().forEach((t) => t.stop());
  pc = null;
  localStream = null;
  owner = false;
  pendingIce = [];
  described = false;
  remoteIceUsed = 0;
  remoteSet = false;
  speakerView = false;
  senders = {};
  off = {};
  restartTries = 0;
  seenRestarts = 0;
  clearTimeout(giveUp);
  giveUp = null;
}

// -- actions -----------------------------------------------------------------------------

/** Ring a contact (`chat` is `contact:<key>`); `video` for a video call. */
export async function startCall(chat, { video = false } = {}) {
  if (state || pc || inGroupCall()) {
    toast("You are already in a call", "error");
    return;
  }
  try {
    const current = await call("GET", "/calls/current");
    iceServers = current.ice_servers || [];
    owner = true;
    localStream = await media(video);
    pc = newPeer();
    addTracks();
    await pc.setLocalDescription(await pc.createOffer());
    // The offer rings at once: the callee takes longer to accept than our
    // candidates take to trickle (waiting here measurably slowed the ring).
    state = await call("POST", "/calls", { chat, video, sdp: pc.localDescription.sdp });
    described = true;
    if (pendingIce.length) sendIce(pendingIce.splice(0));
    startTone("ringback");
    render();
  } catch (err) {
    teardown();
    state = null;
    render();
    toast(`Could not call: ${err.message}`, "error");
  }
}

async function accept() {
  const ringing = state;
  stopTone();
  try {
    owner = true;
    pc = newPeer();
    const [stream] = await Promise.all([media(ringing.video), pc.setRemoteDescription({ type: "offer", sdp: ringing.remote_sdp })]);
    localStream = stream;
    remoteSet = true;
    addTracks();
    await pc.setLocalDescription(await pc.createAnswer());
    await Promise.all([gathered(pc), useRemote(ringing)]); // our checks start at once
    state = await call("POST", `/calls/${ringing.call_id}/accept`, { sdp: pc.localDescription.sdp });
    described = true;
    if (pendingIce.length) sendIce(pendingIce.splice(0));
    await useRemote(await current());
    render();
  } catch (err) {
    toast(`Could not answer: ${err.message}`, "error");
    hangUp();
  }
}

function decline() {
  if (!state) return;
  call("POST", `/calls/${state.call_id}/decline`).catch(() => {});
}

function hangUp() {
  if (!state) return;
  call("POST", `/calls/${state.call_id}/hangup`).catch(() => {});
}

function addTracks() {
  senders = {};
  off = {};
  localStream.getTracks().forEach((t) => (senders[t.kind] = pc.addTrack(t, localStream)));
}

// Mute and camera off take the track off its sender: nothing is sent at all
// (a disabled track would still send packets of silence or black frames).
async function setTrack(kind, on) {
  const sender = senders[kind];
  const track = localStream && localStream.getTracks().find((t) => t.kind === kind);
  if (!sender || !track) return;
  off[kind] = !on;
  track.enabled = on;
  render();
  await sender.replaceTrack(on ? track : null);
}

function trackOn(kind) {
  return Boolean(senders[kind]) && !off[kind];
}

async function current() {
  const got = await call("GET", "/calls/current");
  iceServers = got.ice_servers || iceServers;
  return got.call;
}

// -- events from the node ----------------------------------------------------------------

/**
 * The event stream (re)opened: a UI opened (or reconnected) while a call rings
 * shows it — the state comes from the API, not from events it missed.
 */
export function resumeCall() {
  if (!state) {
    onCallEvent({ type: "call" }).catch(() => {});
    return;
  }
  // A call on screen may have ended (or its candidates come) while no socket listened.
  const was = state;
  current()
    .then((now) => {
      if (!state || state.call_id !== was.call_id) return null; // an event got there first
      if (!now || now.call_id !== was.call_id) {
        return onCallEvent({ type: "call", phase: "ended", call_id: was.call_id, chat: was.chat, reason: "ended" });
      }
      return onCallEvent({ type: "call", call_id: was.call_id });
    })
    .catch(() => {});
}

/** A `call` or `call_ice` event (app.js onEvent). */
export async function onCallEvent(ev) {
  if (ev.type === "call" && ev.phase === "ended") {
    const mine = state && state.call_id === ev.call_id;
    // (!state && pc: our own call is being set up — a late end of an older call
    // must not tear it down)
    if (mine || (!state && !pc)) {
      if (mine && ev.reason !== "hung_up") toast(REASONS[ev.reason] || "Call ended");
      teardown();
      state = null;
      render();
    }
    refreshLogs(ev.chat);
    return;
  }
  const now = await current();
  if (!now || (ev.call_id && now.call_id !== ev.call_id)) return;
  const was = state;
  state = now;
  if (now.phase === "incoming" && !was) {
    startTone("ring");
    notifyHidden(now);
  }
  if (now.phase !== "outgoing" && now.phase !== "incoming") stopTone();
  if (now.phase !== "incoming" && !owner && was && was.phase === "incoming") stopTone();
  if (owner && pc && !now.outgoing && (now.restarts || 0) > seenRestarts && now.remote_sdp) {
    await answerRestart(now).catch((err) => console.warn("call restart", err));
  }
  await useRemote(now);
  render();
}

function notifyHidden(c) {
  if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
  const n = new Notification(`${nameOf(c.chat)} is calling`, { body: c.video ? "Video call" : "Voice call", tag: "boxless-call" });
  n.onclick = () => window.focus();
}

// -- the screens -------------------------------------------------------------------------

function ensureScreen() {
  if (!screen) {
    screen = h("section", { class: "call-screen", id: "call-screen", role: "dialog", "aria-label": "Call" });
    document.body.append(screen);
  }
  return screen;
}

function render() {
  if (!state) {
    if (screen) {
      screen.remove();
      screen = null;
    }
    return;
  }
  const el = ensureScreen();
  const who = nameOf(state.chat);
  const kind = state.video ? "Video call" : "Voice call";
  el.dataset.phase = state.phase;
  el.classList.toggle("speaker-view", speakerView);
  if (state.phase === "incoming") {
    if (owner) return;
    mount(
      el,
      h("div", { class: "call-ring" },
        h("div", { class: "call-avatar pulse" }, glyph(state.video ? "video" : "phone", 40)),
        h("h2", { class: "call-name" }, who),
        h("p", { class: "call-status" }, `Incoming ${kind.toLowerCase()}…`),
        h("div", { class: "call-actions" },
          h("button", { class: "call-btn decline", id: "call-decline", "aria-label": "Decline", onclick: decline }, glyph("phone", 28)),
          h("button", { class: "call-btn accept", id: "call-accept", "aria-label": "Accept", onclick: accept }, glyph(state.video ? "video" : "phone", 28)),
        ),
      ),
    );
    return;
  }
  if (!owner) {
    // another of our UIs took the call: nothing to show here
    el.remove();
    screen = null;
    return;
  }
  const status =
    state.phase === "outgoing" ? "Ringing…" : state.phase === "connecting" ? "Connecting…" : formatDuration(state.duration_s || 0);
  const remote = document.getElementById("call-remote") || h("video", { id: "call-remote", class: "call-remote", autoplay: true, playsinline: true });
  const local = document.getElementById("call-local") || h("video", { id: "call-local", class: "call-local", autoplay: true, playsinline: true, muted: true });
  if (localStream && local.srcObject !== localStream) {
    local.srcObject = localStream;
    local.muted = true;
  }
  const micOn = trackOn("audio");
  const camOn = trackOn("video");
  mount(
    el,
    h("div", { class: "call-stage" }, remote, state.video ? local : null,
      state.video ? null : h("div", { class: "call-avatar" }, glyph("phone", 40))),
    h("div", { class: "call-top" },
      h("h2", { class: "call-name" }, who),
      h("p", { class: "call-status", id: "call-status" }, status),
      state.code ? h("p", { class: "call-code", id: "call-code", title: "Compare this code with your contact: equal codes mean nobody is in the middle" }, `Call code ${state.code}`) : null,
    ),
    h("div", { class: "call-actions" },
      h("button", { class: `call-btn ${micOn ? "" : "off"}`, id: "call-mute", "aria-pressed": String(!micOn), "aria-label": micOn ? "Mute" : "Unmute", onclick: () => setTrack("audio", !micOn) }, glyph("mic")),
      state.video
        ? h("button", { class: `call-btn ${camOn ? "" : "off"}`, id: "call-camera", "aria-pressed": String(!camOn), "aria-label": camOn ? "Camera off" : "Camera on", onclick: () => setTrack("video", !camOn) }, glyph("video"))
        : null,
      state.video
        ? h("button", { class: `call-btn ${speakerView ? "on" : ""}`, id: "call-speaker", "aria-pressed": String(speakerView), "aria-label": "Speaker view", onclick: () => { speakerView = !speakerView; render(); } }, glyph("speaker"))
        : null,
      h("button", { class: "call-btn decline", id: "call-hangup", "aria-label": "Hang up", onclick: hangUp }, glyph("phone", 28)),
    ),
  );
  if (state.phase === "connected" && !clock) {
    const since = state.connected_at_ms || Date.now();
    clock = setInterval(() => {
      const s = document.getElementById("call-status");
      if (s) s.textContent = formatDuration(Math.floor((Date.now() - since) / 1000));
    }, 1000);
  }
}

// -- the chat header's buttons and the chat's call rows --------------------------------

/** The call buttons of a 1:1 chat's header. */
export function callButtons(chat) {
  return [
    h("button", { class: "icon-button call-start", id: "call-audio", type: "button", "aria-label": "Voice call", onclick: () => startCall(chat, { video: false }) }, glyph("phone")),
    h("button", { class: "icon-button call-start", id: "call-video", type: "button", "aria-label": "Video call", onclick: () => startCall(chat, { video: true }) }, glyph("video")),
  ];
}

/** The chat's recent calls as rows (missed, declined, ended with duration). */
export function callLog(chat) {
  const el = h("div", { class: "call-log", "aria-label": "Calls", hidden: true });
  logs.add({ chat, el });
  fillLog(chat, el);
  return el;
}

const LABELS = { missed: "Missed", declined: "Declined", busy: "Busy", failed: "Failed", lost: "Dropped" };

function row(c) {
  const kind = c.video ? "video call" : "voice call";
  const dir = c.outgoing ? "Outgoing" : "Incoming";
  const when = new Date(c.started_at_ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const text = c.connected_at_ms ? `${dir} ${kind} · ${formatDuration(c.duration_s)}` : `${LABELS[c.reason] || "Ended"} ${kind}`;
  const missed = !c.outgoing && !c.connected_at_ms;
  return h("div", { class: `call-row ${missed ? "missed" : ""}`, dataset: { reason: c.reason } }, glyph(c.video ? "video" : "phone", 16), h("span", {}, text), h("time", {}, when));
}

async function fillLog(chat, el) {
  try {
    const { calls } = await call("GET", `/calls?chat=${encodeURIComponent(chat)}&limit=3`);
    mount(el, ...calls.map(row));
    el.hidden = calls.length === 0;
  } catch (err) {
    el.hidden = true;
  }
}

function refreshLogs(chat) {
  for (const log of [...logs]) {
    if (!log.el.isConnected && log.el.dataset.seen) logs.delete(log);
    else if (log.chat === chat) fillLog(chat, log.el);
    log.el.dataset.seen = "1";
  }
}

// A tab closing ends its call for both sides at once (not only by timeout).
window.addEventListener("pagehide", () => {
  if (owner && state) {
    fetch(`/api/v1/calls/${state.call_id}/hangup`, { method: "POST", keepalive: true, credentials: "same-origin" });
  }
});
