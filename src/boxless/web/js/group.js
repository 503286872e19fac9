// A group conversation: messages with their senders' names, event rows
// ("Alice added Bob"), @mentions (highlighted; "@" in the composer lists the
// members), pinned messages in a bar at the top, and on my own messages the
// sync state (unconfirmed until other members acknowledge it) and how many
// members have read it. While the page is visible the newest seq is marked read.
//
// The group's summary (name, members, my role, unread) comes from the store;
// the messages are fetched here and again on each `group_message` event.

import { ApiError, call } from "./api.js";
import { avatar, groupAvatar, guarded, h, icon, mount, shortTime, toast } from "./dom.js";
import { highlight, mentionPicker } from "./mentions.js";
import { contact, group, refreshSoon, store } from "./store.js";

const PAGE = 200;

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
  let messages = [];
  let pins = [];
  let pinIndex = 0;
  let selected = null;
  let loading = null;
  let again = false;
  let readSent = 0; // newest seq already marked read
  let hasMore = false;

  const title = h("h2", { class: "conv-name" });
  const subtitle = h("p", { class: "conv-sub muted-sub" });
  const header = h(
    "header",
    { class: "topbar conv-top" },
    h("a", { class: "icon-button back", href: "#/chats", "aria-label": "Back to chats" }, icon("back")),
    h("div", { class: "conv-title" }, title, subtitle),
    h("a", { class: "icon-button", href: `#/group-info/${gid}`, "aria-label": "Group info" }, icon("info")),
  );
  const pinBar = h("div", { class: "pin-bar", hidden: true });
  const list = h("ol", { class: "messages", "aria-label": "Messages", tabindex: "-1" });
  const earlier = h("button", { type: "button", class: "earlier", hidden: true, onclick: () => loadEarlier() }, "Earlier messages");
  const scroller = h("div", { class: "scroll messages-scroll" }, earlier, list);

  const input = h("textarea", { id: "composer-input", rows: 1, placeholder: "Message", "aria-label": "Message", maxlength: 60000 });
  const sendButton = h("button", { class: "send", type: "submit", "aria-label": "Send" }, icon("send"));
  const notice = h("p", { class: "composer-notice", hidden: true });
  const picker = mentionPicker(input, () => {
    const g = group(gid);
    const me = store.me ? store.me.identity_key : "";
    return ((g && g.members) || []).filter((m) => m.identity_key !== me).map((m) => ({ key: m.identity_key, name: m.name || memberName(g, m.identity_key) }));
  });
  const composerRow = h("div", { class: "composer-row" }, input, sendButton);
  const form = h("form", { class: "composer" }, picker.el, notice, composerRow);
  const el = h("div", { class: "conversation group-conversation" }, header, pinBar, scroller, form);

  // -- loading and marking read ----------------------------------------------------

  async function fetchPins() {
    try {
      return await call("GET", `/groups/${gid}/pins`);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return messages.filter((m) => m.pinned);
      throw err;
    }
  }

  /** Re-read the newest page (a call during a load runs once more after it). */
  async function load() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      try {
        const page = await call("GET", `/groups/${gid}/messages?limit=${PAGE}`);
        // History is in (Lamport, id) order, not by seq (a repaired message lands in
        // place): keep what we showed before the page's first message.
        const inPage = new Set(page.map((m) => m.id));
        const at = page.length ? messages.findIndex((m) => m.id === page[0].id) : -1;
        const older = at > 0 ? messages.slice(0, at).filter((m) => !inPage.has(m.id)) : [];
        if (!messages.length) hasMore = page.length === PAGE;
        messages = [...older, ...page];
        pins = await fetchPins();
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        toast(err.message, "error");
      } finally {
        loading = null;
      }
      render();
      markRead();
      if (again) {
        again = false;
        load();
      }
    })();
    return loading;
  }

  async function loadEarlier() {
    if (!messages.length) return;
    await guarded(async () => {
      const page = await call("GET", `/groups/${gid}/messages?limit=${PAGE}&before=${messages[0].seq}`);
      hasMore = page.length === PAGE;
      const top = scroller.scrollHeight - scroller.scrollTop;
      messages = [...page, ...messages];
      render();
      scroller.scrollTop = scroller.scrollHeight - top;
    });
  }

  async function markRead() {
    const g = group(gid);
    if (!g || g.member === false || document.visibilityState !== "visible" || !el.isConnected) return;
    // The node's unread count decides (the store re-reads it after each group
    // event), so opening a group with nothing unread publishes no read marker.
    const newest = messages.reduce((max, m) => Math.max(max, m.seq), 0); // seq: arrival order
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

  function bubble(g, m) {
    if (m.kind === "event") {
      return h("li", { class: "event", id: `m-${m.id}`, dataset: { id: m.id, seq: m.seq } }, h("span", {}, m.text));
    }
    const sender = m.outgoing ? "You" : m.sender_name || memberName(g, m.sender);
    const isOpen = selected === m.id;
    const me = store.me ? store.me.name : "";
    const body = h(
      "div",
      {
        class: `bubble ${m.outgoing ? "out" : "in"} ${m.mentions_me ? "mentions-me" : ""} ${m.pinned ? "pinned" : ""}`,
        tabindex: "0",
        role: "button",
        "aria-expanded": isOpen ? "true" : "false",
        "aria-label": `${sender}: ${m.text}. Show actions`,
        onclick: () => toggle(m.id),
        onkeydown: (ev) => {
          if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            toggle(m.id);
          }
        },
      },
      m.outgoing ? null : h("span", { class: "sender", style: `--hue:${parseInt(m.sender.slice(0, 4), 16) % 360}` }, sender),
      h("span", { class: "text" }, highlight(m.text, names(g), me)),
      h(
        "span",
        { class: "meta" },
        m.pinned ? h("span", { class: "pinned-mark", title: "Pinned" }, icon("pin", 12)) : null,
        h("time", { datetime: new Date(m.sent_at_ms).toISOString() }, shortTime(m.sent_at_ms)),
        m.outgoing && m.read_count ? h("span", { class: "read-count" }, `Read by ${m.read_count}`) : null,
        m.outgoing ? stateMark(m) : null,
      ),
    );
    return h(
      "li",
      { class: `message ${m.outgoing ? "out" : "in"}`, id: `m-${m.id}`, dataset: { id: m.id, seq: m.seq } },
      m.outgoing ? null : senderAvatar(m.sender, sender),
      h("div", { class: "message-body" }, body, isOpen ? actions(g, m) : null),
    );
  }

  function actions(g, m) {
    const member = g && g.member !== false;
    return h(
      "div",
      { class: "actions", role: "toolbar", "aria-label": "Message actions" },
      member ? h("button", { type: "button", onclick: () => pin(m, !m.pinned) }, m.pinned ? "Unpin" : "Pin") : null,
      !m.outgoing && member
        ? h("button", { type: "button", onclick: () => mentionSender(g, m) }, "Mention")
        : null,
      h("button", { type: "button", onclick: () => copy(m.text) }, "Copy"),
    );
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
            reveal(p.id);
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

  function render() {
    const g = group(gid);
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.id : null;
    earlier.hidden = !hasMore;
    if (!messages.length) mount(list, h("li", { class: "empty" }, "No messages yet. Say hello!"));
    else mount(list, messages.map((m) => bubble(g, m)));
    renderPins(g);
    if (focused) list.querySelector(`#m-${focused} .bubble`)?.focus({ preventScroll: true });
    if (nearBottom || !scroller.dataset.scrolled) {
      scroller.scrollTop = scroller.scrollHeight;
      scroller.dataset.scrolled = "1";
    }
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

  // -- actions ----------------------------------------------------------------------

  function toggle(id) {
    selected = selected === id ? null : id;
    render();
  }

  function reveal(id) {
    const li = list.querySelector(`#m-${CSS.escape(id)}`);
    if (!li) return toast("That message is further back: load earlier messages");
    li.scrollIntoView({ block: "center" });
    li.classList.add("flash");
    setTimeout(() => li.classList.remove("flash"), 1500);
  }

  function pin(m, pinned) {
    selected = null;
    return guarded(async () => {
      await call("PUT", `/groups/${gid}/pins/${m.id}`, { pinned });
      await load();
    });
  }

  function mentionSender(g, m) {
    selected = null;
    render();
    const name = m.sender_name || memberName(g, m.sender);
    const sep = input.value && !input.value.endsWith(" ") ? " " : "";
    input.value = `${input.value}${sep}@${name} `;
    input.focus();
  }

  async function copy(text) {
    selected = null;
    render();
    try {
      await navigator.clipboard.writeText(text);
      toast("Copied");
    } catch (_) {
      toast("Could not copy here", "error");
    }
  }

  async function submit(ev) {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || input.disabled) return;
    const extra = picker.picked(text);
    input.value = "";
    input.style.height = "auto";
    picker.reset();
    await guarded(async () => {
      const sent = await call("POST", `/groups/${gid}/messages`, { text, ...extra });
      if (!messages.some((m) => m.id === sent.id)) messages.push(sent);
      scroller.dataset.scrolled = "";
      render();
      await load();
      refreshSoon();
    });
  }

  input.addEventListener("input", () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  list.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && selected) toggle(selected);
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
    destroy() {
      document.removeEventListener("visibilitychange", onVisible);
    },
  };
}
