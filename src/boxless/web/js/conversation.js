// One conversation: messages with ticks, reply / edit / delete / reactions,
// typing both ways, read receipts while the page is visible.

import { ApiError, call } from "./api.js";
import { avatar, h, icon, mount, shortTime, toast } from "./dom.js";
import { contact, isTyping, refreshSoon } from "./store.js";

const PAGE = 200;
const REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];
const TICKS = {
  queued: ["·", "Queued"],
  sent: ["✓", "Sent"],
  delivered: ["✓✓", "Delivered"],
  read: ["✓✓", "Read"],
  failed: ["!", "Not sent"],
};

function ticks(m) {
  const [mark, label] = TICKS[m.state] || ["", m.state];
  return h("span", { class: `ticks ${m.state}`, title: label, "aria-label": label, dataset: { state: m.state } }, mark);
}

export function conversationView(key) {
  let messages = [];
  let selected = null; // message id whose actions are open
  let confirmDelete = false;
  let replyTo = null; // message
  let editing = null; // message
  let loading = null;
  let readInFlight = false;
  let typingSentAt = 0;
  let typingTimer = null;

  const title = h("h2", { class: "conv-name" });
  const headAvatar = h("span", { class: "conv-avatar" });
  let headAvatarFor = null; // what headAvatar shows, so a re-render keeps the same img
  const subtitle = h("p", { class: "conv-sub", "aria-live": "polite" });
  const header = h(
    "header",
    { class: "topbar conv-top" },
    h("a", { class: "icon-button back", href: "#/chats", "aria-label": "Back to chats" }, icon("back")),
    headAvatar,
    h("div", { class: "conv-title" }, title, subtitle),
    h("a", { class: "icon-button", href: `#/verify/${key}`, "aria-label": "Safety number and verification" }, icon("shield")),
  );
  const requestBox = h("div", { class: "request-box" });
  const list = h("ol", { class: "messages", "aria-label": "Messages", tabindex: "-1" });
  const scroller = h("div", { class: "scroll messages-scroll" }, list);

  const context = h("div", { class: "composer-context", hidden: true });
  const input = h("textarea", {
    id: "composer-input",
    rows: 1,
    placeholder: "Message",
    "aria-label": "Message",
    maxlength: 60000,
  });
  const sendButton = h("button", { class: "send", type: "submit", "aria-label": "Send" }, icon("send"));
  const form = h("form", { class: "composer" }, context, h("div", { class: "composer-row" }, input, sendButton));
  const el = h("div", { class: "conversation" }, header, requestBox, scroller, form);

  // -- loading and marking read ----------------------------------------------------

  // A load or mark-read asked for while one runs runs again after it: the first
  // may have fetched (or marked) before the message that triggered the second.
  let loadAgain = false;
  let readAgain = false;

  async function load() {
    if (loading) {
      loadAgain = true;
      return loading;
    }
    loading = (async () => {
      try {
        do {
          loadAgain = false;
          try {
            messages = await call("GET", `/contacts/${key}/messages?limit=${PAGE}`);
          } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            toast(err.message, "error");
          }
        } while (loadAgain);
      } finally {
        loading = null;
      }
      renderMessages();
      markRead();
    })();
    return loading;
  }

  async function markRead() {
    const c = contact(key);
    if (!c || c.state !== "accepted" || document.visibilityState !== "visible") return;
    if (readInFlight) {
      readAgain = true;
      return;
    }
    const unread = messages.filter((m) => !m.outgoing && m.state === "received");
    if (!unread.length) return;
    readInFlight = true;
    try {
      await call("POST", `/contacts/${key}/read`);
      for (const m of unread) m.state = "read";
      refreshSoon();
    } catch (err) {
      console.warn("mark read failed", err);
    } finally {
      readInFlight = false;
    }
    if (readAgain) {
      readAgain = false;
      markRead();
    }
  }

  const onVisible = () => markRead();
  document.addEventListener("visibilitychange", onVisible);

  // -- rendering --------------------------------------------------------------------

  function byId(id) {
    return messages.find((m) => m.id === id) || null;
  }

  function bubble(m) {
    const c = contact(key);
    const quoted = m.reply_to ? byId(m.reply_to) : null;
    const isOpen = selected === m.id;
    const body = h(
      "div",
      {
        class: `bubble ${m.outgoing ? "out" : "in"} ${m.deleted ? "deleted" : ""}`,
        tabindex: "0",
        role: "button",
        "aria-expanded": isOpen ? "true" : "false",
        "aria-label": `${m.outgoing ? "You" : c ? c.name : "Them"}: ${m.deleted ? "message deleted" : m.text}. Show actions`,
        onclick: () => toggle(m.id),
        onkeydown: (ev) => {
          if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            toggle(m.id);
          }
        },
      },
      m.reply_to
        ? h(
            "blockquote",
            { class: "quote" },
            quoted ? (quoted.deleted ? "Message deleted" : quoted.text) : "an earlier message",
          )
        : null,
      h("span", { class: "text" }, m.deleted ? "This message was deleted" : m.text),
      h(
        "span",
        { class: "meta" },
        m.edited && !m.deleted ? h("span", { class: "edited" }, "edited") : null,
        h("time", { datetime: new Date(m.sent_at_ms).toISOString() }, shortTime(m.sent_at_ms)),
        m.outgoing ? ticks(m) : null,
      ),
    );
    const reactions = Object.entries(m.reactions || {}).filter(([, who]) => who.length);
    const chips = reactions.length
      ? h(
          "div",
          { class: "reactions" },
          reactions.map(([emoji, who]) =>
            h(
              "button",
              {
                class: `chip ${who.includes("me") ? "mine" : ""}`,
                type: "button",
                "aria-label": `${emoji} from ${who.map((w) => (w === "me" ? "you" : c ? c.name : "them")).join(" and ")}`,
                onclick: () => react(m, emoji),
              },
              `${emoji}${who.length > 1 ? ` ${who.length}` : ""}`,
            ),
          ),
        )
      : null;
    return h(
      "li",
      { class: `message ${m.outgoing ? "out" : "in"}`, id: `m-${m.id}`, dataset: { id: m.id } },
      m.outgoing ? null : avatar(c ? c.name : "?", key, "small", c && c.avatar),
      h("div", { class: "message-body" }, body, chips, isOpen ? actions(m) : null),
    );
  }

  function actions(m) {
    if (m.deleted) return h("div", { class: "actions", role: "toolbar" }, h("span", {}, "Deleted"));
    const mine = (emoji) => ((m.reactions || {})[emoji] || []).includes("me");
    return h(
      "div",
      { class: "actions", role: "toolbar", "aria-label": "Message actions" },
      REACTIONS.map((emoji) =>
        h(
          "button",
          {
            type: "button",
            class: `emoji ${mine(emoji) ? "mine" : ""}`,
            "aria-label": mine(emoji) ? `Remove ${emoji}` : `React with ${emoji}`,
            onclick: () => react(m, emoji),
          },
          emoji,
        ),
      ),
      h("button", { type: "button", onclick: () => startReply(m) }, "Reply"),
      m.outgoing ? h("button", { type: "button", onclick: () => startEdit(m) }, "Edit") : null,
      m.outgoing
        ? confirmDelete
          ? h("button", { type: "button", class: "danger", onclick: () => remove(m) }, "Delete for both")
          : h(
              "button",
              {
                type: "button",
                onclick: () => {
                  confirmDelete = true;
                  renderMessages();
                },
              },
              "Delete",
            )
        : null,
    );
  }

  function renderMessages() {
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    const focused = document.activeElement && list.contains(document.activeElement)
      ? document.activeElement.closest("li")?.dataset.id
      : null;
    if (!messages.length) {
      mount(list, h("li", { class: "empty" }, "No messages yet. Say hello!"));
    } else {
      mount(list, messages.map(bubble));
    }
    if (focused) list.querySelector(`#m-${focused} .bubble`)?.focus({ preventScroll: true });
    if (nearBottom || !scroller.dataset.scrolled) {
      scroller.scrollTop = scroller.scrollHeight;
      scroller.dataset.scrolled = "1";
    }
  }

  function renderHeader() {
    const c = contact(key);
    title.textContent = c ? c.name : "Unknown contact";
    const shown = c ? `${c.name}\n${c.avatar || ""}` : "";
    if (shown !== headAvatarFor) {
      const first = headAvatarFor === null;
      headAvatarFor = shown;
      mount(headAvatar, c ? avatar(c.name, key, "small", c.avatar) : null);
      if (!first) renderMessages(); // their bubbles carry the avatar too
    }
    let sub = "";
    if (c && isTyping(key)) sub = "typing…";
    else if (c && c.verification_broken) sub = "⚠ keys changed: verify again";
    else if (c && c.verified) sub = "verified";
    subtitle.textContent = sub;
    subtitle.className = `conv-sub ${c && c.verification_broken ? "warn" : ""}`;

    const state = c ? c.state : "unknown";
    input.disabled = state !== "accepted";
    sendButton.disabled = state !== "accepted";
    if (state === "request_received") {
      mount(
        requestBox,
        h(
          "div",
          { class: "request" },
          h("p", {}, `${c.name} wants to add you.`),
          c.intro ? h("p", { class: "intro" }, `“${c.intro}”`) : null,
          h("p", { class: "fingerprint" }, `Fingerprint ${c.fingerprint}`),
          h(
            "div",
            { class: "buttons" },
            h("button", { class: "primary", onclick: () => respond("accept") }, "Accept"),
            h("button", { onclick: () => respond("decline") }, "Decline"),
            h("button", { class: "danger", onclick: () => respond("block") }, "Block"),
          ),
        ),
      );
    } else if (state === "request_sent") {
      mount(requestBox, h("p", { class: "request" }, `Waiting for ${c.name} to accept your request.`));
    } else if (state === "declined" || state === "blocked") {
      mount(requestBox, h("p", { class: "request" }, `You ${state} ${c.name}.`));
    } else {
      mount(requestBox);
    }
    input.placeholder = state === "accepted" ? "Message" : "You can write once you are contacts";
  }

  function renderContext() {
    const m = editing || replyTo;
    context.hidden = !m;
    if (!m) return mount(context);
    mount(
      context,
      h("span", { class: "context-label" }, editing ? "Editing" : "Replying to"),
      h("span", { class: "context-text" }, m.text),
      h("button", { type: "button", class: "icon-button", "aria-label": editing ? "Cancel edit" : "Cancel reply", onclick: cancelContext }, icon("close", 18)),
    );
    sendButton.setAttribute("aria-label", editing ? "Save edit" : "Send");
  }

  // -- actions ----------------------------------------------------------------------

  function toggle(id) {
    selected = selected === id ? null : id;
    confirmDelete = false;
    renderMessages();
  }

  function closeActions() {
    selected = null;
    confirmDelete = false;
    renderMessages();
  }

  async function guarded(fn) {
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(err.message, "error");
    }
  }

  function react(m, emoji) {
    const remove = ((m.reactions || {})[emoji] || []).includes("me");
    closeActions();
    return guarded(async () => {
      await call("POST", `/messages/${m.id}/reactions`, { emoji, remove });
      await load();
    });
  }

  function startReply(m) {
    editing = null;
    replyTo = m;
    closeActions();
    renderContext();
    input.focus();
  }

  function startEdit(m) {
    replyTo = null;
    editing = m;
    input.value = m.text;
    closeActions();
    renderContext();
    input.focus();
  }

  function cancelContext() {
    if (editing) input.value = "";
    editing = null;
    replyTo = null;
    renderContext();
    input.focus();
  }

  function remove(m) {
    closeActions();
    return guarded(async () => {
      await call("DELETE", `/messages/${m.id}`);
      await load();
    });
  }

  function respond(action) {
    return guarded(async () => {
      await call("POST", `/contacts/${key}/${action}`);
      refreshSoon();
    });
  }

  async function submit(ev) {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || input.disabled) return;
    const editingNow = editing;
    const reply = replyTo;
    input.value = "";
    editing = null;
    replyTo = null;
    renderContext();
    stopTyping();
    await guarded(async () => {
      if (editingNow) {
        await call("POST", `/messages/${editingNow.id}/edit`, { text });
      } else {
        const sent = await call("POST", `/contacts/${key}/messages`, {
          text,
          reply_to: reply ? reply.id : null,
        });
        if (!messages.some((m) => m.id === sent.id)) messages.push(sent);
        scroller.dataset.scrolled = "";
        renderMessages();
      }
      await load();
      refreshSoon();
    });
  }

  function sendTyping(typing) {
    call("POST", `/contacts/${key}/typing`, { typing }).catch(() => {});
  }

  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingSentAt) sendTyping(false);
    typingSentAt = 0;
  }

  input.addEventListener("input", () => {
    if (input.disabled || editing) return;
    const now = Date.now();
    if (now - typingSentAt > 3000) {
      typingSentAt = now;
      sendTyping(true);
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    } else if (ev.key === "Escape" && (editing || replyTo)) {
      cancelContext();
    }
  });
  list.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && selected) closeActions();
  });
  form.addEventListener("submit", submit);

  load();
  return {
    el,
    update() {
      renderHeader();
      markRead();
    },
    onMessage() {
      load();
    },
    reload() {
      load();
    },
    destroy() {
      stopTyping();
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}
