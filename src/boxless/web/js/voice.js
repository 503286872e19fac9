// Voice notes: record in the composer, play in the bubble.
//
// Recording: the mic button starts a MediaRecorder (Opus in WebM, or in Ogg
// where that is what the browser makes). Click it and a bar shows the running
// time with Cancel and Send; hold it and releasing sends. At most MAX_MS.
// Before sending, the audio is decoded with WebAudio for its duration and a
// waveform of WAVE_BARS peaks (0..255), which go with the file as descriptor
// fields (`kind=voice`, `duration_ms`, `waveform`: the bytes in base64; the API
// lists them back as numbers).
//
// Playing: a play/pause button, the waveform (bars fill as it plays) and the
// time. The audio streams from the API's content URL. A note whose descriptor
// carries no waveform (or an older sender's) gets one computed here once the
// file is fetched (a bounded read: voice notes are small).

import { MIC_ICON, contentUrl, formatDuration, formatSize, pathIcon } from "./attachments.js";
import { call } from "./api.js";
import { h, mount, toast } from "./dom.js";

export const WAVE_BARS = 48;
const MAX_MS = 15 * 60 * 1000; // a voice note stops recording after 15 minutes
const HOLD_MS = 600; // held this long, releasing the mic sends
const MAX_DECODE_BYTES = 16 * 1024 * 1024; // receiver-side waveform: notes up to this size
const MIMES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg"];

const PLAY = "M8 5v14l11-7z";
const PAUSE = "M6 5h4v14H6zm8 0h4v14h-4z";

const waves = new Map(); // "mid/index" -> Promise<{peaks, ms}|null>

/** Peaks (0..255) of decoded audio, `bars` of them, and its length in ms. */
export async function analyse(buffer, bars = WAVE_BARS) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  const ctx = new Ctx();
  try {
    const audio = await ctx.decodeAudioData(buffer);
    const data = audio.getChannelData(0);
    const step = Math.max(1, Math.floor(data.length / bars));
    const peaks = [];
    for (let b = 0; b < bars; b++) {
      let peak = 0;
      const end = Math.min(data.length, (b + 1) * step);
      for (let i = b * step; i < end; i += 4) peak = Math.max(peak, Math.abs(data[i]));
      peaks.push(peak);
    }
    const top = Math.max(...peaks, 1e-6);
    return { peaks: peaks.map((p) => Math.round((p / top) * 255)), ms: Math.round(audio.duration * 1000) };
  } finally {
    ctx.close();
  }
}

/** The mic button and the recording bar; `onSend(file, meta)` gets the note. */
export function voiceRecorder({ onSend, enabled = () => true }) {
  let rec = null;
  let stream = null;
  let chunks = [];
  let startedAt = 0;
  let timer = null;
  let starting = false;
  let holdFrom = 0;

  const time = h("span", { class: "voice-time", role: "timer", "aria-live": "off" }, "0:00");
  const cancel = h("button", { type: "button", class: "voice-cancel" }, "Cancel");
  const send = h("button", { type: "button", class: "primary voice-send" }, "Send");
  const bar = h("div", { class: "voice-bar", hidden: true, role: "group", "aria-label": "Recording a voice note" }, h("span", { class: "voice-dot", "aria-hidden": "true" }), h("span", {}, "Recording"), time, cancel, send);
  const button = h("button", { type: "button", class: "icon-button mic-button", "aria-label": "Record a voice note", title: "Voice note (click, or hold and release to send)" }, pathIcon(MIC_ICON));

  async function start() {
    if (rec || starting || !enabled()) return;
    if (!window.MediaRecorder || !navigator.mediaDevices) {
      toast("This browser cannot record audio", "error");
      return;
    }
    starting = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const mimeType = MIMES.find((m) => MediaRecorder.isTypeSupported(m)) || "";
      rec = new MediaRecorder(stream, mimeType ? { mimeType } : {});
      chunks = [];
      rec.addEventListener("dataavailable", (e) => e.data.size && chunks.push(e.data));
      rec.start(250);
      startedAt = Date.now();
      bar.hidden = false;
      button.classList.add("recording");
      button.setAttribute("aria-pressed", "true");
      tick();
      timer = setInterval(tick, 250);
    } catch (err) {
      toast(`The microphone is not available: ${err.message || err}`, "error");
      stopTracks();
      rec = null;
    } finally {
      starting = false;
    }
  }

  function tick() {
    const ms = Date.now() - startedAt;
    time.textContent = formatDuration(ms);
    if (ms >= MAX_MS) finish(true);
  }

  function stopTracks() {
    if (stream) for (const t of stream.getTracks()) t.stop();
    stream = null;
  }

  async function finish(keep) {
    if (!rec) return;
    const r = rec;
    rec = null;
    clearInterval(timer);
    const ms = Date.now() - startedAt;
    bar.hidden = true;
    button.classList.remove("recording");
    button.removeAttribute("aria-pressed");
    const stopped = new Promise((resolve) => r.addEventListener("stop", resolve, { once: true }));
    r.stop();
    await stopped;
    stopTracks();
    if (!keep || !chunks.length) return;
    const type = (r.mimeType || "audio/webm").split(";")[0];
    const blob = new Blob(chunks, { type });
    const ext = type === "audio/ogg" ? "ogg" : "webm";
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-");
    const file = new File([blob], `voice-${stamp}.${ext}`, { type });
    let meta = { kind: "voice", duration_ms: String(ms) };
    try {
      const { peaks, ms: decoded } = await analyse(await blob.arrayBuffer());
      meta = { kind: "voice", duration_ms: String(decoded || ms), waveform: btoa(String.fromCharCode(...peaks)) };
    } catch (_) {
      /* sent without a waveform: the receiver computes one */
    }
    onSend(file, meta);
  }

  button.addEventListener("click", () => start());
  button.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    holdFrom = Date.now();
    start();
  });
  button.addEventListener("pointerup", () => {
    if (rec && holdFrom && Date.now() - holdFrom > HOLD_MS) finish(true);
    holdFrom = 0;
  });
  button.addEventListener("contextmenu", (ev) => ev.preventDefault()); // a long press is a hold, not a menu
  cancel.addEventListener("click", () => finish(false));
  send.addEventListener("click", () => finish(true));
  return { button, bar, cancel: () => finish(false), get recording() {
    return Boolean(rec);
  } };
}

/** A bounded read of a fetched note, decoded for its waveform (once per file). */
function waveOf(a) {
  const key = `${a.message_id}/${a.index}`;
  if (!waves.has(key)) {
    waves.set(
      key,
      (async () => {
        if (a.size > MAX_DECODE_BYTES) return null;
        const response = await fetch(contentUrl(a.message_id, a.index), { credentials: "same-origin" });
        if (!response.ok || !response.body) return null;
        const reader = response.body.getReader();
        const parts = [];
        let n = 0;
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          n += value.length;
          if (n > MAX_DECODE_BYTES) {
            reader.cancel();
            return null;
          }
          parts.push(value);
        }
        return analyse(await new Blob(parts).arrayBuffer());
      })().catch(() => null),
    );
  }
  return waves.get(key);
}

function parseWave(w) {
  if (Array.isArray(w)) return w.map(Number);
  if (typeof w === "string" && w) return w.split(",").map(Number);
  return null;
}

/** The bubble of a voice note (`a`: an attachments API row with its message id). */
export function voicePlayer(a) {
  const audio = h("audio", { class: "voice-audio", src: contentUrl(a.message_id, a.index), preload: "none", hidden: true });
  const play = h("button", { type: "button", class: "voice-play", "aria-label": "Play voice note" }, pathIcon(PLAY, 20));
  const wave = h("span", { class: "voice-wave", "aria-hidden": "true" });
  const label = h("span", { class: "voice-length" }, a.duration_ms ? formatDuration(a.duration_ms) : "0:00");
  const status = h("span", { class: "att-status" });
  const el = h("div", { class: `voice-note ${a.state}`, "data-attachment": `${a.message_id}/${a.index}` }, play, wave, label, status, audio);
  let length = a.duration_ms || 0;
  let bars = [];

  function drawWave(peaks) {
    const values = peaks && peaks.length ? peaks : new Array(WAVE_BARS).fill(40);
    bars = values.map((v) => {
      const b = h("span", { class: "voice-barline" });
      b.style.height = `${Math.max(12, Math.round((Math.min(255, Math.max(0, v)) / 255) * 100))}%`; // CSSOM: allowed by the CSP
      return b;
    });
    mount(wave, bars);
    wave.classList.toggle("flat", !peaks);
  }

  function showTime() {
    const t = audio.currentTime * 1000;
    const total = length || (Number.isFinite(audio.duration) ? audio.duration * 1000 : 0);
    const played = total ? Math.min(1, t / total) : 0;
    const upTo = Math.round(played * bars.length);
    bars.forEach((b, i) => b.classList.toggle("played", i < upTo));
    label.textContent = audio.paused && !t ? formatDuration(total) : formatDuration(t);
  }

  drawWave(parseWave(a.waveform));
  const fetched = a.state === "ready" || a.outgoing;
  if (fetched && (!parseWave(a.waveform) || !a.duration_ms)) {
    waveOf(a).then((w) => {
      if (!w) return;
      if (!parseWave(a.waveform)) drawWave(w.peaks);
      if (!length) length = w.ms;
      showTime();
    });
  }
  if (!fetched) {
    if (a.state === "downloading") {
      el.append(h("progress", { class: "att-progress", max: String(a.size || 1), value: String(a.done || 0) }));
    } else {
      const get = h("button", { type: "button", class: "att-get" }, a.state === "failed" ? "Try again" : `Download (${formatSize(a.size)})`);
      if (a.state === "failed") status.textContent = a.error || "failed";
      get.addEventListener("click", (e) => {
        e.stopPropagation();
        get.disabled = true;
        call("POST", `/messages/${encodeURIComponent(a.message_id)}/attachments/${a.index}/download`).catch((err) => {
          status.textContent = err.message;
          get.disabled = false;
        });
      });
      el.append(get);
    }
  }

  play.addEventListener("click", (e) => {
    e.stopPropagation();
    if (audio.paused) {
      for (const other of document.querySelectorAll("audio.voice-audio")) if (other !== audio) other.pause();
      audio.play().catch((err) => toast(`Cannot play this note: ${err.message}`, "error"));
    } else {
      audio.pause();
    }
  });
  audio.addEventListener("play", () => {
    mount(play, pathIcon(PAUSE, 20));
    play.setAttribute("aria-label", "Pause voice note");
    el.classList.add("playing");
  });
  audio.addEventListener("pause", () => {
    mount(play, pathIcon(PLAY, 20));
    play.setAttribute("aria-label", "Play voice note");
    el.classList.remove("playing");
  });
  audio.addEventListener("ended", () => {
    audio.currentTime = 0;
    showTime();
  });
  audio.addEventListener("timeupdate", showTime);
  // seek by clicking the waveform
  wave.addEventListener("click", (e) => {
    e.stopPropagation();
    const r = wave.getBoundingClientRect();
    const total = length / 1000 || audio.duration;
    if (Number.isFinite(total) && total > 0) audio.currentTime = ((e.clientX - r.left) / r.width) * total;
  });
  return el;
}
