// Discover → Mini apps (installed, recently used, search, install from a file,
// per-app settings: permissions and remove) and the app runtime pane (#/app/<id>):
// the app's page in <iframe sandbox="allow-scripts"> on the app origin, its only
// way out the bridge (js/bridge.js). See docs/miniapps.md.

import { ApiError, call, imageUrl } from "./api.js";
import { h, icon, mount, toast } from "./dom.js";
import { deliverAppMessage, openBridge } from "./bridge.js";

export { resumeAppReplies } from "./bridge.js"; // app.js: on every events socket open

const PERMISSION_NAMES = {
  "user.name": "Your name",
  "user.avatar": "Your profile picture",
  backend: "Talk to its bot",
  pay: "Payments",
  share: "Share to chats",
  storage: "Storage on this device",
};

export const timings = { openedAt: 0, firstPaint: 0 }; // tap → first paint (bench)

// The last GET /miniapps: an app tapped in Discover opens at once from it (checked
// against a fresh listing right after, which wins).
let listing = null;
function listApps() {
  return call("GET", "/miniapps").then((r) => (listing = r));
}

function appIcon(app) {
  const img = h("img", { class: "miniapp-icon", alt: "", width: 40, height: 40 });
  imageUrl(`/miniapps/${app.id}/icon`).then(
    (url) => (img.src = url),
    () => img.replaceWith(h("span", { class: "miniapp-icon miniapp-icon-none", "aria-hidden": "true" }, app.name.slice(0, 1))),
  );
  return img;
}

function settingsCard(app, reload) {
  const rows = app.permissions.map((perm) => {
    const decided = app.decisions[perm];
    const state = decided === true ? "Allowed" : decided === false ? "Refused" : "Ask at first use";
    return h(
      "li",
      { class: "miniapp-perm" },
      h("span", { class: "row-main" }, h("span", { class: "row-name" }, PERMISSION_NAMES[perm] || perm), h("span", { class: "row-preview" }, state)),
      decided === undefined
        ? null
        : h(
            "button",
            {
              type: "button",
              class: "miniapp-revoke",
              onclick: async () => {
                await call("PUT", `/miniapps/${app.id}/permissions/${perm}`, { granted: null });
                toast(`${PERMISSION_NAMES[perm] || perm}: will ask again`);
                reload();
              },
            },
            "Revoke",
          ),
    );
  });
  return h(
    "div",
    { class: "miniapp-settings" },
    h("p", { class: "hint" }, `Version ${app.version} · developer ${app.developer.slice(0, 16)}… · ${Math.ceil(app.size / 1024)} KiB`),
    rows.length ? h("ul", { class: "rows" }, rows) : h("p", { class: "hint" }, "This app asks for no permissions."),
    h(
      "button",
      {
        type: "button",
        class: "danger miniapp-remove",
        onclick: async () => {
          await call("DELETE", `/miniapps/${app.id}`);
          toast(`${app.name} removed with its data`);
          reload();
        },
      },
      "Remove app and its data",
    ),
  );
}

export function miniappsView() {
  const input = h("input", { type: "search", id: "miniapps-filter", class: "search-input", placeholder: "Search mini apps", "aria-label": "Search mini apps", maxlength: 100, autocomplete: "off" });
  const list = h("ul", { class: "rows miniapp-list", id: "miniapp-list", "aria-label": "Installed mini apps" });
  const file = h("input", { type: "file", id: "miniapp-file", accept: ".boxapp,application/octet-stream", class: "visually-hidden" });
  const status = h("p", { class: "hint miniapp-status", role: "status" });
  const sharedList = h("ul", { class: "rows miniapp-list", id: "miniapp-shared", "aria-label": "Apps shared in your chats" });
  const sharedHead = h("h3", { class: "miniapp-section" }, "Shared in your chats");
  let apps = [];
  let shared = [];
  let openSettings = null;

  async function load() {
    try {
      [apps, shared] = await Promise.all([
        listApps().then((r) => r.apps),
        call("GET", "/miniapps/shared").then((r) => r.apps),
      ]);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      status.textContent = err.message;
      return;
    }
    draw();
  }

  function draw() {
    const q = input.value.trim().toLowerCase();
    const shown = apps.filter((a) => !q || a.name.toLowerCase().includes(q) || a.id.includes(q));
    mount(
      list,
      ...shown.map((app) =>
        h(
          "li",
          { class: "miniapp-row", dataset: { app: app.id } },
          h(
            "div",
            { class: "row" },
            appIcon(app),
            h("a", { class: "row-main", href: `#/app/${app.id}` }, h("span", { class: "row-name" }, app.name), h("span", { class: "row-preview" }, app.used_at_ms ? "Recently used" : "Installed", app.suspended ? " · suspended" : "")),
            h(
              "button",
              { type: "button", class: "icon-button", "aria-label": `${app.name} settings`, onclick: () => { openSettings = openSettings === app.id ? null : app.id; draw(); } },
              icon("info", 20),
            ),
          ),
          openSettings === app.id ? settingsCard(app, load) : null,
        ),
      ),
    );
    const sharedShown = shared.filter((a) => !q || a.name.toLowerCase().includes(q));
    sharedHead.hidden = !sharedShown.length;
    mount(sharedList, ...sharedShown.map((s) => sharedRow(s, load)));
    status.textContent = apps.length ? (shown.length ? "" : "No app matches.") : (shared.length ? "No mini apps installed yet." : "No mini apps yet: install one from a chat's app card or a .boxapp file.");
  }

  file.addEventListener("change", async () => {
    const f = file.files && file.files[0];
    file.value = "";
    if (!f) return;
    try {
      const app = await call("POST", "/miniapps", undefined, { raw: await f.arrayBuffer() });
      toast(`${app.name} ${app.version} installed`);
      load();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(`Not installed: ${err.message}`, "error");
    }
  });
  input.addEventListener("input", draw);

  const el = h(
    "div",
    { class: "conversation panel miniapps-pane" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/discover", "aria-label": "Back" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, "Mini apps")),
    ),
    h("div", { class: "search-form" }, input),
    h(
      "div",
      { class: "scroll" },
      list,
      status,
      sharedHead,
      sharedList,
      h("label", { class: "button miniapp-install", for: "miniapp-file" }, "Install from a file…"),
      file,
      h("p", { class: "hint" }, "Apps are signed by their developer and run sandboxed: they cannot see your chats or reach the network."),
    ),
  );
  load();
  return { el, update() {} };
}

/** A `.boxapp` shared in a chat, not installed: its name, where, and "Install". */
function sharedRow(s, reload) {
  const [kind, key] = s.chat.split(":");
  const where = kind === "group" ? `#/group/${key}/m/${s.message_id}` : `#/chat/${key}/m/${s.message_id}`;
  const b = h("button", { type: "button", class: "miniapp-shared-install", "aria-label": `Install ${s.name}` }, "Install");
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const app = await call("POST", "/miniapps/from-attachment", { message_id: s.message_id, index: s.index });
      toast(`${app.name} ${app.version} installed`);
      reload();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(`Not installed: ${err.message}`, "error");
      b.disabled = false;
    }
  });
  return h(
    "li",
    { class: "miniapp-row miniapp-shared-row", dataset: { message: s.message_id } },
    h(
      "div",
      { class: "row" },
      h("span", { class: "miniapp-icon miniapp-icon-none", "aria-hidden": "true" }, s.name.slice(0, 1)),
      h("a", { class: "row-main", href: where }, h("span", { class: "row-name" }, s.name), h("span", { class: "row-preview" }, `Shared in a chat · ${Math.ceil(s.size / 1024)} KiB`)),
      b,
    ),
  );
}

export function appView(appId) {
  const frameBox = h("div", { class: "miniapp-frame-box" });
  const title = h("h2", { class: "conv-name" }, "…");
  const el = h(
    "div",
    { class: "conversation panel miniapp-pane" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/miniapps", "aria-label": "Back" }, icon("back")),
      h("div", { class: "conv-title" }, title),
    ),
    frameBox,
  );
  let bridge = null;
  timings.openedAt = performance.now();
  timings.firstPaint = 0;

  let shown = null; // the app entry (and origin) whose frame is up

  function show(app, origin) {
    if (bridge) bridge.close();
    bridge = null;
    shown = app && origin && !app.suspended ? { app, origin } : null;
    if (!app || !origin) {
      mount(frameBox, h("p", { class: "hint" }, app ? "The app origin is not running." : "This app is not installed."));
      return;
    }
    title.textContent = app.name;
    if (app.suspended) {
      mount(frameBox, h("p", { class: "miniapp-suspended", role: "alert" }, `${app.name} is suspended: it called Boxless too often.`));
      return;
    }
    // the versioned folder (<id>@<archive hash>): its files are cached for good
    const frame = h("iframe", {
      class: "miniapp-frame",
      id: "miniapp-frame",
      title: app.name,
      sandbox: "allow-scripts",
      referrerpolicy: "no-referrer",
      allow: "",
      src: `${origin}/${app.id}@${app.sha256.slice(0, 16)}/${app.entry}`,
    });
    frame.addEventListener("load", () => {
      if (!timings.firstPaint) timings.firstPaint = performance.now() - timings.openedAt;
    }, { once: true });
    bridge = openBridge(app, frame, (reason) => {
      frame.remove();
      mount(frameBox, h("p", { class: "miniapp-suspended", role: "alert" }, `${app.name} was suspended: ${reason}.`));
    });
    mount(frameBox, frame);
  }

  const known = listing && listing.apps.find((a) => a.id === appId);
  if (known && listing.origin && !known.suspended) show(known, listing.origin); // no wait
  listApps()
    .then(({ apps, origin }) => {
      const app = apps.find((a) => a.id === appId);
      const same = shown && app && !app.suspended && origin === shown.origin && app.sha256 === shown.app.sha256;
      if (!same) show(app, origin);
      if (app) call("POST", `/miniapps/${app.id}/opened`).catch(() => {});
    })
    .catch((err) => {
      if (!(err instanceof ApiError)) throw err;
      mount(frameBox, h("p", { class: "hint" }, err.message));
    });

  return {
    el,
    update() {},
    destroy() {
      if (bridge) bridge.close();
    },
  };
}

/** An app_message event (a bot's response or push for an open app). */
export function onAppMessageEvent(ev) {
  deliverAppMessage(ev);
}

/** App cards in chats: a `.boxapp` file attachment gets "Install app" (the node
 * fetches it, verifies the signature and the developer key, then installs). */
export function appCardButton(a) {
  if (!/\.boxapp$/i.test(a.name || "")) return null;
  const b = h("button", { type: "button", class: "att-get miniapp-card-install", "aria-label": `Install the mini app ${a.name}` }, "Install app");
  b.addEventListener("click", async (e) => {
    e.stopPropagation();
    b.disabled = true;
    try {
      const app = await call("POST", "/miniapps/from-attachment", { message_id: a.message_id, index: a.index });
      toast(`${app.name} ${app.version} installed`);
      b.replaceWith(h("a", { class: "button miniapp-card-open", href: `#/app/${app.id}` }, `Open ${app.name}`));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(`Not installed: ${err.message}`, "error");
      b.disabled = false;
    }
  });
  return b;
}

let installedCache = null; // Promise of the installed apps, refreshed on each chat open
const APP_ID_RE = /^[a-z0-9-]+(\.[a-z0-9-]+)+$/;

/** A card an app shared to a chat (bridge.js sendCard): a `<app id>.boxcard` file whose
 * caption is the card. Rendered as the app's card with "Open" when the app is
 * installed, else a pointer to Discover. The app id comes from the file name (a
 * peer's claim: it only ever opens an app this user installed). */
export function appShareCard(a) {
  const appId = String(a.name || "").replace(/\.boxcard$/i, "");
  const action = h("span", { class: "miniapp-sharecard-action" });
  const title = h("span", { class: "att-name" }, "Mini app");
  const el = h(
    "div",
    { class: "att-file miniapp-sharecard", "data-attachment": `${a.message_id}/${a.index}`, dataset: { app: appId } },
    h("span", { class: "miniapp-icon miniapp-icon-none", "aria-hidden": "true" }, "▦"),
    h("span", { class: "att-file-info" }, title, h("span", { class: "att-size" }, "App card")),
    action,
  );
  if (!APP_ID_RE.test(appId) || appId.length > 100) {
    title.textContent = "Unknown app card";
    return el;
  }
  if (!installedCache) {
    installedCache = call("GET", "/miniapps").then((r) => r.apps, () => []);
    setTimeout(() => (installedCache = null), 5000);
  }
  installedCache.then((apps) => {
    const app = apps.find((x) => x.id === appId);
    if (app) {
      title.textContent = app.name;
      action.append(h("a", { class: "button miniapp-sharecard-open", href: `#/app/${app.id}`, "aria-label": `Open ${app.name}` }, "Open"));
    } else {
      title.textContent = appId;
      action.append(h("a", { class: "button miniapp-sharecard-get", href: "#/miniapps" }, "Get the app"));
    }
  });
  return el;
}
