// Boxless web UI: boot, the app shell (tabs + detail pane), hash routes, live events.
//
// Routes: #/chats #/contacts #/discover #/me (tabs), #/chat/<key>[/m/<message id>], #/verify/<key>,
// #/group/<id>[/m/<message id>], #/group-info/<id>, #/new-group, #/join-group, #/broadcasts,
// #/new-broadcast, #/broadcast/<id> (detail panes).
// On a phone one pane shows at a time; from 800 px wide the tab pane stays on
// the left and conversations open on the right.

import { ApiError, call, connectEvents, onUnauthorized, startSession } from "./js/api.js";
import { showLock } from "./js/lock.js";
import { h, icon, mount, toast } from "./js/dom.js";
import { broadcastsView, broadcastView, newBroadcastView } from "./js/broadcasts.js";
import { chatsView } from "./js/chats.js";
import { contactCardView, contactsView } from "./js/contacts.js";
import { conversationView } from "./js/conversation.js";
import { groupView } from "./js/group.js";
import { groupInfoView } from "./js/groupinfo.js";
import { discoverView, meView } from "./js/me.js";
import { joinGroupView, newGroupView } from "./js/newgroup.js";
import { onboardingView } from "./js/onboarding.js";
import { onGroupMessageEvent, onMessageEvent } from "./js/notify.js";
import { onVerification, resumeVerifications } from "./js/sas.js";
import { onCallEvent, resumeCall } from "./js/call.js";
import { onGroupCallEvent, resumeGroupCall } from "./js/call_group.js";
import {
  changed,
  group,
  refreshAll,
  refreshSettingsSoon,
  refreshSoon,
  requestCount,
  setTyping,
  store,
  subscribe,
  totalUnread,
} from "./js/store.js";
import { verifyView } from "./js/verify.js";
import { favouritesView } from "./js/favourites.js";
import { devicesView, onDevicesEvent, resumeDevices } from "./js/devices.js";
import { searchView } from "./js/search.js";
import { momentsView, onMomentEvent, refreshMomentsUnread, resumeMoments } from "./js/moments.js";
import { onPaymentEvent, resumePayCards } from "./js/paycards.js";
import { onRedEnvelopeEvent, resumeRedEnvelopes } from "./js/redenvelope.js";
import { walletView } from "./js/wallet.js";
import { nearbyView, onNearbyEvent, resumeNearby } from "./js/nearby.js";
import { appView, miniappsView, onAppMessageEvent, resumeAppReplies } from "./js/miniapps.js";

const root = document.getElementById("app");

const TABS = [
  { id: "chats", label: "Chats", make: chatsView },
  { id: "contacts", label: "Contacts", make: contactsView },
  { id: "discover", label: "Discover", make: discoverView },
  { id: "me", label: "Me", make: meView },
];

// Detail panes: route name -> [view factory, needs an argument].
const DETAILS = {
  chat: [conversationView, true],
  verify: [verifyView, true],
  group: [groupView, true],
  "group-info": [groupInfoView, true],
  "new-group": [newGroupView, false],
  "join-group": [joinGroupView, false],
  broadcasts: [broadcastsView, false],
  "new-broadcast": [newBroadcastView, false],
  broadcast: [broadcastView, true],
  search: [searchView, false], // #/search, #/search/<chat> (one chat)
  favourites: [favouritesView, false],
  devices: [devicesView, false], // linked devices (js/devices.js), from Me
  wallet: [walletView, false], // the Wallet pane (js/wallet.js), from Me
  moments: [momentsView, false],
  nearby: [nearbyView, false], // People Nearby (js/nearby.js)
  miniapps: [miniappsView, false], // Discover → Mini apps (js/miniapps.js)
  app: [appView, true], // a mini app running sandboxed (js/miniapps.js, js/bridge.js)
  contact: [contactCardView, true], // a contact's card: profile, my alias/tags/notes (js/contacts.js)
};

// #/chat/<key>/m/<message id> and #/group/<id>/m/<message id> open the chat at
// that message (search results and favourites link there).
function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const [name = "chats", arg = null, sub = null, subArg = null] = parts;
  const message = sub === "m" && subArg && /^[0-9a-zA-Z_-]{1,128}$/.test(subArg) ? subArg : null;
  return { name, arg, message };
}

export function go(path) {
  location.hash = path;
}

// -- screens outside the app ---------------------------------------------------------

function message(title, text, action = null) {
  mount(
    root,
    h(
      "main",
      { class: "centered" },
      h("img", { src: "icons/icon-192.png", alt: "", class: "logo", width: 72, height: 72 }),
      h("h1", {}, title),
      h("p", {}, text),
      action,
    ),
  );
}

// No session (or the node is locked): the lock screen; its passphrase opens a
// session, and the app starts afresh (a reload: no state of the old one lingers).
let locking = false;
function needToken(reason) {
  if (locking) return;
  locking = true;
  showLock(root, reason, () => location.reload());
}

// -- the app shell -------------------------------------------------------------------

let views = {};
let detail = null; // {key: "chat/<id>", view}
let shell = null;

function buildShell() {
  views = Object.fromEntries(TABS.map((t) => [t.id, t.make()]));
  const tabbar = h(
    "nav",
    { class: "tabbar", "aria-label": "Main" },
    TABS.map((t) =>
      h(
        "a",
        { href: `#/${t.id}`, class: "tab", dataset: { tab: t.id }, id: `tab-${t.id}` },
        h("span", { class: "tab-icon" }, icon(t.id), h("span", { class: "badge", hidden: true })),
        h("span", { class: "tab-label" }, t.label),
      ),
    ),
  );
  const banner = h("div", { class: "banner", role: "status", hidden: true });
  const sidebar = h("section", { class: "sidebar" }, banner, h("div", { class: "tabpane" }), tabbar);
  const pane = h("section", { class: "detail", "aria-live": "off" });
  shell = { sidebar, pane, tabbar, banner, tab: "chats" };
  mount(root, h("div", { class: "shell" }, sidebar, pane));
}

function updateBadges() {
  const counts = { chats: totalUnread(), contacts: requestCount(), discover: store.momentsUnread || 0 };
  for (const a of shell.tabbar.querySelectorAll(".tab")) {
    const n = counts[a.dataset.tab] || 0;
    const badge = a.querySelector(".badge");
    badge.hidden = n === 0;
    badge.textContent = n > 99 ? "99+" : String(n);
    a.setAttribute("aria-label", `${TABS.find((t) => t.id === a.dataset.tab).label}${n ? `, ${n} new` : ""}`);
  }
  const problem = !store.connected
    ? "Reconnecting to your node…"
    : !store.network
      ? "Your node cannot reach the network; messages wait in the outbox."
      : store.catchingUp
        ? `Catching up on messages… ${store.catchingUp} so far`
        : "";
  shell.banner.hidden = !problem;
  shell.banner.textContent = problem;
}

// The node's reach of the network (GET /status), read on every events socket open and
// on "ready": a connectivity event sent while this page was away reached nobody. An
// event that comes while the read is under way is newer: the read then gives way.
let networkEvents = 0;
function resumeNetwork() {
  const seen = networkEvents;
  call("GET", "/status").then(
    (s) => {
      if (seen !== networkEvents) return;
      store.network = s.connected !== false;
      changed();
    },
    () => {},
  );
}

// Our own profile (GET /me): a "profile" event from another tab or the CLI, live or
// missed while the socket was away.
function resumeMe() {
  call("GET", "/me").then(
    (me) => {
      store.me = me;
      changed();
    },
    () => {},
  );
}

function route() {
  const { name, arg, message: showMessage } = parseRoute();
  const isTab = TABS.some((t) => t.id === name);
  if (isTab) shell.tab = name;
  const tabView = views[shell.tab];
  const pane = shell.sidebar.querySelector(".tabpane");
  if (pane.firstChild !== tabView.el) mount(pane, tabView.el);
  for (const a of shell.tabbar.querySelectorAll(".tab")) {
    if (a.dataset.tab === shell.tab) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  tabView.update();

  const key = isTab ? null : `${name}/${arg}`;
  if (!detail || detail.key !== key) {
    if (detail && detail.view.destroy) detail.view.destroy();
    detail = null;
    const found = DETAILS[name];
    if (found && (arg || !found[1])) detail = { key, view: found[0](arg) };
    if (detail) mount(shell.pane, detail.view.el);
    else mount(shell.pane, h("div", { class: "placeholder" }, icon("chats", 64), h("p", {}, "Choose a chat")));
  }
  document.body.classList.toggle("in-detail", Boolean(detail));
  if (detail) detail.view.update();
  if (!isTab && !detail) go("#/chats");
  if (detail && showMessage && detail.view.show) {
    // Drop the message from the address, so following the same link again shows it again.
    history.replaceState(history.state, "", `#/${name}/${arg}`);
    detail.view.show(showMessage);
  }
}

function onEvent(ev) {
  switch (ev.type) {
    case "message":
      if (detail && detail.view.onMessage) detail.view.onMessage(ev);
      onMessageEvent(ev); // a notification while the tab is hidden (js/notify.js)
      refreshSoon();
      break;
    case "contact_request":
      toast(`${ev.name || "Someone"} wants to add you: see Contacts`);
      refreshSoon();
      break;
    case "contact":
      refreshSoon();
      break;
    case "group":
      if (detail && detail.view.onGroup) detail.view.onGroup(ev);
      refreshSoon();
      break;
    case "group_message":
      if (detail && detail.view.onGroupMessage) detail.view.onGroupMessage(ev);
      onGroupMessageEvent(ev);
      refreshSoon();
      break;
    case "chat_settings": {
      // pinned, muted, marked unread, a draft, or deleted for me (then the open chat reloads)
      const [kind, id] = ev.chat.split(":");
      const open = detail && detail.key === `${kind === "contact" ? "chat" : "group"}/${id}`;
      if (ev.change === "deleted" && open && detail.view.reload) {
        detail.view.reload();
      }
      if (ev.change === "deleted") refreshSoon();
      else refreshSettingsSoon(); // a draft saved while typing: not every chat's messages
      break;
    }
    case "group_edit":
    case "group_delete":
    case "group_reaction":
      // A group message's text, deletion or reactions changed (ev.group, ev.id, ev.by).
      if (detail && detail.view.onGroupMessage) detail.view.onGroupMessage(ev);
      if (ev.type !== "group_reaction") refreshSoon();
      break;
    case "group_mention": {
      onGroupMessageEvent(ev); // notifies even in a muted group
      const g = group(ev.group);
      if (!detail || detail.key !== `group/${ev.group}`) toast(`You were mentioned in ${g ? g.name : "a group"}`);
      refreshSoon();
      break;
    }
    case "typing":
      setTyping(ev.contact, ev.typing);
      break;
    case "verification":
      onVerification(ev);
      break;
    case "verification_broken":
      toast("A verified contact's keys changed: compare safety numbers again", "error");
      refreshSoon();
      break;
    case "connectivity":
      networkEvents += 1;
      store.network = Boolean(ev.ok);
      changed();
      break;
    case "ready":
      resumeNetwork(); // caught up; a catch-up that failed said so, the node says if it still does
      refreshSoon();
      break;
    case "catch_up":
      store.catchingUp = ev.finished ? 0 : ev.done;
      changed();
      if (ev.finished) refreshSoon();
      break;
    case "profile":
      resumeMe(); // our name or picture changed (another tab, the CLI)
      refreshSoon();
      break;
    case "broadcast":
      refreshSoon();
      break;
    case "moment_changed":
      // a Moments post, like or comment changed or names us (ev.post_id, ev.what)
      onMomentEvent(ev); // the open feed reloads, the Discover badge follows (js/moments.js)
      break;
    case "attachment_progress":
    case "attachment_ready":
      // a file of a message is being fetched, or is ready or failed (ev.message_id, ev.index)
      if (detail && detail.view.onAttachment) detail.view.onAttachment(ev);
      break;
    case "devices":
      onDevicesEvent(ev);
      break;
    case "favourites":
      // a message saved or removed, here or on another of our devices (client/ownsync.py)
      if (detail && detail.view.onFavourites) detail.view.onFavourites(ev);
      break;
    case "payment":
      // a payment card was added or the chain confirmed/refuted it (js/paycards.js, js/wallet.js)
      onPaymentEvent(ev); // cards on screen redraw
      if (detail && detail.view.onPayment) detail.view.onPayment(ev);
      break;
    case "redenvelope":
      // a red envelope was sent, opened, relayed, emptied or refunded (js/redenvelope.js)
      onRedEnvelopeEvent(ev);
      break;
    case "app_message":
      // a mini app's bot answered or pushed (js/miniapps.js hands it to the open app's bridge)
      onAppMessageEvent(ev);
      break;
    case "nearby":
      // People Nearby: cards came or went, a hello, a new contact (ev.what; js/nearby.js)
      onNearbyEvent(ev);
      break;
    case "call":
    case "call_ice":
      // a call rings, connects or ends; the contact's ICE candidates came (js/call.js)
      onCallEvent(ev);
      break;
    case "group_call":
      // a group call rings, someone joins or leaves, a pair's SDP came (js/call_group.js)
      onGroupCallEvent(ev);
      break;
    default:
      break;
  }
}

async function startApp() {
  buildShell();
  subscribe(() => {
    updateBadges();
    views[shell.tab].update();
    if (detail) detail.view.update();
  });
  await refreshAll();
  refreshMomentsUnread();
  window.addEventListener("hashchange", route);
  route();
  connectEvents(onEvent, (open) => {
    store.connected = open;
    if (open) {
      // Every open, the first too: an event emitted before this socket listened (while
      // the page loaded, or was disconnected; a node restarting catches up from the
      // store before we reconnect) reached nobody, so what it would show is read again.
      resumeCall(); // a call ringing (or ended) meanwhile (js/call.js)
      resumeGroupCall(); // a group call ringing or running (js/call_group.js)
      resumeVerifications().catch(() => {}); // a request to compare emoji
      resumePayCards(); // cards the chain confirmed
      resumeRedEnvelopes(); // envelopes opened or refunded
      resumeDevices(); // the Devices pane's roster
      resumeNearby(); // cards and hellos nearby
      resumeMoments(); // the feed and the Discover badge
      resumeAppReplies(); // a bot's answers to an open mini app's requests (js/bridge.js)
      resumeNetwork(); // the banner: "Your node cannot reach the network"
      resumeMe(); // our name and picture
      store.catchingUp = 0; // a catch-up that finished unseen must not stay on the banner
      refreshSoon(); // chats, unread counts, contact requests, groups
      if (detail && detail.view.reload) detail.view.reload();
      if (detail && detail.view.onPayment) detail.view.onPayment({ type: "payment" }); // the Wallet pane
    }
    changed();
  });
}

async function boot() {
  let expired = false;
  try {
    await startSession(); // a ?token= link becomes a session cookie
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) {
      message("Boxless is not answering", err.message, h("button", { class: "primary", onclick: () => boot() }, "Try again"));
      return;
    }
    expired = true; // the link of an earlier run: the passphrase still works
  }
  try {
    store.me = await call("GET", "/me");
  } catch (err) {
    if (err instanceof ApiError && err.code === "onboarding_required") {
      mount(root, onboardingView(() => boot()).el);
      return;
    }
    if (err instanceof ApiError && err.status === 401) return needToken(expired ? "expired" : "unauthorized");
    if (err instanceof ApiError && err.status === 423) return needToken("locked");
    message(
      "Boxless is not answering",
      err.message,
      h("button", { class: "primary", onclick: () => boot() }, "Try again"),
    );
    return;
  }
  onUnauthorized((reason) => needToken(reason)); // a session ended or a node locked later
  await startApp();
}

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("sw.js").catch((err) => console.warn("no service worker", err));
}
boot();
