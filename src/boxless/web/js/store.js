// What the UI knows, refreshed from the API; views subscribe to changes.
//
// Events from the WebSocket only say *that* something changed ("message" with
// an id, "contact" with a key), so the store re-reads the affected resources,
// debounced so a burst of receipts costs one round of requests.
// Groups, pending joins and broadcast lists are read the same way; a route the
// node does not have yet (404/405 from an older `boxless up`) reads as empty.

import { ApiError, call } from "./api.js";

export const store = {
  me: null,
  contacts: [], // contact JSON, as the API returns it
  summaries: new Map(), // identity key -> {last, unread}
  groups: [], // group JSON (with unread, mentions, last_message), as the API returns it
  joins: [], // groups I asked to join by link, not admitted yet
  broadcasts: [], // broadcast lists
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

export async function refreshAll() {
  await refreshContacts();
  await Promise.all([refreshSummaries(), refreshGroups()]);
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

export function totalUnread() {
  let n = 0;
  for (const s of store.summaries.values()) n += s.unread;
  for (const g of store.groups) if (!g.muted || g.mentions) n += g.unread || 0;
  return n;
}

export function requestCount() {
  return store.contacts.filter((c) => c.state === "request_received").length;
}
