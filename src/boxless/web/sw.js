// Service worker: makes the UI installable and lets its shell open offline.
// Network first for the UI's own files (they come from the local node, so the
// network is nearly always there), falling back to the cached copy. The API is
// never cached: it carries the user's data and the token.
// Notifications (js/notify.js) are shown through this worker; a click on one
// focuses an open Boxless tab and posts it the chat's route, or opens a new tab
// at that route (the session cookie signs it in: no token in the URL).

const CACHE = "boxless-shell-v5";
const SHELL = [
  "./",
  "index.html",
  "styles.css",
  "app.js",
  "manifest.webmanifest",
  "icons/icon-192.png",
  "js/api.js",
  "js/broadcasts.js",
  "js/chatmenu.js",
  "js/chats.js",
  "js/contacts.js",
  "js/conversation.js",
  "js/dom.js",
  "js/group.js",
  "js/groupinfo.js",
  "js/me.js",
  "js/mentions.js",
  "js/newgroup.js",
  "js/notify.js",
  "js/notifybar.js",
  "js/onboarding.js",
  "js/sas.js",
  "js/store.js",
  "js/verify.js",
];

self.addEventListener("install", (event) => {
  // One by one: a file missing from the list must not stop the worker (notifications need it).
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => Promise.allSettled(SHELL.map((file) => cache.add(file))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) {
    return; // the browser handles it
  }
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname === "/" ? "./" : event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true })),
  );
});

const ROUTE = /^#\/(chat|group)\/[0-9a-f]{64}$/;

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const wanted = event.notification.data && event.notification.data.route;
  const route = typeof wanted === "string" && ROUTE.test(wanted) ? wanted : "#/chats";
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const open = windows.find((w) => new URL(w.url).origin === location.origin);
      if (open) {
        open.postMessage({ type: "open-chat", route });
        await open.focus();
        return;
      }
      await self.clients.openWindow(new URL(`./${route}`, self.registration.scope).href);
    })(),
  );
});
