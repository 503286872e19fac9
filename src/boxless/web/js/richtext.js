// A message's text as DOM nodes: http(s) links made clickable (opened in a new
// tab with no opener and no referrer; nothing is fetched when a message arrives,
// there are no previews) and @mentions highlighted (mentions.js).
//
// Text from peers is untrusted: it only becomes text nodes and the href of an
// <a> whose URL parsed as http: or https: (never javascript:, data: or others).

import { h } from "./dom.js";
import { highlight } from "./mentions.js";

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/giu;
const TRAILING = /[.,;:!?)\]}'"»”’]+$/u;

/** `text` with each http(s) URL as a link; returns an array of strings and nodes. */
export function linkify(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0];
    const cut = TRAILING.exec(url);
    // Keep a closing parenthesis that closes one opened inside the URL (Wikipedia links).
    if (cut && !(cut[0] === ")" && url.includes("("))) url = url.slice(0, url.length - cut[0].length);
    let href = null;
    try {
      const parsed = new URL(url);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") href = parsed.href;
    } catch (_) {
      href = null;
    }
    if (!href) continue;
    if (match.index > last) out.push(text.slice(last, match.index));
    out.push(h("a", { class: "text-link", href, target: "_blank", rel: "noopener noreferrer", onclick: (ev) => ev.stopPropagation() }, url));
    last = match.index + url.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/**
 * The text of a message: mentions of `names` highlighted (`mine` is mine,
 * `mentioned` who the message mentions by key; see mentions.highlight), then
 * links in the plain parts.
 */
export function richText(text, names = [], mine = "", mentioned = null) {
  const parts = names.length || mine ? highlight(text, names, mine, mentioned) : [text];
  return parts.flatMap((p) => (typeof p === "string" ? linkify(p) : [p]));
}
