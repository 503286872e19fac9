// The mini-app bridge (docs/miniapps.md): the only way out of an app's sandboxed
// frame. Messages are accepted only from that frame's window, rate-limited (a
// flood suspends the app), relayed to POST /miniapps/{id}/bridge, which checks
// the permission; the first use of a permission, every payment and every share
// are confirmed in a Boxless dialog (never the app's). Answers go back to the
// frame; the bot's responses and pushes arrive as app_message events. A response or
// push that came while the events socket was away is read from the node when it
// opens again (resumeAppReplies; GET /miniapps/{id}/replies keeps them a minute).

import { ApiError, call } from "./api.js";
import { h } from "./dom.js";
import { store } from "./store.js";

export const BRIDGE_VERSION = 1;
const BURST = 40; // as the server's limiter (miniapps/limits.py)
const RATE = 10; // calls per second after the burst
const MAX_PENDING = 32; // backend requests waiting for the bot
const BACKEND_TIMEOUT_MS = 30000;
const LABELS = {
  "user.name": "see your name",
  "user.avatar": "see your profile picture",
  backend: "talk to its bot (end-to-end encrypted)",
  pay: "ask you for payments",
  share: "share cards to your chats",
  storage: "store data on this device",
};

const open = new Map(); // app id -> bridge (one open page per app)

/** A Boxless confirm dialog; resolves true/false. `body`: nodes. */
export function confirmDialog(title, body, yes = "Allow", no = "Don't allow") {
  return new Promise((resolve) => {
    let answer = false;
    const dialog = h(
      "dialog",
      { class: "miniapp-dialog", "aria-label": title },
      h(
        "form",
        { method: "dialog" },
        h("h2", {}, title),
        body,
        h(
          "div",
          { class: "buttons" },
          h("button", { type: "button", class: "miniapp-no", onclick: () => dialog.close() }, no),
          h(
            "button",
            {
              type: "button",
              class: "primary miniapp-yes",
              onclick: () => {
                answer = true;
                dialog.close();
              },
            },
            yes,
          ),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

function pickChat(app, card) {
  const chats = [
    ...store.contacts.filter((c) => c.state === "accepted").map((c) => ({ chat: `contact:${c.identity_key}`, name: c.name })),
    ...store.groups.filter((g) => g.member !== false).map((g) => ({ chat: `group:${g.id}`, name: g.name })),
  ];
  const select = h("select", { class: "miniapp-chat", "aria-label": "Chat" }, chats.map((c) => h("option", { value: c.chat }, c.name)));
  return confirmDialog(
    `Share from ${app.name}`,
    [h("p", { class: "miniapp-card-preview" }, h("strong", {}, card.title), h("br"), card.text), h("label", {}, "To ", select)],
    "Share",
    "Cancel",
  ).then((ok) => (ok && chats.length ? select.value : null));
}

function cardOf(params) {
  const title = params && typeof params.title === "string" ? params.title.slice(0, 100) : "";
  const text = params && typeof params.text === "string" ? params.text.slice(0, 1000) : "";
  if (!title && !text) throw new ApiError(422, "invalid_params", "a card has a title or a text");
  return { title, text };
}

/** A shared card is a small `<app id>.boxcard` file (JSON: app, name, title, text) with
 * the card as its caption: the chat renders it as the app's card with "Open"
 * (js/miniapps.js appShareCard), an older client as a file and a text. */
async function sendCard(app, chat, card) {
  const caption = `${app.name}: ${card.title}${card.title && card.text ? "\n" : ""}${card.text}`;
  const body = JSON.stringify({ boxcard: 1, app: app.id, name: app.name, title: card.title, text: card.text });
  const [kind, id] = chat.split(":");
  const q = new URLSearchParams({ name: `${app.id}.boxcard`, mime: "application/json", caption });
  const path = kind === "group" ? `/groups/${id}/attachments` : `/contacts/${id}/attachments`;
  await call("POST", `${path}?${q}`, undefined, { raw: new TextEncoder().encode(body), type: "application/octet-stream" });
}

/**
 * Serve the bridge for `app` (the GET /miniapps entry) running in `frame`.
 * `onSuspend(reason)`: the app flooded the bridge and was stopped.
 */
export function openBridge(app, frame, onSuspend) {
  let tokens = BURST;
  let at = performance.now();
  let suspended = false;
  const waiting = new Map(); // request id hex -> {id, timer}
  const early = new Map(); // request id hex -> payload: answered before the POST returned
  const seenPushes = new Set(); // push ids handed to the app, or kept before it opened
  const seen = (id) => {
    seenPushes.add(id);
    if (seenPushes.size > 256) seenPushes.delete(seenPushes.values().next().value);
  };
  const kept = () => call("GET", `/miniapps/${app.id}/replies`);
  // what the node kept before this page opened the app is not news for it
  const pushBase = kept().then((r) => r.pushes.forEach((p) => seen(p.request_id)), () => {});

  const post = (msg) => {
    if (frame.contentWindow) frame.contentWindow.postMessage({ boxless: BRIDGE_VERSION, ...msg }, "*");
  };
  const fail = (id, code, message) => post({ id, error: { code, message } });

  function suspend(reason) {
    if (suspended) return;
    suspended = true;
    window.removeEventListener("message", onMessage);
    for (const w of waiting.values()) clearTimeout(w.timer);
    waiting.clear();
    call("POST", `/miniapps/${app.id}/suspend`).catch(() => {});
    onSuspend(reason);
  }

  function allow() {
    const now = performance.now();
    tokens = Math.min(BURST, tokens + ((now - at) / 1000) * RATE);
    at = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  async function relay(method, params, confirmed = false) {
    return (await call("POST", `/miniapps/${app.id}/bridge`, { method, params, confirmed })).result;
  }

  async function withPermission(method, params, confirmed = false) {
    try {
      return await relay(method, params, confirmed);
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== "permission_needed") throw err;
      const perm = err.permission || permissionOf(err.message);
      const ok = await confirmDialog(`Allow ${app.name} to ${LABELS[perm] || perm}?`, h("p", { class: "hint" }, "You can change this later in the app's settings (Discover → Mini apps)."));
      await call("PUT", `/miniapps/${app.id}/permissions/${perm}`, { granted: ok });
      return await relay(method, params, confirmed);
    }
  }

  async function handle(id, method, params) {
    switch (method) {
      case "getUser":
        return await withPermission("getUser", null);
      case "storage.get":
      case "storage.set":
        return await withPermission(method, params);
      case "backend.request": {
        if (waiting.size >= MAX_PENDING) throw new ApiError(429, "busy", "too many requests wait for the bot");
        const res = await withPermission(method, params);
        const rid = res.request_id;
        if (early.has(rid)) {
          const payload = early.get(rid);
          early.delete(rid);
          return payload;
        }
        // the last look at the node before giving up: an answer whose event was lost
        const timer = setTimeout(() => resume([rid]).finally(() => {
          if (waiting.delete(rid)) fail(id, "timeout", "the app's bot did not answer in 30 s");
        }), BACKEND_TIMEOUT_MS);
        waiting.set(rid, { id, timer });
        return undefined; // answered when the bot's response arrives
      }
      case "pay": {
        const str = (name, max, dflt) => (params && typeof params[name] === "string" ? params[name].slice(0, max) : dflt);
        const amount = params && typeof params.amount === "string" ? params.amount.slice(0, 40) : String(params && params.amount);
        const token = str("token", 12, "ETH");
        const memo = str("memo", 200, "");
        const to = str("to", 42, "");
        const ref = str("ref", 32, "");
        await withPermission("getUser", null); // rate and presence check only
        const ok = await confirmDialog(
          `Pay ${amount} ${token} to ${app.name}?`,
          h("p", {}, memo, h("br"), h("span", { class: "hint" }, `Seller: ${to || "(none given)"}`), h("br"), h("span", { class: "hint" }, "Held in escrow until you release it.")),
          "Pay", "Cancel");
        if (!ok) throw new ApiError(409, "cancelled", "the user cancelled the payment");
        return await withPermission("pay", { amount, token, memo, to, ref }, true);
      }
      case "release": {
        // the buyer pays the seller what an escrow deal holds: Boxless reads the deal
        // from the chain (only this user's deal to this app's bot) and shows it
        const deal = params && Number.isSafeInteger(params.deal) && params.deal >= 0 ? params.deal : -1;
        const d = await withPermission("deal", { deal });
        if (d.state !== "open") throw new ApiError(409, "not_open", `escrow deal ${d.deal} is ${d.state}: nothing to release`);
        const ok = await confirmDialog(
          `Release ${d.amount} ${d.token} to ${app.name}?`,
          h("p", {}, `Escrow deal ${d.deal}${d.ref ? ` (order ${d.ref})` : ""}`, h("br"), h("span", { class: "hint" }, `Seller: ${d.seller}`), h("br"), h("span", { class: "hint" }, "The seller is paid. This cannot be undone.")),
          "Release", "Cancel");
        if (!ok) throw new ApiError(409, "cancelled", "the user cancelled the release");
        return await withPermission("release", { deal }, true);
      }
      case "shareToChat": {
        const card = cardOf(params);
        const chat = await pickChat(app, card);
        if (!chat) throw new ApiError(409, "cancelled", "the user cancelled the share");
        await withPermission("shareToChat", card, true);
        await sendCard(app, chat, card);
        return { shared: true };
      }
      default:
        throw new ApiError(404, "unknown_method", `no bridge method ${String(method).slice(0, 40)} (bridge v${BRIDGE_VERSION})`);
    }
  }

  function onMessage(ev) {
    if (ev.source !== frame.contentWindow || suspended) return; // only this app's frame
    const m = ev.data;
    if (!m || typeof m !== "object" || m.boxless !== BRIDGE_VERSION || typeof m.id !== "number") return;
    if (!allow()) {
      suspend("it called Boxless too often");
      return;
    }
    handle(m.id, m.method, m.params).then(
      (result) => {
        if (result !== undefined) post({ id: m.id, result });
      },
      (err) => {
        if (!(err instanceof ApiError)) {
          fail(m.id, "error", "the bridge failed");
          throw err;
        }
        if (err.code === "suspended") suspend(err.message);
        else fail(m.id, err.code, err.message);
      },
    );
  }

  /** Hand the bot's answer to the request that waits for it: once (false if none waits). */
  function answer(rid, payload) {
    const w = waiting.get(rid);
    if (!w || suspended) return false;
    clearTimeout(w.timer);
    waiting.delete(rid);
    post({ id: w.id, result: payload });
    return true;
  }

  function push(id, payload) {
    if (seenPushes.has(id)) return;
    seen(id);
    post({ event: "backend.message", data: payload });
  }

  /** Read what the node kept: the answers for the requests that still wait (`only`:
   * these request ids) and, on a socket open, the pushes the app has not had: their
   * events came while the socket was away (or were lost). */
  async function resume(only = null) {
    const ids = only || [...waiting.keys()];
    if (suspended || (only && !ids.some((rid) => waiting.has(rid)))) return;
    await pushBase;
    let r;
    try {
      r = await kept();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return; // the node is away too: the next socket open reads again
    }
    for (const a of r.replies) if (ids.includes(a.request_id)) answer(a.request_id, a.payload);
    if (!only && !suspended) for (const p of r.pushes) push(p.request_id, p.payload);
  }

  window.addEventListener("message", onMessage);
  const bridge = {
    deliver(ev) {
      if (suspended) return;
      if (ev.kind === "response") {
        if (answer(ev.request_id, ev.payload)) return;
        // maybe the answer to a request whose POST has not returned yet (a fast bot)
        if (early.size >= MAX_PENDING) early.delete(early.keys().next().value);
        early.set(ev.request_id, ev.payload);
      } else if (ev.kind === "push") {
        push(ev.request_id, ev.payload);
      }
    },
    resume,
    close() {
      window.removeEventListener("message", onMessage);
      for (const w of waiting.values()) clearTimeout(w.timer);
      waiting.clear();
      if (open.get(app.id) === bridge) open.delete(app.id);
    },
    get suspended() {
      return suspended;
    },
  };
  open.get(app.id)?.close();
  open.set(app.id, bridge);
  return bridge;
}

function permissionOf(message) {
  const m = /for (\S+)$/.exec(message || "");
  return m ? m[1] : "";
}

/** An app_message event: a response or push for an open app page. */
export function deliverAppMessage(ev) {
  const bridge = open.get(ev.app_id);
  if (bridge) bridge.deliver(ev);
}

/** The events socket opened (again): open apps read the bot answers they missed. */
export function resumeAppReplies() {
  for (const bridge of open.values()) bridge.resume().catch((err) => console.warn("app replies", err));
}
