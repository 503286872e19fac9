// Service worker: makes the UI installable and lets its shell open offline.
// Network first for the UI's own files (they come from the local node, so the
// network is nearly always there), falling back to the cached copy. The API is
// never cached: it carries the user's data and the token.

const CACHE = "boxless-shell-v4";
const SHELL = [
  "./",
  "index.html",
  "styles.css",
  "app.js",
  "manifest.webmanifest",
  "icons/icon-192.png",
  "js/api.js",
  "js/broadcasts.js",
  "js/chats.js",
  "js/contacts.js",
  "js/conversation.js",
  "js/dom.js",
  "js/group.js",
  "js/groupinfo.js",
  "js/me.js",
  "js/mentions.js",
  "js/newgroup.js",
  "js/onboarding.js",
  "js/sas.js",
  "js/store.js",
  "js/verify.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
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
