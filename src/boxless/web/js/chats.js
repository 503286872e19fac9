// The Chats tab: one row per conversation (1:1 chats and groups), newest
// first, with unread counts, an "@" for unread mentions and a muted mark;
// groups asked to join by link show as pending until an admin lets us in.
// The "+" menu starts a group, joins one by link, opens broadcast lists or
// adds a contact.

import { avatar, groupAvatar, h, icon, mount, shortTime } from "./dom.js";
import { isTyping, store } from "./store.js";

export function preview(message) {
  if (!message) return "";
  if (message.deleted) return "Message deleted";
  return (message.outgoing ? "You: " : "") + message.text;
}

function rowFor(c) {
  const summary = store.summaries.get(c.identity_key) || { last: null, unread: 0 };
  const last = summary.last;
  let line = preview(last);
  if (c.state === "request_received") line = `Wants to add you${c.intro ? `: ${c.intro}` : ""}`;
  else if (c.state === "request_sent" && !last) line = "Request sent, waiting for them to accept";
  if (isTyping(c.identity_key)) line = "typing…";
  const label = `${c.name}${summary.unread ? `, ${summary.unread} unread` : ""}`;
  return h(
    "li",
    {},
    h(
      "a",
      {
        class: "row chat-row",
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
          h("time", { class: "row-time" }, shortTime(last ? last.sent_at_ms : c.added_at_ms)),
        ),
        h(
          "span",
          { class: "row-bottom" },
          h("span", { class: `row-preview ${isTyping(c.identity_key) ? "typing" : ""}` }, line),
          summary.unread
            ? h("span", { class: "unread", "aria-hidden": "true" }, String(summary.unread))
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
  const unread = g.unread || 0;
  const mentions = g.mentions || 0;
  const href = `#/group/${g.id}`;
  const label = [
    `Group ${g.name}`,
    unread ? `${unread} unread` : "",
    mentions ? "you were mentioned" : "",
    g.muted ? "muted" : "",
  ].filter(Boolean).join(", ");
  return h(
    "li",
    {},
    h(
      "a",
      {
        class: `row chat-row group-row ${g.member === false ? "left" : ""}`,
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
          g.muted ? h("span", { class: "muted-mark", title: "Muted" }, icon("muted", 16)) : null,
          h("time", { class: "row-time" }, shortTime(g.last_message ? g.last_message.sent_at_ms : 0)),
        ),
        h(
          "span",
          { class: "row-bottom" },
          h(
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

export function chatsView() {
  const list = h("ul", { class: "rows", "aria-label": "Chats" });
  const el = h(
    "div",
    { class: "tab-view" },
    h("header", { class: "topbar" }, h("h1", {}, "Chats"), newMenu()),
    h("div", { class: "scroll" }, list),
  );
  function update() {
    const contacts = store.contacts.filter((c) => ["accepted", "request_sent", "request_received"].includes(c.state));
    const shown = [
      ...contacts.map((c) => {
        const last = (store.summaries.get(c.identity_key) || {}).last;
        return { when: last ? last.sent_at_ms : c.added_at_ms, row: () => rowFor(c) };
      }),
      ...store.groups.map((g) => ({
        when: g.last_message ? g.last_message.sent_at_ms : 0,
        row: () => groupRow(g),
      })),
      ...store.joins.map((j) => ({ when: j.requested_at_ms || 0, row: () => joinRow(j) })),
    ];
    shown.sort((a, b) => b.when - a.when);
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
