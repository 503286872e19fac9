// Attachments in the conversation views (api/attachments.py, docs/attachments.md).
//
// Theory of operation. Each open chat keeps one `chatFiles(chat)` index: the
// chat's newest files (GET /chats/{chat}/attachments, re-read with each page of
// messages) by message id, so a bubble knows its files without a request of
// its own. `block(m)` draws a message's files under its bubble: photos and
// videos as a grid (an album), voice notes as a player with a waveform, other
// files as a row with name, size and Save. Elements are kept per file and
// state, so re-rendering the list (it happens on every event) moves the same
// <img> instead of loading it again. Download progress comes from the node's
// attachment_progress/attachment_ready events (`onEvent`), upload progress
// from XHR (`uploader`). Sending starts in a tray (`attachTray`): the picked,
// pasted or dropped files, an "Original" toggle for photos, Send.
//
// Everything a peer chose (names, types) is text here, never HTML: `h` sets
// text content. Media load from the API (same origin, the session cookie);
// only files the API marks `inline` show inline, the rest download.

import { ApiError, call, imageUrl } from "./api.js";
import { h, icon, mount, toast } from "./dom.js";
import { appCardButton, appShareCard } from "./miniapps.js";

export const MAX_ALBUM = 9; // photos/videos in one message
const LIST_LIMIT = 500; // the newest files of a chat the index holds
const FILES_ONLY = "📎 "; // the node's text for a message of files without a caption

const base = (messageId) => `/messages/${encodeURIComponent(messageId)}/attachments`;
export const contentUrl = (messageId, index) => `/api/v1${base(messageId)}/${index}/content`;

function uploadPath(chat) {
  const [kind, id] = chat.split(":");
  if (kind === "contact") return `/contacts/${id}/attachments`;
  if (kind === "group") return `/groups/${id}/attachments`;
  throw new Error(`not a chat: ${chat}`);
}

/** A filled 24x24 SVG icon from a path (decorative). */
export function pathIcon(d, size = 24) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  for (const [k, v] of Object.entries({ viewBox: "0 0 24 24", width: size, height: size, "aria-hidden": "true", focusable: "false" })) svg.setAttribute(k, String(v));
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

export const MEDIA_ICON = "M4 4h16a1 1 0 0 1 1 1v14a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zm1 2v9.6l3.8-3.8 3 3 4.2-4.8 3 3.4V6zm3.5 1a1.8 1.8 0 1 1 0 3.6 1.8 1.8 0 0 1 0-3.6z";
export const CAMERA_ICON = "M9 4h6l1.5 2H20a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h3.5zm3 4a4.5 4.5 0 1 0 0 9 4.5 4.5 0 0 0 0-9zm0 2a2.5 2.5 0 1 1 0 5 2.5 2.5 0 0 1 0-5z";
export const MIC_ICON = "M12 2a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V5a3 3 0 0 1 3-3zm-7 9h2a5 5 0 0 0 10 0h2a7 7 0 0 1-6 6.9V21h3v2H8v-2h3v-3.1A7 7 0 0 1 5 11z";

export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

export function formatDuration(ms) {
  const s = Math.max(0, Math.round((ms || 0) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** What a file is to the UI: image, video, voice, audio or file. */
export function mediaKind(a) {
  const mime = a.mime || "";
  if (!a.inline) return "file"; // the node's allowlist decides what shows inline, never the peer's kind
  if (a.kind === "voice" && mime.startsWith("audio/")) return "voice";
  if ((a.kind === "image" || a.kind === "sticker") && mime.startsWith("image/")) return "image";
  if (mime.startsWith("image/")) return "image";
  if (mime.startsWith("video/")) return "video";
  if (mime.startsWith("audio/")) return /^voice[-_ ]/i.test(a.name || "") ? "voice" : "audio";
  return "file";
}

// -- sending ------------------------------------------------------------------------------

/**
 * POST a file (raw body, described by `query`) or an album (FormData) with
 * upload progress (fetch cannot report it; XHR can).
 * Resolves to the API's answer; rejects with an ApiError. `onProgress(sent, total)`.
 */
function postFile(path, body, query, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1${path}${query ? `?${new URLSearchParams(query)}` : ""}`);
    xhr.withCredentials = true;
    if (!(body instanceof FormData)) xhr.setRequestHeader("Content-Type", body.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : body.size || 0);
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText || "null");
      } catch (_) {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data?.error?.code || `http_${xhr.status}`, data?.error?.message || xhr.statusText || "upload failed"));
    };
    xhr.onerror = () => reject(new ApiError(0, "unreachable", "the upload broke off: is `boxless up` running?"));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "cancelled"));
    if (signal) signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

/** An album as one multipart/form-data body: photos/videos, each after its own fields. */
function albumForm(files, { caption, original, meta }) {
  const form = new FormData();
  form.append("original", original ? "1" : "0"); // message fields come before the files
  if (caption) form.append("caption", caption);
  files.forEach((f, i) => {
    for (const [k, v] of Object.entries(meta[i] || {})) form.append(k, v);
    form.append("file", f, f.name || "file");
  });
  return form;
}

export const MAX_FILE_BYTES = 2 * 1024 ** 3; // the node's limit for any file
const MAX_PHOTO_BYTES = 64 * 1024 ** 2; // a bigger picture goes as a plain file (the API's limit for photos)

/** The files of one send split into messages: photos/videos in albums of up to 9, other files alone. */
export function batches(picked) {
  const files = picked.map((f) =>
    (f.type || "").startsWith("image/") && f.size > MAX_PHOTO_BYTES ? new File([f], f.name, { type: "application/octet-stream" }) : f,
  );
  const media = files.filter((f) => /^(image|video)\//.test(f.type || ""));
  const rest = files.filter((f) => !media.includes(f));
  const out = [];
  for (let i = 0; i < media.length; i += MAX_ALBUM) out.push(media.slice(i, i + MAX_ALBUM));
  for (const f of rest) out.push([f]);
  return out;
}

/**
 * Send `files` (one message: an album, or one file) with progress; the element
 * shows a bar per file, and on failure the error with Try again / Cancel.
 * `meta` per file (optional): extra descriptor fields the API takes (kind,
 * duration_ms, waveform). `onDone(ok)` once: sent (true) or given up (false).
 */
export function uploader(chat, files, { caption = "", original = false, meta = [] } = {}, onDone = () => {}) {
  const rows = files.map((file) => {
    const bar = h("progress", { max: String(file.size || 1), value: "0" });
    const status = h("span", { class: "att-status" }, formatSize(file.size));
    return { file, bar, status, done: false, el: h("div", { class: "att-up-row" }, h("span", { class: "att-name" }, file.name || "file"), bar, status) };
  });
  const buttons = h("div", { class: "att-up-buttons" });
  const el = h("div", { class: "att-upload", "aria-label": "Uploading" }, ...rows.map((r) => r.el), buttons);
  const controller = new AbortController();
  let finished = false;
  let settled; // releases the chat's queue: sent, failed (Try again comes later) or cancelled
  const turn = new Promise((resolve) => (settled = resolve));

  function finish(ok) {
    settled();
    if (finished) return;
    finished = true;
    onDone(ok);
  }

  function failed(r, err) {
    r.status.textContent = err.message;
    r.el.classList.add("failed");
    mount(
      buttons,
      h("button", { type: "button", class: "att-retry", onclick: (e) => (e.stopPropagation(), r.el.classList.remove("failed"), run()) }, "Try again"),
      h("button", { type: "button", onclick: (e) => (e.stopPropagation(), finish(false)) }, "Cancel"),
    );
  }

  async function run() {
    mount(buttons, h("button", { type: "button", class: "att-cancel", onclick: (e) => (e.stopPropagation(), controller.abort(), finish(false)) }, "Cancel"));
    if (rows.length > 1) {
      // an album: one message, one multipart body; the bar of each file fills in turn
      try {
        await postFile(uploadPath(chat), albumForm(files, { caption, original, meta }), null, (sent) => {
          let left = sent;
          for (const r of rows) {
            const part = Math.max(0, Math.min(r.file.size, left));
            left -= r.file.size;
            r.bar.value = String(part);
            r.status.textContent = part >= r.file.size ? "uploaded" : `${formatSize(part)} / ${formatSize(r.file.size)}`;
          }
        }, controller.signal);
      } catch (err) {
        if (!controller.signal.aborted) failed(rows[0], err);
        settled();
        return;
      }
      finish(true);
      return;
    }
    for (const [i, r] of rows.entries()) {
      if (r.done) continue;
      const query = {
        name: r.file.name || "file",
        mime: (r.file.type || "application/octet-stream").toLowerCase(),
        caption: i === 0 ? caption : "",
        original: original ? "1" : "0",
        ...(meta[i] || {}),
      };
      try {
        await postFile(uploadPath(chat), r.file, query, (sent, total) => {
          r.bar.max = String(total || 1);
          r.bar.value = String(sent);
          r.status.textContent = `${formatSize(sent)} / ${formatSize(total)}`;
        }, controller.signal);
        r.done = true;
        r.bar.value = r.bar.max;
        r.status.textContent = "sent";
      } catch (err) {
        if (!controller.signal.aborted) failed(r, err);
        settled();
        return;
      }
    }
    finish(true);
  }
  // One upload at a time per chat, in the order sent: the node stamps each
  // message when its upload is done, so parallel uploads could land out of order.
  const before = queues.get(chat) || Promise.resolve();
  queues.set(chat, before.then(() => turn));
  before.then(() => (finished ? null : run()));
  for (const r of rows) r.status.textContent = `${formatSize(r.file.size)} · waiting`;
  return { el, cancel: () => (controller.abort(), finish(false)) };
}

const queues = new Map(); // chat -> the promise the next upload waits for

/** Send each File of `files` to `chat` (no progress shown); the caption goes with the first. */
export async function sendFiles(chat, files, caption = "", { original = false } = {}) {
  const sent = [];
  for (const [i, file] of Array.from(files).entries()) {
    const query = new URLSearchParams({
      name: file.name || "file",
      mime: (file.type || "application/octet-stream").toLowerCase(),
      caption: i === 0 ? caption : "",
      original: original ? "1" : "0",
    });
    sent.push(await call("POST", `${uploadPath(chat)}?${query}`, undefined, { raw: file, type: file.type }));
  }
  return sent;
}

/**
 * The tray above the composer: files picked, pasted or dropped, shown before
 * they go; "Original" sends photos uncompressed. `onSend(files, {original})`.
 */
export function attachTray(onSend) {
  let files = [];
  const urls = new Map();
  const list = h("div", { class: "att-tray-files" });
  const original = h("input", { type: "checkbox", id: `att-original-${Math.random().toString(36).slice(2)}` });
  const count = h("span", { class: "att-tray-count" });
  const el = h(
    "div",
    { class: "att-tray", hidden: true, role: "group", "aria-label": "Files to send" },
    list,
    h(
      "div",
      { class: "att-tray-bar" },
      count,
      h("label", { class: "att-original", for: original.id }, original, "Original"),
      h("button", { type: "button", class: "att-tray-cancel", onclick: () => clear() }, "Cancel"),
      h("button", { type: "button", class: "primary att-tray-send", onclick: () => send() }, "Send"),
    ),
  );

  function draw() {
    el.hidden = !files.length;
    const photos = files.filter((f) => (f.type || "").startsWith("image/")).length;
    count.textContent = `${files.length} file${files.length === 1 ? "" : "s"}${photos > MAX_ALBUM ? ` (albums of ${MAX_ALBUM})` : ""}`;
    original.parentElement.hidden = !photos;
    mount(
      list,
      files.map((f, i) => {
        let preview;
        if ((f.type || "").startsWith("image/")) {
          if (!urls.has(f)) urls.set(f, URL.createObjectURL(f));
          preview = h("img", { src: urls.get(f), alt: "" });
        } else {
          preview = h("span", { class: "att-tray-icon" }, (f.type || "").startsWith("video/") ? "🎬" : "📄");
        }
        return h(
          "div",
          { class: "att-tray-item", title: f.name },
          preview,
          h("span", { class: "att-name" }, f.name || "file"),
          h("span", { class: "att-size" }, formatSize(f.size)),
          h("button", { type: "button", class: "att-tray-remove", "aria-label": `Remove ${f.name}`, onclick: () => remove(i) }, "×"),
        );
      }),
    );
  }

  function remove(i) {
    const [f] = files.splice(i, 1);
    if (urls.has(f)) URL.revokeObjectURL(urls.get(f));
    urls.delete(f);
    draw();
  }

  function clear() {
    for (const u of urls.values()) URL.revokeObjectURL(u);
    urls.clear();
    files = [];
    original.checked = false;
    draw();
  }

  function send() {
    const chosen = files;
    const opts = { original: original.checked };
    files = [];
    for (const u of urls.values()) URL.revokeObjectURL(u);
    urls.clear();
    original.checked = false;
    draw();
    if (chosen.length) onSend(chosen, opts);
  }

  return {
    el,
    add(more) {
      const list = Array.from(more || []).filter((f) => f instanceof File);
      for (const f of list.filter((x) => x.size > MAX_FILE_BYTES)) toast(`${f.name} is over 2 GB: Boxless cannot send it`, "error");
      list.splice(0, list.length, ...list.filter((x) => x.size <= MAX_FILE_BYTES));
      if (!list.length) return;
      files = [...files, ...list];
      draw();
    },
    get files() {
      return files;
    },
    send,
    clear,
  };
}

/**
 * The attach button (a file picker, several at once) plus paste and drop onto
 * `target` (the conversation), all feeding `tray`. `enabled()` says if the
 * chat takes files now.
 */
export function attachInputs(target, tray, enabled = () => true) {
  const picker = h("input", { type: "file", multiple: true, class: "att-picker", hidden: true, "aria-label": "Files to attach" });
  picker.addEventListener("change", () => {
    tray.add(picker.files);
    picker.value = "";
  });
  const button = h(
    "button",
    { type: "button", class: "icon-button attach-button", "aria-label": "Attach files", title: "Photos and files", onclick: () => enabled() && picker.click() },
    icon("plus"),
  );
  // the camera: on a phone, a picker that opens the camera for a photo or a video
  const shoot = h("input", { type: "file", accept: "image/*,video/*", capture: "environment", class: "att-picker-camera", hidden: true, "aria-label": "Take a photo or video" });
  shoot.addEventListener("change", () => {
    tray.add(shoot.files);
    shoot.value = "";
  });
  const camera = h(
    "button",
    { type: "button", class: "icon-button camera-button", "aria-label": "Camera", title: "Take a photo or video", hidden: !matchMedia("(pointer: coarse)").matches, onclick: () => enabled() && shoot.click() },
    pathIcon(CAMERA_ICON),
  );
  target.addEventListener("paste", (ev) => {
    const files = Array.from(ev.clipboardData?.files || []);
    if (!files.length || !enabled()) return;
    ev.preventDefault();
    tray.add(files);
  });
  let depth = 0;
  target.addEventListener("dragenter", (ev) => {
    if (!Array.from(ev.dataTransfer?.types || []).includes("Files") || !enabled()) return;
    depth += 1;
    target.classList.add("att-dropping");
  });
  target.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) target.classList.remove("att-dropping");
  });
  target.addEventListener("dragover", (ev) => {
    if (Array.from(ev.dataTransfer?.types || []).includes("Files") && enabled()) ev.preventDefault();
  });
  target.addEventListener("drop", (ev) => {
    depth = 0;
    target.classList.remove("att-dropping");
    const files = Array.from(ev.dataTransfer?.files || []);
    if (!files.length || !enabled()) return;
    ev.preventDefault();
    tray.add(files);
  });
  return { button, picker, camera, shoot };
}

// -- showing -------------------------------------------------------------------------------

const thumbs = new Map(); // "mid/index" -> object URL of the sender's thumbnail (kept for the page's life, bounded by LIST_LIMIT per chat)

function thumbnail(messageId, index) {
  const key = `${messageId}/${index}`;
  if (!thumbs.has(key)) thumbs.set(key, imageUrl(`${base(messageId)}/${index}/thumbnail`).catch(() => null));
  return thumbs.get(key);
}

/**
 * The files of one chat: an index by message, the elements under bubbles,
 * progress from events. `rerender()` redraws the list (a file became ready).
 * `openViewer(items, at)` and `voicePlayer(a, messageId)` come from viewer.js
 * and voice.js (passed in to keep this module free of them).
 */
export function chatFiles(chat, { rerender, openViewer, voicePlayer }) {
  let byMessage = new Map(); // message id -> rows by index
  const elements = new Map(); // "mid/index/state" -> element (kept across renders)
  const asked = new Set(); // messages looked up one by one (older than the index)
  let loading = null;
  let auto = null; // the node's auto-download rule: a remote file it wants is queued there
  getAutoSettings()
    .then((s) => (auto = s))
    .catch(() => {});

  async function load() {
    if (loading) return loading;
    loading = (async () => {
      try {
        const { files } = await call("GET", `/chats/${encodeURIComponent(chat)}/attachments?limit=${LIST_LIMIT}`);
        const next = new Map();
        for (const f of files) {
          if (!next.has(f.message_id)) next.set(f.message_id, []);
          next.get(f.message_id).push(f);
        }
        for (const rows of next.values()) rows.sort((a, b) => a.index - b.index);
        for (const [mid, rows] of byMessage) if (!next.has(mid) && asked.has(mid)) next.set(mid, rows);
        byMessage = next;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  /** A message older than the index that looks like files: ask for its own (once). */
  function lookup(messageId) {
    if (asked.has(messageId)) return;
    asked.add(messageId);
    call("GET", base(messageId))
      .then((rows) => {
        if (!rows.length) return;
        byMessage.set(messageId, rows.map((r) => ({ ...r, message_id: messageId })));
        rerender();
      })
      .catch(() => {});
  }

  function rowsOf(m) {
    const rows = byMessage.get(m.id);
    if (!rows && !m.deleted && !m.pending && (m.text || "").startsWith(FILES_ONLY)) lookup(m.id);
    return rows || null;
  }

  /** The chat's photos and videos, oldest first (what the viewer swipes through). */
  function media() {
    const out = [];
    for (const [mid, rows] of [...byMessage].reverse()) {
      // the index is newest message first; an album's files in their order
      for (const a of rows) {
        const k = mediaKind(a);
        if (k === "image" || k === "video") out.push({ ...a, message_id: mid });
      }
    }
    return out;
  }

  function all() {
    const out = [];
    for (const [mid, rows] of byMessage) for (const a of rows) out.push({ ...a, message_id: mid });
    return out;
  }

  function view(a) {
    const items = media();
    const at = items.findIndex((x) => x.message_id === a.message_id && x.index === a.index);
    openViewer(items, Math.max(0, at));
  }

  function fetchNow(a, status, button) {
    button.disabled = true;
    status.textContent = "downloading…";
    call("POST", `${base(a.message_id)}/${a.index}/download`)
      .then((row) => update(a.message_id, row))
      .catch((err) => {
        status.textContent = err.message;
        button.disabled = false;
      });
  }

  function update(messageId, row) {
    const rows = byMessage.get(messageId);
    if (!rows) return;
    const i = rows.findIndex((x) => x.index === row.index);
    if (i >= 0) rows[i] = { ...rows[i], ...row };
    rerender();
  }

  /** A bar for a file on its way (download progress from events). */
  function progressBar(a) {
    return h("progress", { class: "att-progress", max: String(a.size || 1), value: String(a.done || 0), "aria-label": `Downloading ${a.name}` });
  }

  /** "Ask <name> to send it again": the file its nodes lost; their client pins it again
   * and tells ours where, which then fetches it by itself (1:1 and group chats). */
  function askButton(a, status) {
    const b = h("button", { type: "button", class: "att-ask", "aria-label": `Ask for ${a.name} again` }, "Ask again");
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      b.disabled = true;
      call("POST", `${base(a.message_id)}/${a.index}/ask`)
        .then(({ asked }) => {
          status.textContent = `asked ${asked} to send it again`;
          toast(`Asked ${asked}: the file arrives once their device is online`);
        })
        .catch((err) => {
          status.textContent = err.message;
          b.disabled = false;
        });
    });
    return b;
  }

  function fetchButton(a, status) {
    const failed = a.state === "failed";
    if (failed && !a.outgoing && /^the file is no longer on the network/.test(a.error || "")) {
      return h("span", { class: "att-gone" }, askButton(a, status), retryButton(a, status));
    }
    return retryButton(a, status);
  }

  function retryButton(a, status) {
    const failed = a.state === "failed";
    if (!failed && auto !== null && autoWanted(a, auto) && !status.textContent) status.textContent = "queued";
    const b = h("button", { type: "button", class: "att-get", "aria-label": `${failed ? "Try again" : "Download"} ${a.name}` }, failed ? "Try again" : "Download");
    b.addEventListener("click", (e) => {
      e.stopPropagation();
      fetchNow(a, status, b);
    });
    return b;
  }

  function tile(a, count) {
    const kind = mediaKind(a);
    const ready = a.state === "ready";
    const status = h("span", { class: "att-status" }, a.state === "failed" ? a.error || "failed" : "");
    const el = h("div", { class: `att-tile ${kind} ${a.state}`, "data-attachment": `${a.message_id}/${a.index}`, role: "button", tabindex: "0", "aria-label": `${kind === "video" ? "Video" : "Photo"} ${a.name}: open` });
    if (kind === "image" && ready) {
      el.append(h("img", { src: contentUrl(a.message_id, a.index), alt: a.name, loading: "lazy", decoding: "async" }));
    } else if (a.thumbnail) {
      const img = h("img", { alt: a.name });
      thumbnail(a.message_id, a.index).then((src) => (src ? (img.src = src) : img.remove()));
      el.append(img);
    } else if (kind === "video") {
      // no thumbnail: the first frame (the API answers the Range request at once)
      el.append(h("video", { src: `${contentUrl(a.message_id, a.index)}#t=0.1`, preload: "metadata", muted: true, playsinline: true }));
    } else {
      el.append(h("span", { class: "att-placeholder" }, "🖼"));
    }
    if (kind === "video") el.append(h("span", { class: "att-play", "aria-hidden": "true" }, "▶"), a.duration_ms ? h("span", { class: "att-duration" }, formatDuration(a.duration_ms)) : null);
    if (!ready && a.state !== "ready") {
      const over = h("div", { class: "att-over" });
      if (a.state === "downloading") over.append(progressBar(a));
      // a video plays while it streams; Download keeps it (the auto-download rule left it)
      else if (!a.outgoing) over.append(fetchButton(a, status));
      over.append(status);
      el.append(over);
    }
    if (count === 1 && a.width && a.height) el.classList.add(a.width >= a.height ? "wide" : "tall");
    const open = (e) => {
      e.stopPropagation();
      if (e.target.closest("button")) return;
      view(a);
    };
    el.addEventListener("click", open);
    el.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && e.target === el && open(e));
    return el;
  }

  function fileRow(a) {
    if (/\.boxcard$/i.test(a.name || "")) return appShareCard(a); // js/miniapps.js: an app's shared card
    const status = h("span", { class: "att-status" }, a.state === "failed" ? a.error || "failed" : "");
    const row = h(
      "div",
      { class: `att-file ${a.state}`, "data-attachment": `${a.message_id}/${a.index}` },
      h("span", { class: "att-file-icon", "aria-hidden": "true" }, "📄"),
      h("span", { class: "att-file-info" }, h("span", { class: "att-name" }, a.name), h("span", { class: "att-size" }, formatSize(a.size)), status),
    );
    if (mediaKind(a) === "audio") row.append(h("audio", { src: contentUrl(a.message_id, a.index), controls: true, preload: "none" }));
    if ((a.state === "ready" || a.outgoing) && /\.boxapp$/i.test(a.name || "")) row.append(appCardButton(a)); // js/miniapps.js
    if (a.state === "ready" || a.outgoing) {
      const save = h("a", { class: "att-save button", href: contentUrl(a.message_id, a.index), download: a.name, "aria-label": `Save ${a.name}` }, "Save");
      save.addEventListener("click", (e) => e.stopPropagation());
      row.append(save);
    } else if (a.state === "downloading") {
      row.append(progressBar(a));
    } else {
      row.append(fetchButton(a, status));
    }
    return row;
  }

  function element(a, count) {
    const key = `${a.message_id}/${a.index}/${a.state}`;
    if (elements.has(key)) return elements.get(key);
    const kind = mediaKind(a);
    const el = kind === "image" || kind === "video" ? tile(a, count) : kind === "voice" ? voicePlayer(a) : fileRow(a);
    for (const k of elements.keys()) if (k.startsWith(`${a.message_id}/${a.index}/`)) elements.delete(k);
    elements.set(key, el);
    return el;
  }

  /** The element with message `m`'s files, or null; and whether its text is only the file names. */
  function block(m) {
    const rows = rowsOf(m);
    if (!rows || !rows.length || m.deleted) return { el: null, filesOnly: false };
    const withIds = rows.map((a) => ({ ...a, message_id: m.id }));
    const visual = withIds.filter((a) => ["image", "video"].includes(mediaKind(a)));
    const others = withIds.filter((a) => !visual.includes(a));
    const box = h("div", { class: "attachments" });
    if (visual.length) box.append(h("div", { class: `att-album n${Math.min(visual.length, 9)}` }, visual.map((a) => element(a, visual.length))));
    for (const a of others) box.append(element(a, 1));
    const filesOnly = m.text === FILES_ONLY + rows.map((a) => a.name).join(", ");
    return { el: box, filesOnly };
  }

  /** attachment_progress / attachment_ready from app.js. */
  async function onEvent(ev) {
    if (ev.chat && ev.chat !== chat) return;
    if (ev.type === "attachment_progress") {
      const rows = byMessage.get(ev.message_id);
      const a = rows && rows.find((x) => x.index === ev.index);
      if (a && a.state !== "downloading") {
        a.state = "downloading";
        a.done = ev.done;
        rerender();
      } else if (a) {
        a.done = ev.done;
      }
      for (const bar of document.querySelectorAll(`[data-attachment="${CSS.escape(`${ev.message_id}/${ev.index}`)}"] progress`)) bar.value = ev.done;
      return;
    }
    try {
      const rows = await call("GET", base(ev.message_id));
      byMessage.set(ev.message_id, rows.map((r) => ({ ...r, message_id: ev.message_id })));
      rerender();
      if (ev.ok === false) toast(`A file could not be fetched: ${ev.error || "try again"}`, "error");
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
    }
  }

  return { load, block, onEvent, media, all, view };
}

export const AUTO_RULES = [
  ["photos", "Photos only (and voice notes)"],
  ["media", "Photos and videos"],
  ["all", "All files"],
  ["never", "Never"],
];
const AUTO_KINDS = { photos: ["image", "sticker", "voice"], media: ["image", "sticker", "voice", "video"] };

/** Whether the node fetches the received file `a` by itself under settings `s` (as
 * client/attachments.py auto_downloads decides). */
export function autoWanted(a, s) {
  if (s.auto_download === "never" || a.size > s.auto_download_bytes) return false;
  return s.auto_download === "all" || (AUTO_KINDS[s.auto_download] || []).includes(a.kind);
}

/** Both settings: `{auto_download: never|photos|media|all, auto_download_bytes}`. */
export async function getAutoSettings() {
  return call("GET", "/attachments/settings");
}

export async function setAutoSettings(change) {
  return call("PUT", "/attachments/settings", change);
}

/** The auto-download setting: files up to this many bytes are fetched when they arrive. */
export async function getAutoDownload() {
  return (await call("GET", "/attachments/settings")).auto_download_bytes;
}

export async function setAutoDownload(bytes) {
  return (await call("PUT", "/attachments/settings", { auto_download_bytes: bytes })).auto_download_bytes;
}
