// The one action menu of a message, the same in 1:1 and group chats: react,
// reply, edit, delete, copy, forward, favourite, select (then forward, copy or
// favourite several), and in groups pin and mention. What a chat allows (who may
// edit or delete) is decided by the view and passed in; the node checks again.
//
// Forward opens a chat picker (one or several chats) and calls POST /forward;
// favourite calls POST /favourites.

import { ApiError, call } from "./api.js";
import { guarded, h, icon, mount, toast } from "./dom.js";
import { store } from "./store.js";

export const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

/**
 * The toolbar under an open message. `spec`: {react(emoji), reply, edit, remove,
 * confirming (the delete was asked once), deleteLabel, askDelete, copy, forward,
 * favourite, select, pin, pinned, mention}; a missing handler hides its button.
 */
export function messageActions(m, spec) {
  if (m.deleted) return h("div", { class: "actions", role: "toolbar", "aria-label": "Message actions" }, h("span", {}, "Deleted"));
  const mine = (emoji) => ((m.reactions || {})[emoji] || []).includes("me");
  const button = (label, onclick, cls = "") => h("button", { type: "button", class: cls, onclick }, label);
  return h(
    "div",
    { class: "actions", role: "toolbar", "aria-label": "Message actions" },
    spec.react
      ? h(
          "div",
          { class: "action-emoji" },
          REACTIONS.map((emoji) =>
            h(
              "button",
              {
                type: "button",
                class: `emoji ${mine(emoji) ? "mine" : ""}`,
                "aria-label": mine(emoji) ? `Remove ${emoji}` : `React with ${emoji}`,
                onclick: () => spec.react(emoji, mine(emoji)),
              },
              emoji,
            ),
          ),
        )
      : null,
    spec.reply ? button("Reply", spec.reply) : null,
    spec.edit ? button("Edit", spec.edit) : null,
    spec.remove
      ? spec.confirming
        ? button(spec.deleteLabel || "Delete for everyone", spec.remove, "danger")
        : button("Delete", spec.askDelete)
      : null,
    spec.copy ? button("Copy", spec.copy) : null,
    spec.forward ? button("Forward", spec.forward) : null,
    spec.favourite ? button("Favourite", spec.favourite) : null,
    spec.select ? button("Select", spec.select) : null,
    spec.pin ? button(spec.pinned ? "Unpin" : "Pin", spec.pin) : null,
    spec.mention ? button("Mention", spec.mention) : null,
  );
}

/** Reaction chips under a bubble; `who(w)` names a reactor ("me" is you). */
export function reactionChips(m, who, react) {
  const reactions = Object.entries(m.reactions || {}).filter(([, people]) => people.length);
  if (!reactions.length) return null;
  return h(
    "div",
    { class: "reactions" },
    reactions.map(([emoji, people]) =>
      h(
        "button",
        {
          class: `chip ${people.includes("me") ? "mine" : ""}`,
          type: "button",
          "aria-label": `${emoji} from ${people.map((w) => (w === "me" ? "you" : who(w))).join(" and ")}`,
          onclick: () => react(emoji, people.includes("me")),
        },
        `${emoji}${people.length > 1 ? ` ${people.length}` : ""}`,
      ),
    ),
  );
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied");
  } catch (_) {
    toast("Could not copy here: select the text and copy it yourself", "error");
  }
}

/** Save messages ([{chat, id}]) to my favourites. */
export async function favourite(items) {
  let saved = 0;
  await guarded(async () => {
    for (const item of items) {
      await call("POST", "/favourites", { chat: item.chat, id: item.id });
      saved += 1;
    }
  });
  if (saved) toast(saved === 1 ? "Saved to favourites" : `${saved} messages saved to favourites`);
}

/** The chats I can write to, as [{chat, name}], groups after contacts. */
function writableChats() {
  const contacts = store.contacts
    .filter((c) => c.state === "accepted")
    .map((c) => ({ chat: `contact:${c.identity_key}`, name: c.name }));
  const groups = store.groups
    .filter((g) => g.member !== false && !(g.announcements_only && g.my_role !== "admin"))
    .map((g) => ({ chat: `group:${g.id}`, name: g.name, group: true }));
  return [...contacts, ...groups];
}

/** Pick chats and forward `items` ([{chat, id}]) to them. */
export function forwardDialog(items) {
  const chats = writableChats();
  const picked = new Set();
  const send = h("button", { type: "submit", class: "primary", disabled: true }, "Forward");
  const boxes = chats.map((c, i) =>
    h(
      "li",
      {},
      h("input", {
        type: "checkbox",
        id: `fwd-${i}`,
        onchange: (ev) => {
          if (ev.target.checked) picked.add(c.chat);
          else picked.delete(c.chat);
          send.disabled = !picked.size;
          send.textContent = picked.size > 1 ? `Forward to ${picked.size} chats` : "Forward";
        },
      }),
      h("label", { for: `fwd-${i}` }, c.group ? icon("group", 18) : null, c.name),
    ),
  );
  const dialog = h(
    "dialog",
    { class: "forward-dialog", "aria-label": "Forward to" },
    h(
      "form",
      {
        method: "dialog",
        onsubmit: async (ev) => {
          ev.preventDefault();
          if (!picked.size) return;
          send.disabled = true;
          try {
            const res = await call("POST", "/forward", { messages: items, to: [...picked] });
            const n = res && typeof res.sent === "number" ? res.sent : items.length * picked.size;
            toast(`Forwarded ${n} message${n === 1 ? "" : "s"} to ${picked.size} chat${picked.size === 1 ? "" : "s"}`);
            dialog.close();
          } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            toast(err.message, "error");
            send.disabled = false;
          }
        },
      },
      h("h2", {}, items.length > 1 ? `Forward ${items.length} messages to` : "Forward to"),
      chats.length ? h("ul", { class: "forward-chats" }, boxes) : h("p", {}, "You have no chat to forward to yet."),
      h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), send),
    ),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/**
 * Multi-select: `bar` replaces the composer while active. `describe(id)` gives
 * {chat, id, text, sender} of a selected message; `changed()` re-renders the view.
 */
export function selection(describe, changed) {
  const ids = new Set();
  const count = h("span", { class: "selection-count", role: "status" });
  const bar = h("div", { class: "selection-bar", hidden: true });
  const state = {
    ids,
    bar,
    get active() {
      return !bar.hidden;
    },
    start(id) {
      ids.clear();
      if (id) ids.add(id);
      bar.hidden = false;
      renderBar();
      changed();
    },
    toggle(id) {
      if (ids.has(id)) ids.delete(id);
      else ids.add(id);
      renderBar();
      changed();
    },
    stop() {
      ids.clear();
      bar.hidden = true;
      changed();
    },
  };
  const chosen = () => [...ids].map(describe).filter(Boolean);
  function renderBar() {
    count.textContent = `${ids.size} selected`;
    const none = !ids.size;
    mount(
      bar,
      h("button", { type: "button", class: "icon-button", "aria-label": "Cancel selection", onclick: () => state.stop() }, icon("close", 18)),
      count,
      h("button", { type: "button", disabled: none, onclick: () => copyText(chosen().map((m) => `${m.sender}: ${m.text}`).join("\n")).then(() => state.stop()) }, "Copy"),
      h("button", { type: "button", disabled: none, onclick: () => { forwardDialog(chosen().map(({ chat, id }) => ({ chat, id }))); state.stop(); } }, "Forward"),
      h("button", { type: "button", disabled: none, onclick: () => favourite(chosen().map(({ chat, id }) => ({ chat, id }))).then(() => state.stop()) }, "Favourite"),
    );
  }
  return state;
}
