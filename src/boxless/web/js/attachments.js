// Attachments in the conversation views (api/attachments.py, docs/attachments.md).
//
// A view calls `sendFiles(chat, files, caption)` from its attach button, paste or
// drop handler, `attachmentsFor(messageId)` to draw a message's files under its
// bubble, and passes app.js's attachment_progress / attachment_ready events to
// `onAttachmentEvent(ev)` (its `onAttachment` hook) to move progress bars.
// Everything a peer chose (names, types) is text here, never HTML: the DOM helper
// `h` sets text content. Media play from the API (same origin, the session
// cookie); only types the API marks `inline` are shown inline, others download.

import { call, imageUrl } from "./api.js";
import { h } from "./dom.js";

const base = (messageId) => `/messages/${encodeURIComponent(messageId)}/attachments`;

function uploadPath(chat) {
  const [kind, id] = chat.split(":");
  if (kind === "contact") return `/contacts/${id}/attachments`;
  if (kind === "group") return `/groups/${id}/attachments`;
  throw new Error(`not a chat: ${chat}`);
}

/** Send each File of `files` to `chat` (contact:<key> or group:<gid>); the caption goes with the first. */
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

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function fileRow(messageId, a) {
  const url = `/api/v1${base(messageId)}/${a.index}/content`;
  const bar = h("progress", { max: String(a.size || 1), value: String(a.done) });
  const status = h("span", { class: "attachment-status" }, a.state === "failed" ? a.error || "failed" : "");
  const row = h("div", { class: "attachment", "data-attachment": `${messageId}/${a.index}` });
  if (a.state === "ready" && a.inline && a.kind === "image") {
    row.append(h("img", { src: url, alt: a.name, loading: "lazy" }));
  } else if (a.inline && (a.mime.startsWith("video/") || a.mime.startsWith("audio/"))) {
    // plays while it downloads: the API answers Range requests
    row.append(h(a.mime.startsWith("video/") ? "video" : "audio", { src: url, controls: "", preload: "metadata" }));
  } else if (a.thumbnail && a.state !== "ready") {
    const img = h("img", { alt: a.name });
    imageUrl(`${base(messageId)}/${a.index}/thumbnail`).then((src) => (img.src = src)).catch(() => img.remove());
    row.append(img);
  }
  const link = h("a", { href: url, download: a.name }, `${a.name} (${size(a.size)})`);
  row.append(link, status);
  if (a.state === "remote" || a.state === "failed") {
    const get = h("button", { type: "button" }, a.state === "failed" ? "Try again" : "Download");
    get.addEventListener("click", async () => {
      get.disabled = true;
      try {
        const now = await call("POST", `${base(messageId)}/${a.index}/download`);
        row.replaceWith(fileRow(messageId, now));
      } catch (err) {
        status.textContent = err.message;
        get.disabled = false;
      }
    });
    row.append(get);
  }
  if (a.state === "downloading" || a.state === "remote") row.append(bar);
  return row;
}

/** An element with a message's files (empty if it has none). */
export async function attachmentsFor(messageId) {
  const box = h("div", { class: "attachments" });
  for (const a of await call("GET", base(messageId))) box.append(fileRow(messageId, a));
  return box;
}

/** Move a progress bar, or redraw a file when it is ready or failed. */
export async function onAttachmentEvent(ev) {
  const row = document.querySelector(`[data-attachment="${CSS.escape(`${ev.message_id}/${ev.index}`)}"]`);
  if (!row) return;
  if (ev.type === "attachment_progress") {
    const bar = row.querySelector("progress");
    if (bar) bar.value = ev.done;
    return;
  }
  const list = await call("GET", base(ev.message_id));
  const a = list.find((x) => x.index === ev.index);
  if (a) row.replaceWith(fileRow(ev.message_id, a));
}
