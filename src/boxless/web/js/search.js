// Search: #/search (every chat) and #/search/<chat> (one chat: "contact:<key>" or
// "group:<id>"). Results come grouped — contacts, groups, messages — newest
// messages first; a message opens its chat scrolled to it (#/chat/<key>/m/<id>,
// #/group/<gid>/m/<id>). The words found are highlighted with <mark> elements
// built through the DOM: message text only ever goes into text nodes.
//
// For other views: searchButton() (the Chats tab's entry point), openSearch(chat)
// (search within one chat), highlighted(text, terms) and messageHref(chat, id).

import { ApiError, call } from "./api.js";
import { avatar, groupAvatar, h, icon, mount, shortTime } from "./dom.js";
import { contact, group } from "./store.js";

const DEBOUNCE_MS = 200;
const LENS = "M10 3a7 7 0 0 1 5.6 11.2l5.1 5.1-1.4 1.4-5.1-5.1A7 7 0 1 1 10 3zm0 2a5 5 0 1 0 0 10 5 5 0 0 0 0-10z";

/** A magnifying-glass icon (dom.js's icon set, another path). */
export function searchIcon(size = 22) {
  const svg = icon("chats", size);
  const path = svg.querySelector("path");
  path.setAttribute("d", LENS);
  path.setAttribute("fill", "currentColor");
  path.removeAttribute("stroke");
  return svg;
}

/** The button that opens #/search (the Chats tab's top bar). */
export function searchButton() {
  return h("a", { class: "icon-button", href: "#/search", id: "open-search", "aria-label": "Search" }, searchIcon());
}

/** The header button of a chat that searches only that chat ("contact:<key>" or "group:<id>"). */
export function chatSearchButton(chat) {
  return h("a", { class: "icon-button", href: `#/search/${chat}`, "aria-label": "Search in this chat" }, searchIcon());
}

/** Open the search pane for one chat ("contact:<key>" or "group:<id>"), or every chat. */
export function openSearch(chat = null) {
  location.hash = chat ? `#/search/${chat}` : "#/search";
}

/** The route that shows message `id` of `chat` in context. */
export function messageHref(chat, id) {
  const [kind, key] = chat.split(":");
  return kind === "group" ? `#/group/${key}/m/${id}` : `#/chat/${key}/m/${id}`;
}

/** `text` as nodes, each occurrence of a term (case-insensitive) in a <mark>. */
export function highlighted(text, terms) {
  const lower = text.toLowerCase();
  const words = (terms || []).filter(Boolean).map((t) => t.toLowerCase());
  if (!words.length || lower.length !== text.length) return [text];
  const out = [];
  let at = 0;
  while (at < text.length) {
    let best = -1;
    let len = 0;
    for (const w of words) {
      const i = lower.indexOf(w, at);
      if (i >= 0 && (best < 0 || i < best || (i === best && w.length > len))) {
        best = i;
        len = w.length;
      }
    }
    if (best < 0) break;
    if (best > at) out.push(text.slice(at, best));
    out.push(h("mark", {}, text.slice(best, best + len)));
    at = best + len;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

function chatName(chat) {
  const [kind, key] = chat.split(":");
  if (kind === "group") return (group(key) || {}).name || "Group";
  return (contact(key) || {}).name || key.slice(0, 8);
}

function section(title, items) {
  if (!items.length) return null;
  return h("section", { class: "search-section" }, h("h2", { class: "search-title" }, title), h("ul", { class: "rows" }, items));
}

function messageRow(m, terms, withChat) {
  const [kind, key] = m.chat.split(":");
  const pic =
    kind === "group"
      ? groupAvatar(group(key) || { id: key, name: m.chat_name })
      : avatar(m.chat_name, key, "", (contact(key) || {}).avatar || null);
  return h(
    "li",
    {},
    h(
      "a",
      { class: "row search-hit", href: messageHref(m.chat, m.id), dataset: { chat: m.chat, id: m.id } },
      withChat ? pic : null,
      h(
        "span",
        { class: "row-main" },
        h(
          "span",
          { class: "row-top" },
          h("span", { class: "row-name" }, withChat ? m.chat_name : m.outgoing ? "You" : m.sender_name),
          h("span", { class: "row-time" }, shortTime(m.sent_at_ms)),
        ),
        h(
          "span",
          { class: "search-snippet" },
          withChat && kind === "group" ? h("span", { class: "search-sender" }, `${m.outgoing ? "You" : m.sender_name}: `) : null,
          withChat && kind !== "group" && m.outgoing ? h("span", { class: "search-sender" }, "You: ") : null,
          highlighted(m.snippet, terms),
        ),
      ),
    ),
  );
}

function nameRow(x, terms) {
  const [kind, key] = x.chat.split(":");
  const g = kind === "group" ? group(key) || { id: key, name: x.name } : null;
  const c = kind === "contact" ? contact(key) : null;
  return h(
    "li",
    {},
    h(
      "a",
      { class: "row search-name", href: kind === "group" ? `#/group/${key}` : `#/chat/${key}`, dataset: { chat: x.chat } },
      g ? groupAvatar(g) : avatar(x.name, key, "", c ? c.avatar : null),
      h("span", { class: "row-main" }, h("span", { class: "row-name" }, highlighted(x.name, terms))),
    ),
  );
}

/** The search pane: #/search, or #/search/<chat> for one chat. */
export function searchView(chat = null) {
  const inChat = chat && /^(contact|group):[0-9a-f]{64}$/.test(chat) ? chat : null;
  const input = h("input", {
    type: "search",
    id: "search-input",
    class: "search-input",
    placeholder: inChat ? `Search in ${chatName(inChat)}` : "Search chats, contacts, groups",
    "aria-label": "Search",
    maxlength: 200,
    autocomplete: "off",
    enterkeyhint: "search",
  });
  const results = h("div", { class: "search-results", "aria-live": "polite" });
  const back = inChat ? messageHref(inChat, "").replace(/\/m\/$/, "") : "#/chats";
  const el = h(
    "div",
    { class: "conversation panel search-pane" },
    h(
      "header",
      { class: "topbar conv-top search-top" },
      h("a", { class: "icon-button back", href: back, "aria-label": "Back" }, icon("back")),
      h("form", { class: "search-form", role: "search", onsubmit: (ev) => { ev.preventDefault(); run(); } }, input),
    ),
    h("div", { class: "scroll" }, results),
  );
  let timer = null;
  let asked = 0; // the latest request: answers to older ones are dropped
  async function run() {
    clearTimeout(timer);
    const q = input.value.trim();
    const mine = ++asked;
    if (!q) {
      mount(results, h("p", { class: "empty" }, inChat ? `Search the messages of ${chatName(inChat)}.` : "Search every chat, and contacts and groups by name."));
      return;
    }
    const params = new URLSearchParams({ q, limit: "100" });
    if (inChat) params.set("chat", inChat);
    let found;
    try {
      found = await call("GET", `/search?${params}`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (mine === asked) mount(results, h("p", { class: "empty error", role: "alert" }, err.message));
      return;
    }
    if (mine !== asked) return;
    const terms = found.terms;
    const parts = [
      section("Contacts", found.contacts.map((x) => nameRow(x, terms))),
      section("Groups", found.groups.map((x) => nameRow(x, terms))),
      section(inChat ? `Messages in ${chatName(inChat)}` : "Messages", found.messages.map((m) => messageRow(m, terms, !inChat))),
    ].filter(Boolean);
    mount(results, parts.length ? parts : h("p", { class: "empty" }, `Nothing found for “${q}”.`));
  }
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(run, DEBOUNCE_MS);
  });
  run();
  let focused = false;
  return {
    el,
    update() {
      if (!focused) {
        focused = true;
        setTimeout(() => input.focus(), 0);
      }
    },
    destroy() {
      clearTimeout(timer);
      asked++;
    },
  };
}
