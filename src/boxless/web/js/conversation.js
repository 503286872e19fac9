// One conversation: all its history (older pages load as you scroll up, see
// messagelist.js), ticks, the shared action menu (actions.js: react, reply,
// edit, delete, copy, forward, favourite, select), typing both ways, read
// receipts while the page is visible, an emoji picker and a draft kept per chat.
//
// Sends go out one at a time, in the order typed: the node stamps each message
// with the next Lamport tick when its POST is handled, and concurrent POSTs (the
// browser spreads them over several connections) could be handled out of order.

import { ApiError, call } from "./api.js";
import { attachInputs, attachTray, batches, chatFiles, uploader } from "./attachments.js";
import { galleryButton } from "./gallery.js";
import { openViewer } from "./viewer.js";
import { voicePlayer, voiceRecorder } from "./voice.js";
import { callButtons, callLog } from "./call.js";
import { payButton, payCard } from "./paycards.js";
import { redCard, redEnvelopeButton } from "./redenvelope.js";
import { chatSearchButton } from "./search.js";
import { copyText, favourite, forwardDialog, messageActions, reactionChips, selection } from "./actions.js";
import { avatar, h, icon, mount, toast } from "./dom.js";
import { keepDraft } from "./drafts.js";
import { emojiPicker } from "./emoji.js";
import { PAGE, messageList, timeOfDay } from "./messagelist.js";
import { linkify } from "./richtext.js";
import { contact, isTyping, refreshSoon } from "./store.js";

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
  const chat = `contact:${key}`;
  let selected = null; // message id whose actions are open
  let confirmDelete = false;
  let replyTo = null; // message
  let editing = null; // message
  let readInFlight = false;
  let readAgain = false;
  let typingSentAt = 0;
  let typingTimer = null;
  let sending = Promise.resolve(); // the send queue: one POST at a time, in order
  let pendingSeq = 0;

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
    ...callButtons(chat),
    chatSearchButton(chat),
    galleryButton(chat),
    h("a", { class: "icon-button", href: `#/verify/${key}`, "aria-label": "Safety number and verification" }, icon("shield")),
  );
  const requestBox = h("div", { class: "request-box" });

  const files = chatFiles(chat, { rerender: () => history.render(), openViewer, voicePlayer });
  const history = messageList({
    fetchPage: async (before) => {
      const url = `/contacts/${key}/messages?limit=${PAGE}${before === null ? "" : `&before=${before}`}`;
      const [page] = await Promise.all([call("GET", url), before === null ? files.load() : null]); // bubbles know their files
      return page;
    },
    // `before` is exclusive and a Lamport time may be shared by one message each
    // way: ask from the first one's time inclusive; the list drops what it has.
    olderCursor: (first) => first.lamport + 1,
    renderItem: (m) => bubble(m),
    firstUnread: (shown, more) => {
      const at = shown.findIndex((m) => !m.outgoing && m.state === "received");
      return at < 0 ? null : at === 0 && more ? undefined : shown[at].id;
    },
    onRendered: () => markRead(),
  });
  const { list } = history;

  const context = h("div", { class: "composer-context", hidden: true });
  const input = h("textarea", {
    id: "composer-input",
    rows: 1,
    placeholder: "Message",
    "aria-label": "Message",
    maxlength: 60000,
  });
  const emoji = emojiPicker(input);
  const sendButton = h("button", { class: "send", type: "submit", "aria-label": "Send" }, icon("send"));
  const tray = attachTray((picked, opts) => sendAttachments(picked, opts));
  const voice = voiceRecorder({ onSend: (file, meta) => sendAttachments([file], { meta: [meta] }), enabled: () => !input.disabled });
  const form = h("form", { class: "composer" }, emoji.panel, context, tray.el, voice.bar);
  const attach = attachInputs(form, tray, () => !input.disabled);
  form.append(attach.picker, attach.shoot, h("div", { class: "composer-row" }, emoji.button, attach.button, attach.camera, payButton(chat), redEnvelopeButton(chat), input, voice.button, sendButton));
  const picking = selection(describe, () => {
    form.hidden = picking.active;
    history.render();
  });
  const el = h("div", { class: "conversation" }, header, callLog(chat), requestBox, history.el, picking.bar, form);
  attachInputs(history.el, tray, () => !input.disabled); // drop or paste onto the messages too
  const draft = keepDraft(chat, input);

  // -- marking read -----------------------------------------------------------------

  async function markRead() {
    const c = contact(key);
    if (!c || c.state !== "accepted" || document.visibilityState !== "visible" || !el.isConnected) return;
    if (!history.ready()) return; // not before the first unread one is found: reading changes it
    if (readInFlight) {
      readAgain = true;
      return;
    }
    const unread = history.messages().filter((m) => !m.outgoing && m.state === "received");
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

  function theirName() {
    const c = contact(key);
    return c ? c.name : "Them";
  }

  function describe(id) {
    const m = history.byId(id);
    return m && !m.deleted ? { chat, id, text: m.text, sender: m.outgoing ? "You" : theirName() } : null;
  }

  function bubble(m) {
    const c = contact(key);
    const quoted = m.reply_to ? history.byId(m.reply_to) : null;
    const isOpen = selected === m.id && !picking.active;
    const picked = picking.active && picking.ids.has(m.id);
    const att = m.upload ? { el: m.upload.el, filesOnly: true } : files.block(m);
    const body = h(
      "div",
      {
        class: `bubble ${m.outgoing ? "out" : "in"} ${m.deleted ? "deleted" : ""} ${att.el ? "has-files" : ""}`,
        tabindex: "0",
        role: "button",
        "aria-expanded": isOpen ? "true" : "false",
        "aria-pressed": picking.active ? (picked ? "true" : "false") : null,
        "aria-label": `${m.outgoing ? "You" : theirName()}: ${m.deleted ? "message deleted" : m.text}. ${picking.active ? "Select" : "Show actions"}`,
        onclick: (ev) => {
          if (ev.target.closest("a")) return;
          toggle(m.id);
        },
        onkeydown: (ev) => {
          if (ev.target === ev.currentTarget && (ev.key === "Enter" || ev.key === " ")) {
            ev.preventDefault();
            toggle(m.id);
          }
        },
      },
      m.reply_to && !m.deleted
        ? h(
            "blockquote",
            {
              class: "quote",
              onclick: (ev) => {
                ev.stopPropagation(); // show the quoted message (older pages load until it is there)
                history.show(m.reply_to);
              },
            },
            quoted ? (quoted.deleted ? "Message deleted" : quoted.text) : "an earlier message",
          )
        : null,
      att.el,
      att.filesOnly && !m.deleted ? null : h("span", { class: "text" }, m.deleted ? "This message was deleted" : linkify(m.text)),
      payCard(chat, m),
      redCard(chat, m),
      h(
        "span",
        { class: "meta" },
        m.edited && !m.deleted ? h("span", { class: "edited" }, "edited") : null,
        h("time", { datetime: new Date(m.sent_at_ms).toISOString(), title: new Date(m.sent_at_ms).toLocaleString() }, timeOfDay(m.sent_at_ms)),
        m.outgoing ? ticks(m) : null,
      ),
    );
    return h(
      "li",
      { class: `message ${m.outgoing ? "out" : "in"} ${picked ? "picked" : ""}`, id: `m-${m.id}`, dataset: { id: m.id } },
      picking.active ? h("span", { class: `pick-mark ${picked ? "on" : ""}`, "aria-hidden": "true" }, picked ? "✓" : "") : null,
      m.outgoing ? null : avatar(c ? c.name : "?", key, "small", c && c.avatar),
      h(
        "div",
        { class: "message-body" },
        body,
        reactionChips(m, () => theirName(), (e, remove) => react(m, e, remove)),
        isOpen ? actions(m) : null,
      ),
    );
  }

  function actions(m) {
    return messageActions(m, {
      react: (e, remove) => react(m, e, remove),
      reply: () => startReply(m),
      edit: m.outgoing ? () => startEdit(m) : null,
      remove: m.outgoing ? () => remove(m) : null,
      confirming: confirmDelete,
      deleteLabel: "Delete for both",
      askDelete: () => {
        confirmDelete = true;
        history.render();
      },
      copy: () => {
        closeActions();
        copyText(m.text);
      },
      forward: () => {
        closeActions();
        forwardDialog([{ chat, id: m.id }]);
      },
      favourite: () => {
        closeActions();
        favourite([{ chat, id: m.id }]);
      },
      select: () => {
        selected = null;
        picking.start(m.id);
      },
    });
  }

  function renderHeader() {
    const c = contact(key);
    title.textContent = c ? c.name : "Unknown contact";
    const shown = c ? `${c.name}\n${c.avatar || ""}` : "";
    if (shown !== headAvatarFor) {
      const first = headAvatarFor === null;
      headAvatarFor = shown;
      mount(headAvatar, c ? avatar(c.name, key, "small", c.avatar) : null);
      if (!first) history.render(); // their bubbles carry the avatar too
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
    sendButton.setAttribute("aria-label", editing ? "Save edit" : "Send");
    if (!m) return mount(context);
    mount(
      context,
      h("span", { class: "context-label" }, editing ? "Editing" : "Replying to"),
      h("span", { class: "context-text" }, m.text),
      h("button", { type: "button", class: "icon-button", "aria-label": editing ? "Cancel edit" : "Cancel reply", onclick: cancelContext }, icon("close", 18)),
    );
  }

  // -- actions ----------------------------------------------------------------------

  function toggle(id) {
    if ((history.byId(id) || {}).pending) return; // not on the node yet: nothing to act on
    if (picking.active) return picking.toggle(id);
    selected = selected === id ? null : id;
    confirmDelete = false;
    history.render();
  }

  function closeActions() {
    selected = null;
    confirmDelete = false;
    history.render();
  }

  async function guarded(fn) {
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(err.message, "error");
    }
  }

  function react(m, emojiChar, remove) {
    closeActions();
    return guarded(async () => {
      await call("POST", `/messages/${m.id}/reactions`, { emoji: emojiChar, remove });
      await history.refresh();
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
      await history.refresh();
    });
  }

  function respond(action) {
    return guarded(async () => {
      await call("POST", `/contacts/${key}/${action}`);
      refreshSoon();
    });
  }

  /** Queue one send after those before it (Enter pressed fast keeps its order). */
  function enqueue(fn) {
    const next = sending.then(() => guarded(fn));
    sending = next;
    return next;
  }

  /** Send picked, pasted, dropped or recorded files: one pending bubble per message, with progress. */
  function sendAttachments(picked, { original = false, meta = [] } = {}) {
    for (const batch of batches(picked)) {
      const temp = { id: `pending-${++pendingSeq}`, outgoing: true, text: "", state: "queued", sent_at_ms: Date.now(), reactions: {} };
      const metas = batch.map((f) => meta[picked.indexOf(f)] || {});
      temp.upload = uploader(chat, batch, { original, meta: metas }, () => {
        history.settlePending(temp.id, null);
        history.refresh();
        refreshSoon();
      });
      history.addPending(temp);
    }
  }

  function submit(ev) {
    ev.preventDefault();
    if (tray.files.length && !input.disabled) tray.send();
    const text = input.value.trim();
    if (!text || input.disabled) return;
    const editingNow = editing;
    const reply = replyTo;
    input.value = "";
    input.style.height = "auto";
    editing = null;
    replyTo = null;
    renderContext();
    stopTyping();
    draft.sent();
    const temp = editingNow
      ? null
      : { id: `pending-${++pendingSeq}`, outgoing: true, text, reply_to: reply ? reply.id : null, state: "queued", sent_at_ms: Date.now(), reactions: {} };
    if (temp) history.addPending(temp);
    enqueue(async () => {
      if (editingNow) {
        await call("POST", `/messages/${editingNow.id}/edit`, { text });
      } else {
        let sent = null;
        try {
          sent = await call("POST", `/contacts/${key}/messages`, { text, reply_to: temp.reply_to });
        } finally {
          history.settlePending(temp.id, sent);
          if (!sent && !input.value) input.value = text; // not sent: nothing typed is lost
        }
      }
      history.refresh();
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
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
    if (input.disabled || editing) return;
    const now = Date.now();
    if (now - typingSentAt > 3000) {
      typingSentAt = now;
      sendTyping(true);
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 3000);
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
    if (ev.key === "Escape" && picking.active) picking.stop();
    else if (ev.key === "Escape" && selected) closeActions();
  });
  form.addEventListener("submit", submit);

  history.refresh();
  return {
    el,
    update() {
      renderHeader();
      markRead();
    },
    onMessage(ev) {
      if (!ev || !ev.contact || ev.contact === key) history.refresh();
    },
    reload() {
      history.refresh();
    },
    onAttachment(ev) {
      files.onEvent(ev);
    },
    show(id) {
      return history.show(id);
    },
    destroy() {
      voice.cancel();
      stopTyping();
      draft.flush();
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}
