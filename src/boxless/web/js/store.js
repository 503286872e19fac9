// What the UI knows, refreshed from the API; views subscribe to changes.
//
// Events from the WebSocket only say *that* something changed ("message" with
// an id, "contact" with a key), so the store re-reads the affected resources,
// debounced so a burst of receipts costs one round of requests.
// Groups, pending joins, broadcast lists and per-chat settings (pin, mute, unread
// mark, draft: GET /chats/settings) are read the same way; a route the node does
// not have yet (404/405 from an older `boxless up`) reads as empty.

import { ApiError, call } from "./api.js";

export const store = {
  me: null,
  contacts: [], // contact JSON, as the API returns it
  summaries: new Map(), // identity key -> {last, unread}
  groups: [], // group JSON (with unread, mentions, last_message), as the API returns it
  joins: [], // groups I asked to join by link, not admitted yet
  broadcasts: [], // broadcast lists
  settings: {}, // chat name ("contact:<key>" | "group:<id>") -> {pinned, muted, marked_unread, draft, cleared_at_ms}
  typing: new Map(), // identity key -> expiry (ms since epoch)
  connected: false, // the event WebSocket is open
  network: true, // the node reaches its service peers (connectivity events)
  catchingUp: 0, // messages caught up from the store so far (catch_up events; 0: not catching up)
};

const subscribers = new Set();

/** Call `fn()` after every change; returns the unsubscribe function. */
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

export function changed() {
  for (const fn of [...subscribers]) fn();
}

export function contact(key) {
  return store.contacts.find((c) => c.identity_key === key) || null;
}

export async function refreshContacts() {
  store.contacts = await call("GET", "/contacts");
  changed();
}

/** Last message and unread count of every conversation worth listing. */
export async function refreshSummaries() {
  const shown = store.contacts.filter((c) => c.state !== "blocked");
  const results = await Promise.all(
    shown.map(async (c) => {
      const messages = await call("GET", `/contacts/${c.identity_key}/messages?limit=100`);
      const unread = messages.filter((m) => !m.outgoing && m.state === "received").length;
      return [c.identity_key, { last: messages[messages.length - 1] || null, unread }];
    }),
  );
  store.summaries = new Map(results);
  changed();
}

export function group(id) {
  return store.groups.find((g) => g.id === id) || null;
}

/** `call("GET", path)`, or `fallback` when this node has no such route (yet). */
async function optional(path, fallback) {
  try {
    return await call("GET", path);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return fallback;
    throw err;
  }
}

export async function refreshGroups() {
  const [groups, joins, broadcasts] = await Promise.all([
    optional("/groups", []),
    optional("/groups/joins", []),
    optional("/broadcasts", []),
  ]);
  store.groups = groups;
  // A join shows as pending until the group itself arrives.
  store.joins = joins.filter((j) => !groups.some((g) => g.id === j.group));
  store.broadcasts = broadcasts;
  changed();
}

export async function refreshSettings() {
  store.settings = (await optional("/chats/settings", {})) || {};
  changed();
}

let settingsPending = null;

/** Re-read only the chat settings soon (a pin, a mute or a draft saved in another tab). */
export function refreshSettingsSoon() {
  if (settingsPending) return;
  settingsPending = setTimeout(async () => {
    settingsPending = null;
    try {
      await refreshSettings();
    } catch (err) {
      console.warn("settings refresh failed", err);
    }
  }, 150);
}

/** A chat's settings ("contact:<key>" or "group:<id>"), defaults when it has none. */
export function settingsOf(chat) {
  const s = store.settings[chat] || {};
  return {
    pinned: Boolean(s.pinned),
    muted: Boolean(s.muted),
    marked_unread: Boolean(s.marked_unread),
    draft: s.draft || "",
    cleared_at_ms: s.cleared_at_ms || null,
  };
}

/** Change a chat's pin, mute or unread mark (PUT /chats/{chat}/settings); the store follows. */
export async function changeSettings(chat, change) {
  const s = await call("PUT", `/chats/${encodeURIComponent(chat)}/settings`, change);
  store.settings = { ...store.settings, [chat]: s };
  changed();
  return s;
}

/** The chat a route shows ("#/chat/<key>" -> "contact:<key>"), or null. */
export function chatOfRoute(hash) {
  const m = /^#\/(chat|group)\/([0-9a-f]{64})(?:\/|$)/.exec(hash || "");
  return m ? `${m[1] === "chat" ? "contact" : "group"}:${m[2]}` : null;
}

// Opening a chat marked unread reads it: the mark goes (on navigation, not on
// every refresh: a chat marked unread from the list stays marked).
function clearMarkOfOpenChat() {
  const chat = chatOfRoute(location.hash);
  if (chat && settingsOf(chat).marked_unread) {
    changeSettings(chat, { marked_unread: false }).catch((err) => console.warn("unread mark kept", err));
  }
}
if (typeof window !== "undefined") window.addEventListener("hashchange", clearMarkOfOpenChat);

let loaded = false;

export async function refreshAll() {
  await refreshContacts();
  await Promise.all([refreshSummaries(), refreshGroups(), refreshSettings()]);
  if (!loaded) clearMarkOfOpenChat(); // opened at that chat (a link, a reload)
  loaded = true;
}

let pending = null;

/** Refresh everything soon (coalescing calls made within 150 ms). */
export function refreshSoon() {
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    try {
      await refreshAll();
    } catch (err) {
      console.warn("refresh failed", err);
    }
  }, 150);
}

export function isTyping(key) {
  return (store.typing.get(key) || 0) > Date.now();
}

export function setTyping(key, typing) {
  if (typing) store.typing.set(key, Date.now() + 6000);
  else store.typing.delete(key);
  changed();
  if (typing) setTimeout(changed, 6100);
}

/** A chat's unread count for badges: its unread messages, or 1 if only marked unread. */
export function unreadOf(chat, unread) {
  return unread || (settingsOf(chat).marked_unread ? 1 : 0);
}

/** Unread messages worth a badge and the tab title: own messages never count, a
 * muted chat counts only for mentions (groups), a chat marked unread counts one. */
export function totalUnread() {
  let n = 0;
  for (const [key, s] of store.summaries.entries()) {
    const chat = `contact:${key}`;
    if (!settingsOf(chat).muted) n += unreadOf(chat, s.unread);
  }
  for (const g of store.groups) {
    const chat = `group:${g.id}`;
    if (!g.muted) n += unreadOf(chat, g.unread || 0);
    else if (g.mentions) n += g.unread || 0;
  }
  return n;
}

export function requestCount() {
  return store.contacts.filter((c) => c.state === "request_received").length;
}
