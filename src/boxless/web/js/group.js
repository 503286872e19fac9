// A group conversation: all its history (older pages as you scroll up, see
// messagelist.js), messages with their senders' names, event rows ("Alice
// added Bob"), @mentions (highlighted; "@" in the composer lists the members),
// the shared action menu (actions.js: react, reply, edit, delete — an admin
// deletes anyone's for everyone — copy, forward, favourite, select, pin,
// mention), pinned messages in a bar at the top, and on my own messages the
// sync state (unconfirmed until other members acknowledge it) and how many
// members have read it. While the page is visible the newest seq is marked read.
// Sends go out one at a time, in the order typed (see conversation.js).
//
// The group's summary (name, members, my role, unread) comes from the store;
// the messages are fetched here and again on each `group_message` event.

import { ApiError, call } from "./api.js";
import { attachInputs, attachTray, batches, chatFiles, uploader } from "./attachments.js";
import { galleryButton } from "./gallery.js";
import { openViewer } from "./viewer.js";
import { voicePlayer, voiceRecorder } from "./voice.js";
import { copyText, favourite, forwardDialog, messageActions, reactionChips, selection } from "./actions.js";
import { avatar, groupAvatar, guarded, h, icon, mount, toast } from "./dom.js";
import { keepDraft } from "./drafts.js";
import { emojiPicker } from "./emoji.js";
import { mentionPicker } from "./mentions.js";
import { PAGE, messageList, timeOfDay } from "./messagelist.js";
import { richText } from "./richtext.js";
import { contact, group, refreshSoon, store } from "./store.js";
import { chatSearchButton } from "./search.js";
import { groupCallBanner, groupCallButtons } from "./call_group.js";
import { payButton, payCard } from "./paycards.js";
import { redCard, redEnvelopeButton } from "./redenvelope.js";

/** The name a group shows for `key`: mine, the member list's, or a short key. */
export function memberName(g, key) {
  if (store.me && key === store.me.identity_key) return store.me.name;
  const m = g && (g.members || []).find((x) => x.identity_key === key);
  return (m && m.name) || `${key.slice(0, 8)}…`;
}

/** A sender's avatar: a contact's picture when we have it, else their initials. */
function senderAvatar(key, name) {
  const c = contact(key);
  if (c && c.avatar) return avatar(name, key, "small", c.avatar);
  return groupAvatar({ id: key, name }, "small");
}

function stateMark(m) {
  if (m.state === "confirmed") {
    return h("span", { class: "ticks confirmed", title: "Confirmed: the group has it", "aria-label": "Confirmed", dataset: { state: m.state } }, "✓✓");
  }
  const label = m.state === "queued" ? "Unconfirmed: waiting to send" : "Unconfirmed: sent, not yet acknowledged";
  return h(
    "span",
    { class: "ticks unconfirmed", title: label, "aria-label": label, dataset: { state: m.state } },
    m.state === "queued" ? "○" : "✓",
    h("span", { class: "unconfirmed-label" }, "unconfirmed"),
  );
}

export function groupView(gid) {
  const chat = `group:${gid}`;
  let pins = [];
  let pinIndex = 0;
  let selected = null;
  let confirmDelete = false;
  let replyTo = null;
  let editing = null;
  let readSent = 0; // newest seq already marked read
  let sending = Promise.resolve(); // the send queue: one POST at a time, in order
  const quotes = new Map(); // quoted messages not in the list: id -> message (null: asked)
  let pendingSeq = 0;

  const title = h("h2", { class: "conv-name" });
  const subtitle = h("p", { class: "conv-sub muted-sub" });
  const header = h(
    "header",
    { class: "topbar conv-top" },
    h("a", { class: "icon-button back", href: "#/chats", "aria-label": "Back to chats" }, icon("back")),
    h("div", { class: "conv-title" }, title, subtitle),
    ...groupCallButtons(`group:${gid}`),
    chatSearchButton(`group:${gid}`),
    galleryButton(`group:${gid}`),
    h("a", { class: "icon-button", href: `#/group-info/${gid}`, "aria-label": "Group info" }, icon("info")),
  );
  const pinBar = h("div", { class: "pin-bar", hidden: true });
  const files = chatFiles(chat, { rerender: () => history.render(), openViewer, voicePlayer });
  const history = messageList({
    fetchPage: async (before) => {
      const url = `/groups/${gid}/messages?limit=${PAGE}${before === null ? "" : `&before=${before}`}`;
      const [page] = await Promise.all([call("GET", url), before === null ? files.load() : null]); // bubbles know their files
      return page;
    },
    olderCursor: (first) => first.seq, // the node pages by (Lamport, id) from that message
    renderItem: (m) => bubble(group(gid), m),
    firstUnread,
    onRendered: () => {
      renderPins(group(gid));
      markRead();
    },
  });
  const { list } = history;

  const input = h("textarea", { id: "composer-input", rows: 1, placeholder: "Message", "aria-label": "Message", maxlength: 60000 });
  const sendButton = h("button", { class: "send", type: "submit", "aria-label": "Send" }, icon("send"));
  const notice = h("p", { class: "composer-notice", hidden: true });
  const context = h("div", { class: "composer-context", hidden: true });
  const picker = mentionPicker(input, () => {
    const g = group(gid);
    const me = store.me ? store.me.identity_key : "";
    return ((g && g.members) || []).filter((m) => m.identity_key !== me).map((m) => ({ key: m.identity_key, name: m.name || memberName(g, m.identity_key) }));
  });
  const emoji = emojiPicker(input);
  const tray = attachTray((picked, opts) => sendAttachments(picked, opts));
  const voice = voiceRecorder({ onSend: (file, meta) => sendAttachments([file], { meta: [meta] }), enabled: () => !input.disabled });
  const attachIn = h("span", { class: "attach-slot" });
  const composerRow = h("div", { class: "composer-row" }, emoji.button, attachIn, payButton(chat), redEnvelopeButton(chat), input, voice.button, sendButton);
  const form = h("form", { class: "composer" }, picker.el, emoji.panel, notice, context, tray.el, voice.bar, composerRow);
  const attach = attachInputs(form, tray, () => !input.disabled);
  attachIn.append(attach.button, attach.camera, attach.picker, attach.shoot);
  const picking = selection(describe, () => {
    form.hidden = picking.active;
    history.render();
  });
  const el = h("div", { class: "conversation group-conversation" }, header, groupCallBanner(`group:${gid}`), pinBar, history.el, picking.bar, form);
  attachInputs(history.el, tray, () => !input.disabled); // drop or paste onto the messages too
  const draft = keepDraft(chat, input);

  // -- loading and marking read ----------------------------------------------------

  /** The first unread message: the group's unread count of the newest incoming texts (undefined: further back). */
  function firstUnread(shown, more) {
    const g = group(gid);
    const n = g ? g.unread || 0 : 0;
    if (!n) return null;
    const incoming = shown.filter((m) => !m.outgoing && m.kind !== "event").sort((a, b) => a.seq - b.seq);
    if (incoming.length < n && more) return undefined;
    const unread = new Set(incoming.slice(-n).map((m) => m.id));
    return (shown.find((m) => unread.has(m.id)) || {}).id || null;
  }

  async function fetchPins() {
    try {
      return await call("GET", `/groups/${gid}/pins`);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return history.messages().filter((m) => m.pinned);
      throw err;
    }
  }

  async function load() {
    await history.refresh();
    await guarded(async () => {
      pins = await fetchPins();
      renderPins(group(gid));
    });
  }

  async function markRead() {
    const g = group(gid);
    if (!g || g.member === false || document.visibilityState !== "visible" || !el.isConnected) return;
    if (!history.ready()) return; // not before the first unread one is found: reading changes it
    // The node's unread count decides (the store re-reads it after each group
    // event), so opening a group with nothing unread publishes no read marker.
    const newest = history.messages().reduce((max, m) => Math.max(max, m.seq), 0); // seq: arrival order
    if (!g.unread || newest <= readSent) return;
    readSent = newest;
    try {
      await call("POST", `/groups/${gid}/read`, { seq: newest });
      refreshSoon();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status !== 404 && err.status !== 405) console.warn("mark read failed", err);
    }
  }

  const onVisible = () => markRead();
  document.addEventListener("visibilitychange", onVisible);

  // -- rendering --------------------------------------------------------------------

  function names(g) {
    return ((g && g.members) || []).map((m) => m.name).filter(Boolean);
  }

  /** Who `m` mentions by identity key, with their names today ([{name, me}]). */
  function mentioned(g, m) {
    const mine = store.me ? store.me.identity_key : "";
    if (!Array.isArray(m.mentions)) return m.mentions_me ? true : null;
    const who = m.mentions.map((k) => ({ name: memberName(g, k), me: k === mine }));
    if (m.mentions_me && !who.some((w) => w.me) && !m.mention_all) who.push({ name: store.me ? store.me.name : "", me: true });
    return who;
  }

  function senderName(g, m) {
    return m.outgoing ? "You" : m.sender_name || memberName(g, m.sender);
  }

  function describe(id) {
    const m = history.byId(id);
    if (!m || m.deleted || m.kind === "event") return null;
    return { chat, id, text: m.text, sender: senderName(group(gid), m) };
  }

  /** A quoted message older than the pages shown: fetched once, then shown. */
  function quote(id) {
    if (quotes.has(id)) return quotes.get(id);
    quotes.set(id, null);
    call("GET", `/groups/${gid}/messages/${encodeURIComponent(id)}`)
      .then((q) => {
        quotes.set(id, q);
        history.render();
      })
      .catch((err) => {
        if (!(err instanceof ApiError)) throw err;
      });
    return null;
  }

  function isAdmin(g) {
    return Boolean(g && g.my_role === "admin" && g.member !== false);
  }

  function bubble(g, m) {
    if (m.kind === "event") {
      return h("li", { class: "event", id: `m-${m.id}`, dataset: { id: m.id, seq: m.seq } }, h("span", {}, m.text));
    }
    const sender = senderName(g, m);
    const isOpen = selected === m.id && !picking.active;
    const picked = picking.active && picking.ids.has(m.id);
    const me = store.me ? store.me.name : "";
    const quoted = m.reply_to ? history.byId(m.reply_to) || quote(m.reply_to) : null;
    const att = m.upload ? { el: m.upload.el, filesOnly: true } : files.block(m);
    const body = h(
      "div",
      {
        class: `bubble ${m.outgoing ? "out" : "in"} ${m.mentions_me ? "mentions-me" : ""} ${m.pinned ? "pinned" : ""} ${m.deleted ? "deleted" : ""} ${att.el ? "has-files" : ""}`,
        tabindex: "0",
        role: "button",
        "aria-expanded": isOpen ? "true" : "false",
        "aria-pressed": picking.active ? (picked ? "true" : "false") : null,
        "aria-label": `${sender}: ${m.deleted ? "message deleted" : m.text}. ${picking.active ? "Select" : "Show actions"}`,
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
      m.outgoing ? null : h("span", { class: "sender", style: `--hue:${parseInt(m.sender.slice(0, 4), 16) % 360}` }, sender),
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
            quoted ? (quoted.deleted ? "Message deleted" : `${senderName(g, quoted)}: ${quoted.text}`) : "an earlier message",
          )
        : null,
      att.el,
      att.filesOnly && !m.deleted ? null : h("span", { class: "text" }, m.deleted ? "This message was deleted" : richText(m.text, names(g), me, mentioned(g, m))),
      payCard(chat, m),
      redCard(chat, m),
      h(
        "span",
        { class: "meta" },
        m.pinned ? h("span", { class: "pinned-mark", title: "Pinned" }, icon("pin", 12)) : null,
        m.edited && !m.deleted ? h("span", { class: "edited" }, "edited") : null,
        h("time", { datetime: new Date(m.sent_at_ms).toISOString(), title: new Date(m.sent_at_ms).toLocaleString() }, timeOfDay(m.sent_at_ms)),
        m.outgoing && m.read_count ? h("span", { class: "read-count" }, `Read by ${m.read_count}`) : null,
        m.outgoing ? stateMark(m) : null,
      ),
    );
    return h(
      "li",
      { class: `message ${m.outgoing ? "out" : "in"} ${picked ? "picked" : ""}`, id: `m-${m.id}`, dataset: { id: m.id, seq: m.seq } },
      picking.active ? h("span", { class: `pick-mark ${picked ? "on" : ""}`, "aria-hidden": "true" }, picked ? "✓" : "") : null,
      m.outgoing ? null : senderAvatar(m.sender, sender),
      h(
        "div",
        { class: "message-body" },
        body,
        reactionChips(m, (w) => memberName(g, w), (e, remove) => react(m, e, remove)),
        isOpen ? actions(g, m) : null,
      ),
    );
  }

  function actions(g, m) {
    const member = g && g.member !== false;
    const canWrite = member && !(g.announcements_only && g.my_role !== "admin");
    const mayDelete = member && (m.outgoing || isAdmin(g));
    return messageActions(m, {
      react: member ? (e, remove) => react(m, e, remove) : null,
      reply: canWrite ? () => startReply(m) : null,
      edit: member && m.outgoing ? () => startEdit(m) : null,
      remove: mayDelete ? () => remove(m) : null,
      confirming: confirmDelete,
      deleteLabel: "Delete for everyone",
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
      pin: member ? () => pin(m, !m.pinned) : null,
      pinned: m.pinned,
      mention: !m.outgoing && canWrite ? () => mentionSender(g, m) : null,
    });
  }

  function renderPins(g) {
    const shown = pins.filter((p) => p.pinned !== false);
    pinBar.hidden = !shown.length;
    if (!shown.length) return mount(pinBar);
    pinIndex = Math.min(pinIndex, shown.length - 1);
    const p = shown[shown.length - 1 - pinIndex];
    const who = p.outgoing ? "You" : p.sender_name || memberName(g, p.sender);
    mount(
      pinBar,
      h(
        "button",
        {
          type: "button",
          class: "pin-main",
          "aria-label": `Pinned message from ${who}: ${p.text}. Show it`,
          onclick: () => {
            history.show(p.id);
            pinIndex = (pinIndex + 1) % shown.length;
            renderPins(g);
          },
        },
        icon("pin", 16),
        h("span", { class: "pin-text" }, h("strong", {}, `${who}: `), p.text),
        shown.length > 1 ? h("span", { class: "pin-count" }, `${shown.length - pinIndex}/${shown.length}`) : null,
      ),
      g && g.member !== false
        ? h("button", { type: "button", class: "icon-button", "aria-label": "Unpin", onclick: () => pin(p, false) }, icon("close", 16))
        : null,
    );
  }

  function renderHeader() {
    const g = group(gid);
    title.textContent = g ? g.name : "Group";
    const n = g && g.members ? g.members.length : 0;
    subtitle.textContent = !g ? "" : g.member === false ? "not a member" : `${n} member${n === 1 ? "" : "s"}${g.muted ? " · muted" : ""}`;
    let why = "";
    if (!g) why = "This group is not on this device.";
    else if (g.member === false) why = "You are no longer a member of this group: you can read what was said before, but not write.";
    else if (g.announcements_only && g.my_role && g.my_role !== "admin") why = "Only admins can send messages in this group.";
    notice.hidden = !why;
    notice.textContent = why;
    composerRow.hidden = Boolean(why);
    input.disabled = Boolean(why);
    sendButton.disabled = Boolean(why);
    input.placeholder = why ? "" : "Message (@ to mention)";
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

  function react(m, emojiChar, remove) {
    closeActions();
    return guarded(async () => {
      await call("POST", `/groups/${gid}/messages/${m.id}/reactions`, { emoji: emojiChar, remove });
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
      await call("DELETE", `/groups/${gid}/messages/${m.id}`);
      await load();
    });
  }

  function pin(m, pinned) {
    selected = null;
    return guarded(async () => {
      await call("PUT", `/groups/${gid}/pins/${m.id}`, { pinned });
      await load();
    });
  }

  function mentionSender(g, m) {
    closeActions();
    const name = m.sender_name || memberName(g, m.sender);
    const sep = input.value && !input.value.endsWith(" ") ? " " : "";
    input.value = `${input.value}${sep}@${name} `;
    input.focus();
  }

  /** Send picked, pasted, dropped or recorded files: one pending bubble per message, with progress. */
  function sendAttachments(picked, { original = false, meta = [] } = {}) {
    const me = store.me || {};
    for (const batch of batches(picked)) {
      const temp = { id: `pending-${++pendingSeq}`, seq: 0, kind: "text", outgoing: true, sender: me.identity_key || "", sender_name: me.name || "", text: "", state: "queued", sent_at_ms: Date.now(), reactions: {} };
      const metas = batch.map((f) => meta[picked.indexOf(f)] || {});
      temp.upload = uploader(chat, batch, { original, meta: metas }, () => {
        history.settlePending(temp.id, null);
        load();
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
    const extra = picker.picked(text);
    const editingNow = editing;
    const reply = replyTo;
    input.value = "";
    input.style.height = "auto";
    editing = null;
    replyTo = null;
    renderContext();
    picker.reset();
    draft.sent();
    // Shown at once; sent one at a time, in the order typed (see the top of
    // conversation.js): a group POST returns once the network took the message.
    const me = store.me || {};
    const temp = editingNow
      ? null
      : {
          id: `pending-${++pendingSeq}`,
          seq: 0,
          kind: "text",
          outgoing: true,
          sender: me.identity_key || "",
          sender_name: me.name || "",
          text,
          reply_to: reply ? reply.id : null,
          state: "queued",
          sent_at_ms: Date.now(),
          reactions: {},
        };
    if (temp) history.addPending(temp);
    sending = sending.then(() =>
      guarded(async () => {
        if (editingNow) {
          await call("POST", `/groups/${gid}/messages/${editingNow.id}/edit`, { text });
        } else {
          let sent = null;
          try {
            sent = await call("POST", `/groups/${gid}/messages`, { text, ...(reply ? { reply_to: reply.id } : {}), ...extra });
          } finally {
            history.settlePending(temp.id, sent);
            if (!sent && !input.value) input.value = text; // not sent: nothing typed is lost
          }
        }
        load();
        refreshSoon();
      }),
    );
  }

  input.addEventListener("input", () => {
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
    if (ev.key === "Escape" && picking.active) picking.stop();
    else if (ev.key === "Escape" && selected) closeActions();
  });
  form.addEventListener("submit", submit);

  load();
  return {
    el,
    update() {
      renderHeader();
      renderPins(group(gid));
      markRead();
    },
    onGroupMessage(ev) {
      if (ev.group === gid) load();
    },
    onGroup(ev) {
      if (ev.group === gid) load();
    },
    reload() {
      load();
    },
    onAttachment(ev) {
      files.onEvent(ev);
    },
    show(id) {
      return history.show(id);
    },
    destroy() {
      voice.cancel();
      draft.flush();
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}
