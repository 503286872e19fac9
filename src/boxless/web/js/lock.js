// The lock screen and the "This browser" card (log out, log out everywhere).
//
// The lock screen shows when this browser has no session (never opened from the
// link, logged out, unused for 30 days) or when the node was restarted without
// its passphrase ("locked"). The passphrase opens a session, and on a locked
// node opens the account too (Argon2: about a second). `done()` runs after.

import { ApiError, logout, unlock } from "./api.js";
import { h, mount, toast } from "./dom.js";

const TEXT = {
  locked: [
    "Boxless is locked",
    "Your node was restarted without your passphrase. Enter it to open your account.",
  ],
  unauthorized: [
    "Log in to Boxless",
    "Enter the passphrase of this account, or open the link that `boxless up` printed " +
      "(http://127.0.0.1:…/?token=…).",
  ],
  expired: [
    "Log in to Boxless again",
    "The link you opened belongs to an earlier run of `boxless up`. Enter your passphrase, " +
      "or open the link it printed this time.",
  ],
};

/** The lock screen for `reason` ("locked", "unauthorized" or "expired"). */
export function lockView(reason, done) {
  const [title, text] = TEXT[reason] || TEXT.unauthorized;
  const input = h("input", {
    id: "lock-passphrase",
    name: "passphrase",
    type: "password",
    autocomplete: "current-password",
    required: true,
    maxlength: 1024,
  });
  const error = h("p", { class: "error", role: "alert" });
  const button = h("button", { class: "primary", type: "submit" }, reason === "locked" ? "Unlock" : "Log in");
  const form = h(
    "form",
    { class: "lock-form", onsubmit: (ev) => submit(ev) },
    h("label", { for: "lock-passphrase" }, "Passphrase"),
    input,
    error,
    button,
  );

  async function submit(ev) {
    ev.preventDefault();
    if (!input.value) return;
    error.textContent = "";
    button.disabled = true;
    const label = button.textContent;
    button.textContent = reason === "locked" ? "Unlocking…" : "Logging in…";
    try {
      await unlock(input.value);
      input.value = "";
      done();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      error.textContent = err.message;
      input.select();
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  const el = h(
    "main",
    { class: "lock", dataset: { reason } },
    h(
      "div",
      { class: "lock-card" },
      h("img", { src: "icons/icon-192.png", alt: "", class: "logo", width: 64, height: 64 }),
      h("h1", {}, title),
      h("p", { class: "hint" }, text),
      form,
    ),
  );
  queueMicrotask(() => input.focus());
  return { el };
}

/** A card for the Me tab: how long this browser stays logged in, and the way out. */
export function sessionCard() {
  const error = h("p", { class: "error", role: "alert" });
  async function out(everywhere) {
    error.textContent = "";
    try {
      await logout(everywhere);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status !== 401) {
        error.textContent = err.message;
        return;
      }
    }
    toast(everywhere ? "Logged out on every browser" : "Logged out");
    location.replace(location.pathname); // boot again: the lock screen
  }
  const card = h(
    "section",
    { class: "card session-card", "aria-labelledby": "session-title" },
    h("h2", { id: "session-title" }, "This browser"),
    h(
      "p",
      { class: "hint" },
      "You stay logged in here, across tabs and restarts, until you log out or " +
        "leave it unused for 30 days.",
    ),
    error,
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "button", id: "logout", onclick: () => out(false) }, "Log out"),
      h("button", { type: "button", class: "danger", id: "logout-all", onclick: () => out(true) }, "Log out everywhere"),
    ),
  );
  return card;
}

/** Show the lock screen in `root` (for app.js). */
export function showLock(root, reason, done) {
  mount(root, lockView(reason, done).el);
}
