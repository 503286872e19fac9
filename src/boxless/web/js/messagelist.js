// The scrolling message list of a chat, shared by 1:1 and group conversations.
//
// Theory of operation. `messages` is a contiguous run of the chat's history,
// oldest first: the newest page is read on open and re-read on each event
// (`refresh`, merged so older pages already shown stay), and an older page is
// prepended when the reader scrolls near the top (`loadOlder`), the scroll
// position kept so what is on screen does not move. History order is the
// node's (its Lamport order); the list never re-sorts. Date separators go
// between days, a "New messages" line above the first message that was unread
// when the chat opened, and a button jumps back to that line. `show(id)` loads
// older pages until the message is there (bounded), scrolls to it and
// highlights it: search results and favourites open chats that way.

import { ApiError } from "./api.js";
import { h, mount, toast } from "./dom.js";

export const PAGE = 100;
const MAX_SHOW_PAGES = 200; // show(id) looks at most this many pages back (20,000 messages)
const MAX_UNREAD_PAGES = 50; // the first unread message is looked for this far back (5,000)
const NEAR_TOP_PX = 300;
const NEAR_BOTTOM_PX = 80;

function dayLabel(ms) {
  const d = new Date(ms);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  const opts = { weekday: "short", day: "numeric", month: "short" };
  if (d.getFullYear() !== today.getFullYear()) opts.year = "numeric";
  return d.toLocaleDateString([], opts);
}

/** "14:05": a bubble's time (the date separators above it carry the day). */
export function timeOfDay(ms) {
  return ms ? new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

/**
 * A message list. Options:
 *  - fetchPage(cursor): the page before `cursor` (null: the newest), oldest first;
 *  - olderCursor(first): the cursor for the page before message `first`;
 *  - renderItem(m): the <li> of one message;
 *  - firstUnread(messages, hasMore): the id of the first unread message on
 *    open, null if none, undefined if it is older than `messages` (pages load
 *    until it is there, at most MAX_UNREAD_PAGES);
 *  - onRendered(): after each render (e.g. to mark read).
 * Returns {el, scroller, list, messages(), byId, refresh, render, show, loadOlder}.
 */
export function messageList({ fetchPage, olderCursor, renderItem, firstUnread, onRendered = () => {} }) {
  let messages = [];
  let hasMore = false;
  let opened = false; // the first page is in
  let unreadId = null; // the first unread message when the chat opened
  let refreshing = null;
  let again = false;
  let older = null; // the running loadOlder
  let showing = null; // a message id show() waits for
  let highlighted = null; // the message show() found, highlighted for a while
  let pending = []; // typed here, not yet accepted by the node: shown last, in order

  const list = h("ol", { class: "messages", "aria-label": "Messages", tabindex: "-1" });
  const top = h("p", { class: "history-top", role: "status" });
  const scroller = h("div", { class: "scroll messages-scroll" }, top, list);
  const jump = h(
    "button",
    { type: "button", class: "jump-unread", hidden: true, onclick: () => jumpToUnread() },
    "↑ First unread",
  );
  const el = h("div", { class: "message-list" }, scroller, jump);

  function byId(id) {
    return messages.find((m) => m.id === id) || pending.find((m) => m.id === id) || null;
  }

  /** Show a message typed here at once, below the others, until the node has it. */
  function addPending(m) {
    pending.push({ ...m, pending: true });
    render();
    stickToBottom();
  }

  /**
   * Pending messages not yet in `messages`: a re-read may bring one in before
   * its POST answers (the node stores it first); its twin is my message of the
   * same text stamped since it was typed (the node is on this machine).
   */
  function visiblePending() {
    const claimed = new Set();
    return pending.filter((p) => {
      const twin = messages.find((m) => m.outgoing && !claimed.has(m.id) && m.text === p.text && (m.sent_at_ms || 0) >= p.sent_at_ms - 2000);
      if (twin) claimed.add(twin.id);
      return !twin;
    });
  }

  /** The node answered for pending message `id`: `real` (or null: it failed) takes its place. */
  function settlePending(id, real) {
    pending = pending.filter((m) => m.id !== id);
    if (real && !messages.some((m) => m.id === real.id)) messages = [...messages, real];
    render();
  }

  function items() {
    const out = [];
    let day = "";
    for (const m of [...messages, ...visiblePending()]) {
      const d = new Date(m.sent_at_ms || m.received_at_ms || 0).toDateString();
      if (d !== day) {
        day = d;
        out.push(h("li", { class: "date-separator", role: "separator" }, h("span", {}, dayLabel(m.sent_at_ms || m.received_at_ms || 0))));
      }
      if (m.id === unreadId) out.push(h("li", { class: "unread-line", id: "unread-line", role: "separator" }, h("span", {}, "New messages")));
      const li = renderItem(m);
      if (m.id === highlighted) li.classList.add("highlight");
      if (m.pending) li.classList.add("pending");
      out.push(li);
    }
    return out;
  }

  /** Re-render; `keep`: hold what is on screen in place (content was prepended). */
  function render(keep = false) {
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM_PX;
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.id : null;
    top.textContent = !opened ? "Loading…" : hasMore ? "" : messages.length ? "The beginning of this chat" : "";
    top.hidden = !top.textContent;
    if (!messages.length) mount(list, opened ? h("li", { class: "empty" }, "No messages yet. Say hello!") : null);
    else mount(list, items());
    if (focused) list.querySelector(`#m-${CSS.escape(focused)} .bubble`)?.focus({ preventScroll: true });
    if (keep) {
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
    } else if (!scroller.dataset.scrolled && messages.length) {
      scroller.dataset.scrolled = "1";
      const line = unreadId && list.querySelector("#unread-line");
      if (line) line.scrollIntoView({ block: "start" });
      else scroller.scrollTop = scroller.scrollHeight;
    } else if (nearBottom) {
      scroller.scrollTop = scroller.scrollHeight;
    }
    updateJump();
    onRendered();
  }

  /** Scroll to the bottom after the next render (I just sent something). */
  function stickToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  /** Re-read the newest page and merge it (a call during one runs once more after it). */
  async function refresh() {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        do {
          again = false;
          let page;
          try {
            page = await fetchPage(null);
          } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            toast(err.message, "error");
            return;
          }
          const inPage = new Set(page.map((m) => m.id));
          const at = page.length ? messages.findIndex((m) => m.id === page[0].id) : -1;
          const kept = at > 0 ? messages.slice(0, at).filter((m) => !inPage.has(m.id)) : [];
          if (!opened || at < 0) hasMore = page.length >= PAGE;
          if (!opened) unreadId = firstUnread(page, hasMore);
          messages = [...kept, ...page];
          opened = true;
          render();
        } while (again);
      } finally {
        refreshing = null;
      }
      if (unreadId === undefined) await findUnread();
      else if (scroller.scrollTop < NEAR_TOP_PX && hasMore) loadOlder();
    })();
    return refreshing;
  }

  /** More unread messages than the first page holds: load back to the first of them. */
  async function findUnread() {
    for (let i = 0; unreadId === undefined && i < MAX_UNREAD_PAGES; i++) {
      if (!(await loadOlder())) break;
      unreadId = firstUnread(messages, hasMore);
    }
    if (unreadId === undefined) unreadId = messages.length ? messages[0].id : null;
    render();
    list.querySelector("#unread-line")?.scrollIntoView({ block: "start" });
  }

  /** Prepend the page before the oldest message shown; resolves to whether it added any. */
  async function loadOlder() {
    if (older) return older;
    if (!hasMore || !messages.length) return false;
    older = (async () => {
      top.textContent = "Loading earlier messages…";
      top.hidden = false;
      try {
        const page = await fetchPage(olderCursor(messages[0]));
        const shown = new Set(messages.map((m) => m.id));
        const fresh = page.filter((m) => !shown.has(m.id));
        hasMore = page.length >= PAGE && fresh.length > 0;
        messages = [...fresh, ...messages];
        render(true);
        return fresh.length > 0;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        toast(err.message, "error");
        return false;
      } finally {
        older = null;
      }
    })();
    return older;
  }

  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < NEAR_TOP_PX && hasMore && !showing) loadOlder();
    updateJump();
  });

  function updateJump() {
    const line = unreadId ? list.querySelector("#unread-line") : null;
    jump.hidden = !line || line.offsetTop + line.offsetHeight > scroller.scrollTop;
  }

  function jumpToUnread() {
    list.querySelector("#unread-line")?.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  /** Scroll to message `id` and highlight it, loading older pages until it is there. */
  async function show(id) {
    showing = id;
    try {
      if (!opened) await refresh();
      for (let i = 0; !byId(id) && hasMore && i < MAX_SHOW_PAGES && showing === id; i++) {
        if (!(await loadOlder())) break;
      }
    } finally {
      if (showing === id) showing = null;
    }
    const li = list.querySelector(`#m-${CSS.escape(id)}`);
    if (!li) {
      toast("That message is not in this chat any more", "error");
      return false;
    }
    scroller.dataset.scrolled = "1";
    li.scrollIntoView({ block: "center" });
    for (const old of list.querySelectorAll(".highlight")) old.classList.remove("highlight");
    highlighted = id;
    li.classList.add("highlight");
    setTimeout(() => {
      if (highlighted !== id) return;
      highlighted = null;
      list.querySelector(`#m-${CSS.escape(id)}`)?.classList.remove("highlight");
    }, 6000);
    return true;
  }

  return {
    el,
    list,
    scroller,
    messages: () => messages,
    setMessages(next) {
      messages = next;
    },
    byId,
    refresh,
    render,
    show,
    loadOlder,
    stickToBottom,
    addPending,
    settlePending,
    hasMore: () => hasMore,
    /** The first page is in and the first unread message found: marking read may start. */
    ready: () => opened && unreadId !== undefined,
  };
}
