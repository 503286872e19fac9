// The Chats tab: one row per conversation, newest first, with unread counts.

import { avatar, h, icon, mount, shortTime } from "./dom.js";
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
      avatar(c.name, c.identity_key),
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

export function chatsView() {
  const list = h("ul", { class: "rows", "aria-label": "Chats" });
  const el = h(
    "div",
    { class: "tab-view" },
    h(
      "header",
      { class: "topbar" },
      h("h1", {}, "Chats"),
      h("a", { class: "icon-button", href: "#/contacts", "aria-label": "Add a contact" }, icon("plus")),
    ),
    h("div", { class: "scroll" }, list),
  );
  function update() {
    const shown = store.contacts.filter((c) => ["accepted", "request_sent", "request_received"].includes(c.state));
    const when = (c) => {
      const last = (store.summaries.get(c.identity_key) || {}).last;
      return last ? last.sent_at_ms : c.added_at_ms;
    };
    shown.sort((a, b) => when(b) - when(a));
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
    mount(list, shown.map(rowFor));
  }
  return { el, update };
}
