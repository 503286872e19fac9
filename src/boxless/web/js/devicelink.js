// First run, "Link to an existing account" (docs/devices.md): choose a passphrase,
// then this device shows its QR code / link and a short code; on a device that has
// the account: Me → Devices → scan or paste it, compare the code, confirm. This page
// follows the transfer and calls done() once the account is here.

import { ApiError, call } from "./api.js";
import { h, mount } from "./dom.js";

const POLL_MS = 1000;

/** The form of the "link" onboarding step; `back()` returns to the welcome screen. */
export function linkDeviceForm(back, done) {
  const pass1 = h("input", { id: "link-passphrase", type: "password", autocomplete: "new-password", minlength: 8 });
  const pass2 = h("input", { id: "link-passphrase2", type: "password", autocomplete: "new-password" });
  const name = h("input", { id: "link-device-name", type: "text", maxlength: 64, placeholder: "e.g. Laptop" });
  const error = h("p", { class: "error", role: "alert" });
  const go = h("button", { class: "primary", type: "submit" }, "Show the QR code");
  const box = h("div", { class: "link-device" });
  const form = h(
    "form",
    {},
    h("p", { class: "hint" }, "This device gets your account from one that has it: contacts, groups and the last 30 days of messages, end-to-end encrypted."),
    h("label", { for: "link-passphrase" }, "Passphrase for this device"), pass1,
    h("label", { for: "link-passphrase2" }, "Repeat the passphrase"), pass2,
    h("label", { for: "link-device-name" }, "This device's name"), name,
    error,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: back }, "Back"), go),
  );
  let timer = null;
  async function poll() {
    let s;
    try {
      s = await call("GET", "/onboarding/link");
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      // the full API is up once the account exists: onboarding is over
      if (err.status === 404 || err.status === 401) {
        done();
        return;
      }
      s = { state: "waiting" };
    }
    const status = box.querySelector(".link-status");
    if (s.state === "linked") {
      if (status) status.textContent = `Linked to ${s.name}'s account.`;
      done();
      return;
    }
    if (s.state === "failed") {
      if (status) status.textContent = s.error;
      return;
    }
    if (status && s.state === "receiving") status.textContent = `Receiving your account… ${s.done} of ${s.total}`;
    timer = setTimeout(poll, POLL_MS);
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    if (pass1.value !== pass2.value) {
      error.textContent = "The two passphrases differ.";
      return;
    }
    go.disabled = true;
    let offer;
    try {
      offer = await call("POST", "/onboarding/link", { passphrase: pass1.value, name: name.value || null });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      error.textContent = err.message;
      go.disabled = false;
      return;
    }
    clearTimeout(timer);
    mount(
      box,
      h("img", { class: "link-qr", id: "link-qr", src: offer.qr, alt: "This device's link as a QR code" }),
      h("p", {}, "On your other device: Me → Devices → scan this code (or paste the link), and check it shows ", h("strong", { id: "link-code", class: "link-code" }, offer.code), "."),
      h("textarea", { class: "link-text", id: "link-text", rows: 3, readonly: true }, offer.link),
      h("p", { class: "hint link-status", "aria-live": "polite" }, "Waiting for your other device…"),
    );
    form.replaceWith(box);
    poll();
  });
  return form;
}
