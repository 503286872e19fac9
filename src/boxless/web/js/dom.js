// Small DOM helpers. Text from contacts is untrusted: it only ever goes into
// text nodes and attributes set through the DOM, never through innerHTML.

import { ApiError } from "./api.js";

/**
 * h("button", {class: "x", onclick: f, "aria-label": "Send"}, "child", node, [more])
 * Attributes starting with "on" become listeners; false/null attributes are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "dataset") {
      Object.assign(el.dataset, value);
    } else if (name === "value") {
      el.value = value;
    } else if (name === "style") {
      el.style.cssText = String(value); // through CSSOM: the CSP forbids style attributes
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace all children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const ICONS = {
  chats: "M4 4h16v11H8l-4 4z",
  contacts:
    "M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7zm7.5 0a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM2 20c0-3.3 3.1-6 7-6s7 2.7 7 6zm15.3-6c2.7.5 4.7 2.9 4.7 6h-4.3c0-2.4-.1-4.3-.4-6z",
  discover: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm3.5 6.5-2 5-5 2 2-5z",
  me: "M12 12a5 5 0 1 0 0-10 5 5 0 0 0 0 10zm-8 10c0-4 3.6-7 8-7s8 3 8 7z",
  back: "M15 5l-7 7 7 7",
  send: "M3 20l18-8L3 4v6l12 2-12 2z",
  shield: "M12 2l8 3v6c0 5-3.4 9.4-8 11-4.6-1.6-8-6-8-11V5z",
  plus: "M11 4h2v7h7v2h-7v7h-2v-7H4v-2h7z",
  close: "M6 6l12 12M18 6L6 18",
  reply: "M10 8V4L3 11l7 7v-4c5 0 8 1.5 11 5-1-5-4-10-11-11z",
  qr: "M3 3h7v7H3zm2 2v3h3V5zm9-2h7v7h-7zm2 2v3h3V5zM3 14h7v7H3zm2 2v3h3v-3zm9-2h3v3h-3zm4 3h3v4h-4v-3h1zm-4 1h2v3h-2z",
  group:
    "M8 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm8 0a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM1.5 19c0-3 2.9-5.5 6.5-5.5s6.5 2.5 6.5 5.5zm14.2 0c0-2-.8-3.8-2.1-5.1.8-.3 1.6-.4 2.4-.4 3.6 0 6.5 2.5 6.5 5.5z",
  pin: "M15 3l6 6-2 1-3 3 .5 5-1.5 1.5-4-4L5 21l-1-1 5.5-6-4-4L7 8.5l5 .5 3-3z",
  muted:
    "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zM18 16v-5c0-3-1.6-5.4-4.5-6.1V4a1.5 1.5 0 0 0-3 0v.9c-.6.1-1.1.4-1.6.7L18 14.7zM3.3 2.3 2 3.6l4.2 4.2C6.1 8.8 6 9.9 6 11v5l-2 2v1h13.6l2.8 2.8 1.3-1.3z",
  broadcast: "M3 9v6h4l6 5V4L7 9zm13.5 3a4.5 4.5 0 0 0-2.5-4v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z",
  info: "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm1 15h-2v-6h2zm0-8h-2V7h2z",
};

/** An inline SVG icon (decorative: hidden from assistive technology). */
export function icon(name, size = 24) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name] || "");
  const stroked = name === "back" || name === "close";
  path.setAttribute("fill", stroked ? "none" : "currentColor");
  if (stroked) {
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2.2");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
  }
  svg.append(path);
  return svg;
}

/** A data: URL for a base64 picture, typed from its first bytes (PNG, WebP, else JPEG). */
export function imageSrc(base64) {
  const type = base64.startsWith("iVBORw0KGgo") ? "png" : base64.startsWith("UklGR") ? "webp" : "jpeg";
  return `data:image/${type};base64,${base64}`;
}

/**
 * A user's avatar: their picture (`image`, base64) when they have one, else
 * the first letter of `name` on a colour from `key`.
 */
export function avatar(name, key = "", size = "", image = null) {
  if (image) return h("img", { class: `avatar ${size}`, src: imageSrc(image), alt: "" });
  const hue = key ? parseInt(key.slice(0, 4), 16) % 360 : 150;
  const letter = (Array.from((name || "?").trim())[0] || "?").toUpperCase();
  return h(
    "span",
    { class: `avatar ${size}`, style: `--hue:${hue}`, "aria-hidden": "true" },
    letter,
  );
}

export const MAX_PICTURE_BYTES = 48 * 1024; // what one message carries (the API's limit)
// A group picture is an attachment (fetched by members); its signed op carries a thumbnail.
export const GROUP_PICTURE_BYTES = 200 * 1024; // an attachment now (the API's limit is 256 KiB)

/**
 * A picture ready to upload, as base64: the centre square of the image `file`,
 * at most `side` px, as a JPEG of at most `maxBytes` (lower quality, then fewer
 * pixels, until it fits). Throws an Error with a message for people if the
 * file is not a picture the browser can read.
 */
export async function pictureForUpload(file, side = 256, maxBytes = MAX_PICTURE_BYTES) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (_) {
    throw new Error("That file is not a picture this browser can read: choose a PNG or JPEG");
  }
  const crop = Math.min(bitmap.width, bitmap.height);
  const sx = (bitmap.width - crop) / 2;
  const sy = (bitmap.height - crop) / 2;
  for (let size = Math.min(side, crop); size >= 32; size = Math.floor(size * 0.75)) {
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; // JPEG has no transparency: show it as white, not black
    ctx.fillRect(0, 0, size, size);
    ctx.drawImage(bitmap, sx, sy, crop, crop, 0, 0, size, size);
    for (const quality of [0.85, 0.7, 0.55, 0.4]) {
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
      if (blob && blob.size <= maxBytes) return blobBase64(blob);
    }
  }
  throw new Error("That picture could not be made small enough: try another one");
}

function blobBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

/** Up to two initials of `name` ("Boxless demo" → "BD"), for group avatars. */
export function initials(name) {
  const words = (name || "?").trim().split(/\s+/).filter(Boolean);
  const first = (w) => (Array.from(w)[0] || "").toUpperCase();
  return (words.length > 1 ? first(words[0]) + first(words[1]) : first(words[0] || "?")) || "?";
}

const groupPictures = new Map(); // avatar_url -> Promise<loaded?>

/** A group's avatar: its picture when it has one, else its initials on a colour. */
export function groupAvatar(g, size = "") {
  if (g.avatar_url) {
    // an attachment: its thumbnail (from the group op) until the picture is fetched
    const img = h("img", { class: `avatar ${size}`, src: g.avatar ? imageSrc(g.avatar) : g.avatar_url, alt: "" });
    if (g.avatar) {
      if (!groupPictures.has(g.avatar_url)) {
        // one fetch per picture per page (a failure keeps the thumbnail until a reload)
        groupPictures.set(g.avatar_url, new Promise((resolve) => {
          const full = new Image();
          full.onload = () => resolve(true);
          full.onerror = () => resolve(false);
          full.src = g.avatar_url;
        }));
      }
      groupPictures.get(g.avatar_url).then((ok) => ok && (img.src = g.avatar_url));
    }
    return img;
  }
  if (g.avatar) {
    return h("img", { class: `avatar ${size}`, src: imageSrc(g.avatar), alt: "" });
  }
  const hue = g.id ? parseInt(g.id.slice(0, 4), 16) % 360 : 150;
  return h("span", { class: `avatar group ${size}`, style: `--hue:${hue}`, "aria-hidden": "true" }, initials(g.name));
}

/** Run `fn`; an API error becomes an error toast (anything else is a bug: it stays loud). */
export async function guarded(fn) {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    toast(err.message, "error");
    return undefined;
  }
}

/** "14:05" today, "Mon" this week, "2026-11-02" before. */
export function shortTime(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) {
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  if (now - d < 6 * 86400e3) return d.toLocaleDateString([], { weekday: "short" });
  return d.toISOString().slice(0, 10);
}

/** A transient message at the bottom of the screen, read out by screen readers. */
export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 6000 : 3500);
}
