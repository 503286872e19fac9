// The Contacts tab: add by link or QR image, requests to answer, everyone else.

import { ApiError, call } from "./api.js";
import { avatar, h, icon, mount, toast } from "./dom.js";
import { isGroupLink, openJoin } from "./newgroup.js";
import { cameraAvailable, scanQr } from "./scan.js";
import { refreshAll, store } from "./store.js";

const STATE_LABEL = {
  accepted: "",
  request_sent: "Request sent",
  request_received: "Wants to add you",
  declined: "Declined",
  blocked: "Blocked",
};

function addForm() {
  const link = h("textarea", {
    id: "add-link",
    class: "link-field",
    rows: 2,
    placeholder: "boxless://c/…",
    spellcheck: "false",
    autocomplete: "off",
  });
  const intro = h("input", { id: "add-intro", type: "text", maxlength: 2000, placeholder: "Hi, it's …" });
  const file = h("input", { id: "add-qr", type: "file", accept: "image/png,image/jpeg,image/gif,image/webp" });
  const found = h("p", { class: "hint", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { class: "primary", type: "submit" }, "Send contact request");

  file.addEventListener("change", async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    error.textContent = "";
    found.textContent = "Reading the QR code…";
    try {
      const res = await call("POST", "/contacts/decode-qr", undefined, {
        raw: chosen,
        type: chosen.type || "application/octet-stream",
      });
      if (isGroupLink(res.link)) {
        found.textContent = "";
        openJoin(res.link); // a group's code: its join screen
        return;
      }
      link.value = res.link;
      found.textContent = res.name ? `Found ${res.name} (fingerprint ${res.fingerprint}).` : "";
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      found.textContent = "";
      error.textContent = err.message;
    } finally {
      file.value = "";
    }
  });

  // A scanned group link opens its join screen; a contact link fills the field
  // and is looked up at once (its name shows, or a clear error).
  async function scanned(text) {
    if (isGroupLink(text)) return openJoin(text);
    link.value = text;
    error.textContent = "";
    found.textContent = "Looking the link up…";
    try {
      const res = await call("POST", "/contacts/preview", { link: text });
      found.textContent = `Found ${res.name} (fingerprint ${res.fingerprint}).`;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      found.textContent = "";
      error.textContent = err.message;
    }
  }
  const camera = cameraAvailable()
    ? h(
        "button",
        {
          type: "button",
          id: "scan-camera",
          onclick: () => scanQr(scanned, (message) => { error.textContent = message; }),
        },
        icon("qr", 20),
        " Scan with the camera",
      )
    : null;

  const form = h(
    "form",
    { class: "card add-contact", "aria-labelledby": "add-title" },
    h("h2", { id: "add-title" }, "Add a contact"),
    h("label", { for: "add-link" }, "Their contact link"),
    link,
    h(
      "div",
      { class: "scan-row" },
      camera,
      h("label", { for: "add-qr", class: "file-label" }, icon("qr", 20), " Or choose a picture of their QR code"),
    ),
    file,
    found,
    h("label", { for: "add-intro" }, "A few words so they know who you are (optional)"),
    intro,
    error,
    h("p", { class: "soon" }, "A group invite link (boxless://g/…) works here too."),
    h(
      "div",
      { class: "buttons" },
      submit,
      h("a", { href: "#/me", class: "button" }, "My QR code"),
      h("a", { href: "#/join-group", class: "button" }, "Join a group"),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    if (!link.value.trim()) {
      error.textContent = "Paste their boxless:// link, or choose a picture of their QR code.";
      link.focus();
      return;
    }
    if (isGroupLink(link.value)) {
      // A group invite, not a person: preview and join it on its own screen.
      openJoin(link.value.trim());
      link.value = "";
      return;
    }
    submit.disabled = true;
    submit.textContent = "Sending…";
    try {
      const known = new Map(store.contacts.map((x) => [x.identity_key, x.state]));
      const c = await call("POST", "/contacts", { link: link.value.trim(), intro: intro.value.trim() });
      link.value = "";
      intro.value = "";
      found.textContent = "";
      const already = known.get(c.identity_key) === "accepted" && c.state === "accepted";
      toast(
        already
          ? `${c.name} is already a contact`
          : c.state === "accepted"
            ? `${c.name} is now a contact`
            : `Request sent to ${c.name}`,
      );
      await refreshAll();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
      submit.textContent = "Send contact request";
    }
  });
  return form;
}

async function respond(c, action) {
  try {
    await call("POST", `/contacts/${c.identity_key}/${action}`);
    if (action === "accept") toast(`${c.name} is now a contact`);
    await refreshAll();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    toast(err.message, "error");
  }
}

function requestRow(c) {
  return h(
    "li",
    { class: "row request-row", dataset: { key: c.identity_key } },
    avatar(c.name, c.identity_key, "", c.avatar),
    h(
      "div",
      { class: "row-main" },
      h("span", { class: "row-name" }, c.name),
      c.intro ? h("span", { class: "intro" }, `“${c.intro}”`) : null,
      h("span", { class: "fingerprint" }, c.fingerprint),
      h(
        "div",
        { class: "buttons" },
        h("button", { class: "primary", onclick: () => respond(c, "accept"), "aria-label": `Accept ${c.name}` }, "Accept"),
        h("button", { onclick: () => respond(c, "decline"), "aria-label": `Decline ${c.name}` }, "Decline"),
        h("button", { class: "danger", onclick: () => respond(c, "block"), "aria-label": `Block ${c.name}` }, "Block"),
      ),
    ),
  );
}

function contactRow(c) {
  const label = c.state in STATE_LABEL ? STATE_LABEL[c.state] : c.state;
  const main = [
    avatar(c.name, c.identity_key, "", c.avatar),
    h(
      "span",
      { class: "row-main" },
      h(
        "span",
        { class: "row-top" },
        h("span", { class: "row-name" }, c.name, c.verified ? h("span", { class: "verified", title: "Verified" }, " ✔") : null),
        label ? h("span", { class: "state" }, label) : null,
      ),
      h("span", { class: "fingerprint" }, c.fingerprint),
    ),
  ];
  if (c.state === "blocked") {
    return h(
      "li",
      { class: "row", dataset: { key: c.identity_key } },
      main,
      h("button", { onclick: () => respond(c, "unblock"), "aria-label": `Unblock ${c.name}` }, "Unblock"),
    );
  }
  return h(
    "li",
    {},
    h("a", { class: "row", href: `#/chat/${c.identity_key}`, dataset: { key: c.identity_key } }, main),
  );
}

export function contactsView() {
  const requests = h("ul", { class: "rows", "aria-labelledby": "requests-title" });
  const requestsSection = h("section", { class: "section" }, h("h2", { id: "requests-title" }, "Requests"), requests);
  const others = h("ul", { class: "rows", "aria-labelledby": "contacts-title" });
  const el = h(
    "div",
    { class: "tab-view" },
    h("header", { class: "topbar" }, h("h1", {}, "Contacts")),
    h(
      "div",
      { class: "scroll" },
      addForm(),
      requestsSection,
      h("section", { class: "section" }, h("h2", { id: "contacts-title" }, "Contacts"), others),
    ),
  );
  function update() {
    const incoming = store.contacts.filter((c) => c.state === "request_received");
    requestsSection.hidden = incoming.length === 0;
    mount(requests, incoming.map(requestRow));
    const rest = store.contacts
      .filter((c) => c.state !== "request_received")
      .sort((a, b) => a.name.localeCompare(b.name));
    mount(others, rest.length ? rest.map(contactRow) : h("li", { class: "empty" }, "No contacts yet."));
  }
  return { el, update };
}
