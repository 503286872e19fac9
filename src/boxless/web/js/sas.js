// Emoji verification (SAS): a dialog that shows the 7 emoji both people compare,
// and the prompt the other side gets when someone asks them to.
//
// The node runs the flow (/api/v1/contacts/<key>/sas); every change arrives as a
// "verification" event carrying the whole flow ({state, emoji, decimals, reason,
// by, they_confirmed}), so the dialog renders straight from it.

import { ApiError, call } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { contact, refreshSoon } from "./store.js";

const REASONS = {
  user: "stopped",
  mismatch: "the emoji did not match, or a check failed: someone may be in the middle",
  timeout: "it took too long",
  unexpected: "a message came out of order",
  replaced: "a new comparison replaced it",
};
const RUNNING = new Set(["requested", "waiting", "compare", "confirmed"]);
// A flow only moves forward: an answer that arrives after a newer event is stale.
const RANK = { loading: 0, none: 1, requested: 2, waiting: 3, compare: 4, confirmed: 5, verified: 6, cancelled: 6 };

let open = null; // {key, dialog, render}
const prompts = new Map(); // contact key -> prompt element

function nameOf(key) {
  const c = contact(key);
  return c ? c.name : "Your contact";
}

async function act(key, path, method = "POST") {
  try {
    return await call(method, `/contacts/${key}/sas${path}`);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    toast(err.message, "error");
    return null;
  }
}

/** Open the dialog for contact `key`; `start` begins a new comparison, `accept` takes theirs. */
export async function openSas(key, { start = false, accept = false } = {}) {
  dismissPrompt(key);
  if (!open || open.key !== key) {
    if (open) open.dialog.close();
    open = buildDialog(key);
  }
  open.render({ state: "loading" });
  const flow = start ? await act(key, "") : accept ? await act(key, "/accept") : await act(key, "", "GET");
  if (flow && open && open.key === key) open.render(flow);
}

function buildDialog(key) {
  const name = nameOf(key);
  const title = h("h2", { id: "sas-title" }, `Compare emoji with ${name}`);
  const status = h("p", { class: "sas-status", role: "status", "aria-live": "polite" });
  const body = h("div", { class: "sas-body" });
  const buttons = h("div", { class: "buttons" });
  const dialog = h("dialog", { class: "sas-dialog", "aria-labelledby": "sas-title" }, title, status, body, buttons);
  let flow = { state: "loading" };
  const close = () => dialog.close();
  dialog.addEventListener("close", () => {
    if (RUNNING.has(flow.state)) act(key, "/cancel");
    dialog.remove();
    if (open && open.dialog === dialog) open = null;
  });

  const button = (label, onclick, cls = "") => h("button", { type: "button", class: cls, onclick }, label);
  const emojiList = (f) =>
    h(
      "ol",
      { class: "sas-emoji", "aria-label": "Emoji to compare, in order" },
      f.emoji.map((e) => h("li", {}, h("span", { class: "sas-glyph", "aria-hidden": "true" }, e.emoji), h("span", { class: "sas-name" }, e.name))),
    );
  const numbers = (f) =>
    h("p", { class: "sas-decimals" }, "Or compare these numbers: ", h("span", {}, f.decimals.map((n) => String(n).padStart(4, "0")).join(" ")));

  function render(next) {
    if (flow.flow && next.flow === flow.flow && RANK[next.state] < RANK[flow.state]) return;
    flow = next;
    dialog.dataset.state = flow.state;
    const them = nameOf(key);
    mount(body);
    mount(buttons);
    switch (flow.state) {
      case "loading":
        status.textContent = "…";
        break;
      case "none":
        status.textContent = `No comparison with ${them} is running.`;
        mount(buttons, button("Start", () => openSas(key, { start: true }), "primary"), button("Close", close));
        break;
      case "requested":
        status.textContent = `${them} wants to verify: compare emoji together, in person or on a call.`;
        mount(buttons, button("Compare emoji", () => openSas(key, { accept: true }), "primary"), button("Not now", close));
        break;
      case "waiting":
        status.textContent = `Waiting for ${them}…`;
        mount(buttons, button("Cancel", close));
        break;
      case "compare":
        status.textContent = flow.they_confirmed
          ? `${them} says they match. Do they appear in the same order on your screen?`
          : `Do the same emoji appear in the same order on ${them}'s screen?`;
        mount(body, emojiList(flow), numbers(flow));
        mount(
          buttons,
          button("They match", async () => {
            const f = await act(key, "/confirm");
            if (f && open && open.key === key) render(f);
          }, "primary"),
          button("They don't match", async () => {
            const f = await act(key, "/mismatch");
            if (f && open && open.key === key) render(f);
          }, "danger"),
        );
        break;
      case "confirmed":
        status.textContent = `Waiting for ${them} to confirm…`;
        mount(body, emojiList(flow));
        mount(buttons, button("Cancel", close));
        break;
      case "verified":
        status.textContent = `✔ ${them} is verified. You will be warned if their keys ever change.`;
        mount(buttons, button("Done", close, "primary"));
        refreshSoon();
        break;
      case "cancelled": {
        const who = flow.by === "them" ? them : "You";
        status.textContent = `Not verified. ${who} stopped the comparison: ${REASONS[flow.reason] || flow.reason}.`;
        mount(buttons, button("Try again", () => openSas(key, { start: true })), button("Close", close, "primary"));
        break;
      }
      default:
        status.textContent = flow.state;
    }
  }

  document.body.append(dialog);
  dialog.showModal();
  return { key, dialog, render };
}

function dismissPrompt(key) {
  const el = prompts.get(key);
  if (el) el.remove();
  prompts.delete(key);
}

/** Someone asks to compare emoji: a prompt that stays until answered (or the flow ends). */
function showPrompt(key) {
  dismissPrompt(key);
  const name = nameOf(key);
  const el = h(
    "div",
    { class: "sas-prompt", role: "alertdialog", "aria-label": `${name} wants to verify` },
    h("p", {}, `${name} wants to verify — compare emoji`),
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "button", class: "primary", onclick: () => openSas(key, { accept: true }) }, "Compare emoji"),
      h("button", { type: "button", onclick: () => { dismissPrompt(key); act(key, "/cancel"); } }, "Not now"),
    ),
  );
  prompts.set(key, el);
  document.body.append(el);
}

/** A "verification" event from the node. */
export function onVerification(ev) {
  if (open && open.key === ev.contact) {
    open.render(ev);
    return;
  }
  if (ev.state === "requested") showPrompt(ev.contact);
  else if (!RUNNING.has(ev.state)) {
    dismissPrompt(ev.contact);
    if (ev.state === "verified") refreshSoon();
  }
}

/** The events socket (re)opened: show the prompts of requests that arrived while no
 * page listened (a request's event reaches only the pages open at that moment). */
export async function resumeVerifications() {
  let flows;
  try {
    flows = await call("GET", "/verifications");
  } catch (err) {
    if (err instanceof ApiError) return;
    throw err;
  }
  for (const flow of flows) if (flow.state === "requested" && !prompts.has(flow.contact)) onVerification(flow);
  // An open dialog moves to where its flow is now (they confirmed, or it ended, meanwhile).
  if (open) {
    const key = open.key;
    let flow = null;
    try {
      flow = await call("GET", `/contacts/${key}/sas`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
    }
    if (flow && flow.state !== "none" && open && open.key === key) open.render(flow);
  }
}
