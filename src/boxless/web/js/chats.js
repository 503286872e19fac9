// The Chats tab: one row per conversation (1:1 chats and groups), pinned ones
// on top, then newest first, with unread counts, an "@" for unread mentions, a
// muted mark and a "[Draft] …" line; groups asked to join by link show as
// pending until an admin lets us in. Each row has a menu (its "…" button, a
// right click, a long press, or the context-menu key): pin/unpin, mark
// unread/read, mute/unmute, delete the chat for me. A chat deleted for me is
// hidden until a new message arrives.
// The "+" menu starts a group, joins one by link, opens broadcast lists or
// adds a contact; the bell turns on notifications (js/notify.js).

import { ApiError, call } from "./api.js";
import { avatar, groupAvatar, h, icon, mount, shortTime, toast } from "./dom.js";
import {
  bannerDismissed,
  dismissBanner,
  enableNotifications,
  permission,
  previewsShown,
  setPreviewsShown,
} from "./notify.js";
import {
  changeSettings,
  isTyping,
  refreshSoon,
  settingsOf,
  store,
  unreadOf,
} from "./store.js";
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

// -- the row menu: pin, mark unread/read, mute, delete --------------------------------

let rowMenu = null; // {menu, open(info, opener, x, y), close()} of the chats view
const LONG_PRESS_MS = 500;

/** A list item holding a chat's row link and its "…" menu button (a sibling: never nested). */
function chatItem(info, link) {
  const more = h(
    "button",
    {
      type: "button",
      class: "row-more",
      "aria-label": `More for ${info.name}`,
      "aria-haspopup": "menu",
      title: "Pin, mute, mark unread, delete",
      onclick: (ev) => {
        ev.preventDefault();
        ev.stopPropagation();
        rowMenu.open(info, more);
      },
    },
    "…",
  );
  link.addEventListener("contextmenu", (ev) => {
    ev.preventDefault();
    const keyboard = ev.button !== 2 && ev.clientX === 0 && ev.clientY === 0;
    rowMenu.open(info, more, keyboard ? null : ev.clientX, keyboard ? null : ev.clientY);
  });
  let press = null;
  link.addEventListener("pointerdown", (ev) => {
    if (ev.pointerType !== "touch") return;
    press = setTimeout(() => {
      press = "fired";
      rowMenu.open(info, more, ev.clientX, ev.clientY);
    }, LONG_PRESS_MS);
  });
  const cancel = () => {
    if (press && press !== "fired") clearTimeout(press);
  };
  link.addEventListener("pointerup", cancel);
  link.addEventListener("pointercancel", cancel);
  link.addEventListener("pointermove", cancel);
  link.addEventListener("click", (ev) => {
    if (press === "fired") ev.preventDefault(); // the long press opened the menu instead
    press = null;
  });
  return h("li", { class: `chat-item ${info.pinned ? "pinned" : ""}` }, link, more);
}

async function markRead(info) {
  const [kind, key] = info.chat.split(":");
  if (kind === "contact") await call("POST", `/contacts/${key}/read`);
  else if (info.lastSeq !== null) await call("POST", `/groups/${key}/read`, { seq: info.lastSeq });
  if (settingsOf(info.chat).marked_unread) await changeSettings(info.chat, { marked_unread: false });
  refreshSoon();
}

async function deleteChat(info) {
  const who = info.chat.startsWith("group:") ? "you stay in the group" : `${info.name} stays your contact`;
  if (!window.confirm(`Delete the chat with ${info.name}? Its messages are removed from this device; ${who}.`)) return;
  await call("DELETE", `/chats/${encodeURIComponent(info.chat)}`);
  if (location.hash.startsWith(info.href)) location.hash = "#/chats";
  toast(`Chat with ${info.name} deleted`);
  refreshSoon();
}

function makeRowMenu() {
  const menu = h("div", { class: "menu row-menu", role: "menu", id: "chat-row-menu", hidden: true });
  let opener = null;

  function item(text, iconName, action) {
    return h(
      "button",
      {
        type: "button",
        role: "menuitem",
        tabindex: "-1",
        onclick: async (ev) => {
          ev.stopPropagation();
          close(true);
          try {
            await action();
          } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            toast(err.message, "error");
          }
        },
      },
      iconName ? icon(iconName, 20) : h("span", { class: "menu-icon-space" }),
      h("span", {}, text),
    );
  }

  function open(info, button, x = null, y = null) {
    const s = settingsOf(info.chat);
    const unread = info.unread > 0;
    mount(
      menu,
      item(s.pinned ? "Unpin" : "Pin to top", "pin", () => changeSettings(info.chat, { pinned: !s.pinned })),
      unread
        ? item("Mark as read", null, () => markRead(info))
        : item("Mark as unread", null, () => {
            if (location.hash.startsWith(info.href)) location.hash = "#/chats"; // leave it unread
            return changeSettings(info.chat, { marked_unread: true });
          }),
      item(info.muted ? "Unmute" : "Mute notifications", "muted", async () => {
        await changeSettings(info.chat, { muted: !info.muted });
        refreshSoon(); // a group's mute is the group's own flag
      }),
      item("Delete chat", "close", () => deleteChat(info)),
    );
    menu.setAttribute("aria-label", `${info.name}: chat options`);
    opener = button;
    button.setAttribute("aria-expanded", "true");
    menu.hidden = false;
    const host = menu.offsetParent || document.body;
    const box = host.getBoundingClientRect();
    const at = button.getBoundingClientRect();
    const left = x === null ? at.right - box.left - menu.offsetWidth : x - box.left;
    const top = y === null ? at.bottom - box.top + host.scrollTop : y - box.top + host.scrollTop;
    menu.style.left = `${Math.max(4, Math.min(left, box.width - menu.offsetWidth - 4))}px`;
    menu.style.top = `${Math.max(4, top)}px`;
    menu.querySelector("[role=menuitem]").focus();
    setTimeout(() => document.addEventListener("click", outside), 0);
  }

  function outside(ev) {
    if (!menu.contains(ev.target)) close(false);
  }

  function close(refocus) {
    if (menu.hidden) return;
    menu.hidden = true;
    document.removeEventListener("click", outside);
    if (opener) {
      opener.setAttribute("aria-expanded", "false");
      if (refocus && opener.isConnected) opener.focus();
    }
  }

  menu.addEventListener("keydown", (ev) => {
    const items = [...menu.querySelectorAll("[role=menuitem]")];
    const at = items.indexOf(document.activeElement);
    if (ev.key === "Escape") {
      ev.preventDefault();
      close(true);
    } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const step = ev.key === "ArrowDown" ? 1 : -1;
      items[(at + step + items.length) % items.length].focus();
    } else if (ev.key === "Home" || ev.key === "End") {
      ev.preventDefault();
      items[ev.key === "Home" ? 0 : items.length - 1].focus();
    } else if (ev.key === "Tab") {
      close(false);
    }
  });
  return { menu, open, close };
}

// -- notifications: the bell menu and the banner asking once -------------------------------

const BELL = "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm6-6v-5c0-3.1-1.6-5.6-4.5-6.3V4a1.5 1.5 0 0 0-3 0v.7C7.6 5.4 6 7.9 6 11v5l-2 2v1h16v-1z";

function bellIcon() {
  const svg = icon("chats", 22);
  svg.querySelector("path").setAttribute("d", BELL);
  return svg;
}

async function turnOn() {
  const result = await enableNotifications();
  if (result === "granted") toast("Notifications are on");
  else if (result === "denied") toast("Notifications are blocked: allow them in the browser's site settings", "error");
}

function notifyMenu() {
  const menu = h("div", { class: "menu notify-menu", role: "menu", id: "notify-menu", hidden: true });
  const button = h(
    "button",
    {
      type: "button",
      class: "icon-button",
      "aria-label": "Notifications",
      "aria-haspopup": "menu",
      "aria-expanded": "false",
      "aria-controls": "notify-menu",
      onclick: (ev) => {
        ev.stopPropagation();
        if (menu.hidden) open();
        else close();
      },
    },
    bellIcon(),
  );
  function open() {
    const state = permission();
    const status = {
      granted: "Notifications are on for new messages while Boxless is in the background.",
      denied: "Notifications are blocked: allow them in the browser's site settings.",
      default: "Notifications are off.",
      unsupported: "This browser cannot show notifications.",
    }[state];
    mount(
      menu,
      h("p", { class: "menu-note" }, status),
      state === "default"
        ? h("button", { type: "button", role: "menuitem", onclick: () => { close(); turnOn(); } }, "Turn on notifications")
        : null,
      h(
        "button",
        {
          type: "button",
          role: "menuitemcheckbox",
          "aria-checked": String(previewsShown()),
          onclick: () => {
            setPreviewsShown(!previewsShown());
            close();
          },
        },
        h("span", { class: "check", "aria-hidden": "true" }, previewsShown() ? "✓" : ""),
        "Show message text in notifications",
      ),
    );
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    menu.querySelector("button").focus();
    document.addEventListener("click", close, { once: true });
  }
  function close() {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
  }
  menu.addEventListener("click", (ev) => ev.stopPropagation());
  menu.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      close();
      button.focus();
    }
  });
  return h("div", { class: "menu-anchor" }, button, menu);
}

function notifyBanner() {
  if (permission() !== "default" || bannerDismissed()) return null;
  return h(
    "div",
    { class: "notify-banner", role: "region", "aria-label": "Notifications" },
    h("p", {}, "Get a notification when a message arrives while Boxless is in the background."),
    h(
      "div",
      { class: "notify-actions" },
      h("button", { type: "button", class: "primary", onclick: () => turnOn() }, "Turn on notifications"),
      h("button", { type: "button", onclick: () => dismissBanner() }, "Not now"),
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
  rowMenu = makeRowMenu();
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
