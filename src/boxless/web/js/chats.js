// The Chats tab: one row per conversation (1:1 chats and groups), pinned ones
// on top, then newest first, with unread counts, an "@" for unread mentions, a
// muted mark and a "[Draft] …" line; groups asked to join by link show as
// pending until an admin lets us in. Each row has a menu (its "…" button, a
// right click, a long press, or the context-menu key; js/chatmenu.js): pin/unpin,
// mark unread/read, mute/unmute, delete the chat for me. A chat deleted for me is
// hidden until a new message arrives.
// The "+" menu starts a group, joins one by link, opens broadcast lists or
// adds a contact; the bell and the banner turn on notifications (js/notifybar.js).

import { chatItem, installRowMenu } from "./chatmenu.js";
import { avatar, groupAvatar, h, icon, mount, shortTime } from "./dom.js";
import { notifyBanner, notifyMenu } from "./notifybar.js";
import { isTyping, settingsOf, store, unreadOf } from "./store.js";
import { searchButton } from "./search.js";

export function preview(message) {
  if (!message) return "";
  if (message.deleted) return "Message deleted";
  return (message.outgoing ? "You: " : "") + message.text;
}

/** The "[Draft] …" a row shows instead of its last message, or null. */
function draftLine(chat, href) {
  const draft = settingsOf(chat).draft.trim();
  if (!draft || location.hash === href) return null;
  return h("span", { class: "row-preview draft" }, h("span", { class: "draft-flag" }, "[Draft] "), draft);
}

function marks(chat, muted) {
  const s = settingsOf(chat);
  return [
    s.pinned ? h("span", { class: "pin-mark", title: "Pinned" }, icon("pin", 14)) : null,
    muted ? h("span", { class: "muted-mark", title: "Muted" }, icon("muted", 16)) : null,
  ];
}

function rowFor(c) {
  const chat = `contact:${c.identity_key}`;
  const href = `#/chat/${c.identity_key}`;
  const s = settingsOf(chat);
  const summary = store.summaries.get(c.identity_key) || { last: null, unread: 0 };
  const last = summary.last;
  const unread = unreadOf(chat, summary.unread);
  let line = preview(last);
  if (c.state === "request_received") line = `Wants to add you${c.intro ? `: ${c.intro}` : ""}`;
  else if (c.state === "request_sent" && !last) line = "Request sent, waiting for them to accept";
  if (isTyping(c.identity_key)) line = "typing…";
  const draft = isTyping(c.identity_key) ? null : draftLine(chat, href);
  const label = [
    c.name,
    unread ? `${unread} unread` : "",
    s.pinned ? "pinned" : "",
    s.muted ? "muted" : "",
    draft ? "draft" : "",
  ].filter(Boolean).join(", ");
  return chatItem(
    { chat, name: c.name, href, pinned: s.pinned, muted: s.muted, unread, lastSeq: null },
    h(
      "a",
      {
        class: `row chat-row ${s.pinned ? "pinned" : ""}`,
        href: `#/chat/${c.identity_key}`,
        "aria-current": location.hash === `#/chat/${c.identity_key}` ? "page" : false,
        "aria-label": label,
        dataset: { key: c.identity_key },
      },
      avatar(c.name, c.identity_key, "", c.avatar),
      h(
        "span",
        { class: "row-main" },
        h(
          "span",
          { class: "row-top" },
          h("span", { class: "row-name" }, c.name),
          marks(chat, s.muted),
          h("time", { class: "row-time" }, shortTime(last ? last.sent_at_ms : c.added_at_ms)),
        ),
        h(
          "span",
          { class: "row-bottom" },
          draft || h("span", { class: `row-preview ${isTyping(c.identity_key) ? "typing" : ""}` }, line),
          unread
            ? h("span", { class: `unread ${s.muted ? "quiet" : ""}`, "aria-hidden": "true" }, String(unread))
            : null,
        ),
      ),
    ),
  );
}

/** What a group row says about its last message ("Bob: hi", "You: hi", an event as is). */
export function groupPreview(g) {
  const m = g.last_message;
  if (!g.member && g.member !== undefined) return "You are no longer a member";
  if (!m) return "No messages yet";
  if (m.kind === "event") return m.text;
  return `${m.outgoing ? "You" : m.sender_name || "Someone"}: ${m.text}`;
}

function groupRow(g) {
  const chat = `group:${g.id}`;
  const s = settingsOf(chat);
  const unread = unreadOf(chat, g.unread || 0);
  const mentions = g.mentions || 0;
  const href = `#/group/${g.id}`;
  const draft = draftLine(chat, href);
  const label = [
    `Group ${g.name}`,
    unread ? `${unread} unread` : "",
    mentions ? "you were mentioned" : "",
    s.pinned ? "pinned" : "",
    g.muted ? "muted" : "",
    draft ? "draft" : "",
  ].filter(Boolean).join(", ");
  const lastSeq = g.last_message && g.last_message.seq !== undefined ? g.last_message.seq : null;
  return chatItem(
    { chat, name: g.name, href, pinned: s.pinned, muted: g.muted, unread, lastSeq },
    h(
      "a",
      {
        class: `row chat-row group-row ${g.member === false ? "left" : ""} ${s.pinned ? "pinned" : ""}`,
        href,
        "aria-current": location.hash === href ? "page" : false,
        "aria-label": label,
        dataset: { group: g.id },
      },
      groupAvatar(g),
      h(
        "span",
        { class: "row-main" },
        h(
          "span",
          { class: "row-top" },
          h("span", { class: "row-name" }, g.name),
          marks(chat, g.muted),
          h("time", { class: "row-time" }, shortTime(g.last_message ? g.last_message.sent_at_ms : 0)),
        ),
        h(
          "span",
          { class: "row-bottom" },
          draft && !mentions
            ? draft
            : h(
                "span",
                { class: "row-preview" },
                mentions ? h("span", { class: "mention-flag" }, "[@you] ") : null,
                groupPreview(g),
              ),
          mentions ? h("span", { class: "mention-badge", "aria-hidden": "true", title: "You were mentioned" }, "@") : null,
          unread
            ? h("span", { class: `unread ${g.muted ? "quiet" : ""}`, "aria-hidden": "true" }, String(unread))
            : null,
        ),
      ),
    ),
  );
}

function joinRow(j) {
  return h(
    "li",
    { class: "row chat-row join-row", dataset: { group: j.group } },
    groupAvatar({ id: j.group, name: j.name }),
    h(
      "span",
      { class: "row-main" },
      h("span", { class: "row-top" }, h("span", { class: "row-name" }, j.name)),
      h("span", { class: "row-bottom" }, h("span", { class: "row-preview" }, "Requested: waiting for an admin to let you in")),
    ),
  );
}

function newMenu() {
  const items = [
    ["#/new-group", "group", "New group"],
    ["#/join-group", "qr", "Join a group by link"],
    ["#/broadcasts", "broadcast", "Broadcast lists"],
    ["#/contacts", "contacts", "Add a contact"],
  ];
  const menu = h(
    "div",
    { class: "menu", role: "menu", id: "new-menu", hidden: true },
    items.map(([href, name, text]) =>
      h("a", { href, role: "menuitem", onclick: () => close() }, icon(name, 20), h("span", {}, text)),
    ),
  );
  const button = h(
    "button",
    {
      type: "button",
      class: "icon-button",
      "aria-label": "New chat, group or broadcast",
      "aria-haspopup": "menu",
      "aria-expanded": "false",
      "aria-controls": "new-menu",
      onclick: (ev) => {
        ev.stopPropagation();
        if (menu.hidden) open();
        else close();
      },
    },
    icon("plus"),
  );
  function open() {
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    document.addEventListener("click", close, { once: true });
  }
  function close() {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
  }
  menu.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      close();
      button.focus();
    }
  });
  return h("div", { class: "menu-anchor" }, button, menu);
}

/** Deleted for me and nothing new since: not listed (the next message brings it back). */
function cleared(chat, last) {
  return settingsOf(chat).cleared_at_ms !== null && !last;
}

export function chatsView() {
  const list = h("ul", { class: "rows", "aria-label": "Chats" });
  const banner = h("div", { class: "notify-slot" });
  const rowMenu = installRowMenu();
  const scroll = h("div", { class: "scroll chats-scroll" }, banner, list, rowMenu.menu);
  const el = h(
    "div",
    { class: "tab-view" },
    h("header", { class: "topbar" }, h("h1", {}, "Chats"), h("div", { class: "topbar-actions" }, searchButton(), notifyMenu(), newMenu())),
    scroll,
  );
  scroll.addEventListener("scroll", () => rowMenu.close(false));
  function update() {
    mount(banner, notifyBanner());
    if (!rowMenu.menu.hidden) return; // not under an open menu: the next change redraws
    const contacts = store.contacts.filter((c) => ["accepted", "request_sent", "request_received"].includes(c.state));
    const pinned = (chat) => settingsOf(chat).pinned;
    const shown = [
      ...contacts
        .map((c) => ({ c, last: (store.summaries.get(c.identity_key) || {}).last }))
        .filter(({ c, last }) => !cleared(`contact:${c.identity_key}`, last))
        .map(({ c, last }) => ({
          pinned: pinned(`contact:${c.identity_key}`),
          when: last ? last.sent_at_ms : c.added_at_ms,
          row: () => rowFor(c),
        })),
      ...store.groups
        .filter((g) => !cleared(`group:${g.id}`, g.last_message))
        .map((g) => ({
          pinned: pinned(`group:${g.id}`),
          when: g.last_message ? g.last_message.sent_at_ms : 0,
          row: () => groupRow(g),
        })),
      ...store.joins.map((j) => ({ pinned: false, when: j.requested_at_ms || 0, row: () => joinRow(j) })),
    ];
    shown.sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.when - a.when);
    if (!shown.length) {
      mount(
        list,
        h(
          "li",
          { class: "empty" },
          h("p", {}, "No chats yet."),
          h("a", { href: "#/contacts", class: "button primary" }, "Add a contact"),
        ),
      );
      return;
    }
    mount(list, shown.map((s) => s.row()));
  }
  return { el, update };
}
