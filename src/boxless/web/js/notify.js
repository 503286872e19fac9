// Notifications, the unread count in the tab title and the app badge.
//
// A new message (1:1 or group) shows a Web Notification through the service
// worker (registration.showNotification) while this tab is hidden or not
// focused, unless its chat is muted; a muted group still notifies when the
// message mentions me. One notification per chat (tagged with the chat's name,
// the next one replaces it), so a catch-up burst cannot flood the screen.
// Clicking one focuses this tab and opens the chat (sw.js posts the route back).
// Permission is asked only from a click ("Turn on notifications"), never on load.
// The notification says who wrote and, unless previews are turned off here, the
// text; never the API token or anything from the URL.

import { call } from "./api.js";
import { changed, chatOfRoute, contact, group, settingsOf, subscribe, totalUnread } from "./store.js";

const PREVIEW_KEY = "boxless.notifications.preview"; // "off": hide message text
const DISMISS_KEY = "boxless.notifications.dismissed"; // "1": the banner was closed
const ROUTE = /^#\/(chat|group)\/[0-9a-f]{64}$/;
const BASE_TITLE = "Boxless";
const FETCH_AFTER_MS = 250; // coalesce a burst of events into one read per chat
const MAX_REMEMBERED = 2000; // ids already notified (then the oldest are forgotten)
const PREVIEW_CHARS = 140;
const WORKER_WAIT_MS = 3000; // then a page notification instead of the worker's

const startedAt = Date.now();
const notified = new Set(); // message ids shown (or decided against) already
const waiting = new Map(); // chat name -> Set of message ids to look at
let timer = null;

export function supported() {
  return typeof Notification !== "undefined" && "serviceWorker" in navigator;
}

/** "granted" | "denied" | "default" | "unsupported" */
export function permission() {
  return supported() ? Notification.permission : "unsupported";
}

/** Ask for permission (call from a click: browsers refuse it otherwise). */
export async function enableNotifications() {
  if (!supported()) return "unsupported";
  const result = await Notification.requestPermission();
  changed();
  return result;
}

export function previewsShown() {
  return localStorage.getItem(PREVIEW_KEY) !== "off";
}

export function setPreviewsShown(on) {
  localStorage.setItem(PREVIEW_KEY, on ? "on" : "off");
  changed();
}

export function bannerDismissed() {
  return localStorage.getItem(DISMISS_KEY) === "1";
}

export function dismissBanner() {
  localStorage.setItem(DISMISS_KEY, "1");
  changed();
}

function away() {
  return document.visibilityState !== "visible" || !document.hasFocus();
}

function remember(id) {
  notified.add(id);
  if (notified.size > MAX_REMEMBERED) notified.delete(notified.values().next().value);
}

// -- events from app.js onEvent -----------------------------------------------------------

/** A "message" event (a 1:1 message added or changed). */
export function onMessageEvent(ev) {
  if (ev.contact) queue(`contact:${ev.contact}`, ev.message_id);
}

/** A "group_message" or "group_mention" event. */
export function onGroupMessageEvent(ev) {
  if (ev.group && ev.id) queue(`group:${ev.group}`, ev.id);
}

function queue(chat, id) {
  if (permission() !== "granted" || notified.has(id)) return;
  if (!waiting.has(chat)) waiting.set(chat, new Set());
  waiting.get(chat).add(id);
  if (!timer) timer = setTimeout(flush, FETCH_AFTER_MS);
}

async function flush() {
  timer = null;
  const chats = [...waiting.entries()];
  waiting.clear();
  for (const [chat, ids] of chats) {
    try {
      await consider(chat, ids);
    } catch (err) {
      console.warn("notification skipped", err.message || err);
    }
  }
}

async function consider(chat, ids) {
  if (!away()) {
    for (const id of ids) remember(id); // seen in the open tab: never notify it later
    return;
  }
  const [kind, key] = chat.split(":");
  if (kind === "contact") {
    if (settingsOf(chat).muted) return;
    const messages = await call("GET", `/contacts/${key}/messages?limit=50`);
    const fresh = messages.filter((m) => ids.has(m.id) && isNew(m, !m.outgoing && m.state === "received"));
    if (!fresh.length) return;
    for (const m of fresh) remember(m.id);
    const c = contact(key);
    const last = fresh[fresh.length - 1];
    await show(chat, `#/chat/${key}`, c ? c.name : "New message", last.text, fresh.length);
    return;
  }
  const g = group(key);
  const muted = g ? g.muted : settingsOf(chat).muted;
  const messages = await call("GET", `/groups/${key}/messages?limit=50`);
  const fresh = messages.filter(
    (m) =>
      ids.has(m.id) &&
      isNew(m, !m.outgoing && m.kind === "text") &&
      (!muted || m.mentions_me || m.mention_all),
  );
  if (!fresh.length) return;
  for (const m of fresh) remember(m.id);
  const last = fresh[fresh.length - 1];
  const mention = fresh.some((m) => m.mentions_me || m.mention_all);
  const title = g ? g.name : "Group";
  const who = last.sender_name || "Someone";
  const hidden = mention ? `${who} mentioned you` : `${who}: new message`;
  await show(chat, `#/group/${key}`, title, `${who}: ${last.text}`, fresh.length, hidden);
}

function isNew(m, incoming) {
  if (!incoming || m.deleted || notified.has(m.id)) return false;
  return (m.received_at_ms || m.sent_at_ms || 0) >= startedAt - 60_000;
}

async function show(chat, route, title, text, count, hidden = "New message") {
  let body = previewsShown() ? text : hidden;
  if (body.length > PREVIEW_CHARS) body = `${body.slice(0, PREVIEW_CHARS - 1)}…`;
  if (count > 1 && previewsShown()) body = `${body} (+${count - 1} more)`;
  const options = { body, tag: chat, renotify: true, icon: "icons/icon-192.png", data: { route } };
  const registration = await Promise.race([
    navigator.serviceWorker.ready,
    new Promise((resolve) => setTimeout(() => resolve(null), WORKER_WAIT_MS)),
  ]);
  if (registration) {
    await registration.showNotification(title, options);
    return;
  }
  // No service worker (it failed to register): a page notification, while this page lives.
  const shown = new Notification(title, options);
  shown.onclick = () => {
    window.focus();
    openRoute(route);
    shown.close();
  };
}

// -- clicks on a notification, the title and the badge ------------------------------------

function openRoute(route) {
  if (typeof route === "string" && ROUTE.test(route)) location.hash = route;
}

let shownCount = -1;

function updateCount() {
  const n = totalUnread();
  if (n === shownCount) return;
  shownCount = n;
  document.title = n ? `(${n > 99 ? "99+" : n}) ${BASE_TITLE}` : BASE_TITLE;
  if ("setAppBadge" in navigator) {
    const done = n ? navigator.setAppBadge(n) : navigator.clearAppBadge();
    done.catch(() => {}); // not an installed app, or the platform has no badges
  }
}

// The chat on screen, looked at: its notification has done its job.
async function closeShownForOpenChat() {
  const chat = chatOfRoute(location.hash);
  if (!chat || document.visibilityState !== "visible" || permission() !== "granted") return;
  const registration = await navigator.serviceWorker.getRegistration();
  if (!registration) return;
  for (const n of await registration.getNotifications({ tag: chat })) n.close();
}

// From the first import on: the title and badge follow the store; a click on a
// notification (sw.js) opens its chat here; opening a chat closes its notification.
subscribe(updateCount);
window.addEventListener("hashchange", () => closeShownForOpenChat().catch(() => {}));
document.addEventListener("visibilitychange", () => closeShownForOpenChat().catch(() => {}));
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.addEventListener("message", (ev) => {
    if (ev.data && ev.data.type === "open-chat") openRoute(ev.data.route);
  });
}
