// Broadcast lists: a named list of up to 200 accepted contacts; a broadcast
// is one 1:1 message to each (it shows in each of those chats), and the list
// shows what was sent with how many recipients have it and have read it.

import { ApiError, call } from "./api.js";
import { guarded, h, icon, mount, shortTime, toast } from "./dom.js";
import { contactPicker } from "./newgroup.js";
import { refreshGroups, refreshSoon, store } from "./store.js";

export const MAX_RECIPIENTS = 200;

function panel(titleText, back, ...children) {
  return h(
    "div",
    { class: "conversation panel" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: back, "aria-label": "Back" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, titleText)),
      h("a", { class: "icon-button", href: "#/new-broadcast", "aria-label": "New broadcast list" }, icon("plus")),
    ),
    ...children,
  );
}

function count(list) {
  const n = (list.members || []).length;
  return `${n} recipient${n === 1 ? "" : "s"}`;
}

export function broadcastsView() {
  const rows = h("ul", { class: "rows", "aria-label": "Broadcast lists" });
  function update() {
    if (!store.broadcasts.length) {
      return mount(
        rows,
        h(
          "li",
          { class: "empty" },
          h("p", {}, "A broadcast list sends one message to many contacts, each as a private 1:1 message."),
          h("a", { href: "#/new-broadcast", class: "button primary" }, "New broadcast list"),
        ),
      );
    }
    mount(
      rows,
      store.broadcasts.map((b) =>
        h(
          "li",
          {},
          h(
            "a",
            { class: "row chat-row", href: `#/broadcast/${b.id}`, dataset: { broadcast: b.id } },
            h("span", { class: "avatar broadcast-avatar", "aria-hidden": "true" }, icon("broadcast")),
            h("span", { class: "row-main" }, h("span", { class: "row-name" }, b.name), h("span", { class: "row-preview" }, b.last_broadcast ? `You: ${b.last_broadcast.text}` : count(b))),
          ),
        ),
      ),
    );
  }
  return { el: panel("Broadcast lists", "#/chats", h("div", { class: "scroll" }, rows)), update };
}

export function newBroadcastView() {
  const name = h("input", { id: "broadcast-name", type: "text", maxlength: 64, placeholder: "Neighbours, Team, …" });
  const picker = contactPicker("broadcast-members", MAX_RECIPIENTS);
  const error = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "card", "aria-label": "New broadcast list" },
    h("label", { for: "broadcast-name" }, "List name"),
    name,
    h("label", { for: "broadcast-members" }, "Recipients"),
    picker.el,
    error,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Create list")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    const members = picker.selected();
    if (!name.value.trim()) return void (error.textContent = "Give the list a name.");
    if (!members.length) return void (error.textContent = "Choose at least one contact.");
    try {
      const b = await call("POST", "/broadcasts", { name: name.value.trim(), members });
      await refreshGroups();
      location.hash = `#/broadcast/${b.id}`;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      error.textContent = err.message;
    }
  });
  return { el: panel("New broadcast list", "#/broadcasts", h("div", { class: "scroll" }, form)), update: () => picker.update() };
}

export function broadcastView(id) {
  let sent = [];
  const title = h("h2", { class: "conv-name" });
  const sub = h("p", { class: "conv-sub muted-sub" });
  const list = h("ol", { class: "messages", "aria-label": "Sent broadcasts" });
  const scroller = h("div", { class: "scroll messages-scroll" }, list);
  const input = h("textarea", { id: "composer-input", rows: 1, placeholder: "Message to everyone on the list", "aria-label": "Message", maxlength: 60000 });
  const form = h(
    "form",
    { class: "composer" },
    h("div", { class: "composer-row" }, input, h("button", { class: "send", type: "submit", "aria-label": "Send to the list" }, icon("send"))),
  );
  let confirmDelete = false;
  const del = h("button", { type: "button", class: "danger small-button", onclick: () => remove() }, "Delete list");
  const el = h(
    "div",
    { class: "conversation panel broadcast" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/broadcasts", "aria-label": "Back to broadcast lists" }, icon("back")),
      h("div", { class: "conv-title" }, title, sub),
      del,
    ),
    scroller,
    form,
  );

  const list_ = () => store.broadcasts.find((b) => b.id === id) || null;

  async function load() {
    await guarded(async () => {
      sent = await call("GET", `/broadcasts/${id}/messages`);
      render();
    });
  }

  function render() {
    if (!sent.length) return mount(list, h("li", { class: "empty" }, "Nothing sent to this list yet."));
    mount(
      list,
      sent.map((m) => {
        const n = m.sent || 0;
        return h(
          "li",
          { class: "message out", dataset: { id: m.id } },
          h(
            "div",
            { class: "message-body" },
            h(
              "div",
              { class: "bubble out" },
              h("span", { class: "text" }, m.text),
              h(
                "span",
                { class: "meta" },
                h("time", {}, shortTime(m.sent_at_ms)),
                h("span", { class: "broadcast-counts" }, `Delivered ${m.delivered ?? 0}/${n} · Read ${m.read ?? 0}/${n}`),
              ),
            ),
          ),
        );
      }),
    );
    scroller.scrollTop = scroller.scrollHeight;
  }

  function renderHeader() {
    const b = list_();
    title.textContent = b ? b.name : "Broadcast list";
    sub.textContent = b ? `${count(b)}: ${(b.members || []).map((m) => m.name).join(", ")}` : "";
  }

  async function remove() {
    if (!confirmDelete) {
      confirmDelete = true;
      del.textContent = "Delete: sure?";
      toast("The list goes; what it sent stays in each chat");
      setTimeout(() => {
        confirmDelete = false;
        del.textContent = "Delete list";
      }, 4000);
      return;
    }
    await guarded(async () => {
      await call("DELETE", `/broadcasts/${id}`);
      await refreshGroups();
      location.hash = "#/broadcasts";
    });
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await guarded(async () => {
      const res = await call("POST", `/broadcasts/${id}/messages`, { text });
      toast(`Sent to ${res.sent} contact${res.sent === 1 ? "" : "s"}`);
      await load();
      refreshSoon();
    });
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });

  load();
  return {
    el,
    update: renderHeader,
    onMessage: () => load(), // receipts of the 1:1 copies change the counts
  };
}
