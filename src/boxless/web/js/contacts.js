// The Contacts tab: add by link or QR image, requests to answer, everyone else
// (starred first, searchable by alias, name and tag, filtered by tag), and the
// contact card (#/contact/<key>: their profile, my alias, tags, note, phone-book
// fields and star, which stay on this device).
//
// Names: the API already names a contact by my alias where I gave one (everywhere:
// lists, chat headers, groups); displayName(c) is the one helper views use.
// For other views (Moments' contact page): contactProfile(key) → the card's JSON.

import { ApiError, call } from "./api.js";
import { avatar, guarded, h, icon, imageSrc, mount, toast } from "./dom.js";
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

/** What to call a contact: my alias if I gave one (the API's `name` is already it). */
export function displayName(c) {
  return (c && (c.alias || c.name)) || "?";
}

/** A contact's card (profile, cover, my alias/tags/notes) — Moments' contact page uses it. */
export function contactProfile(key) {
  return call("GET", `/contacts/${key}/profile`);
}

let notes = {}; // identity key -> {alias, tags, starred, ...} (GET /contacts/notes)

function contactRow(c) {
  const label = c.state in STATE_LABEL ? STATE_LABEL[c.state] : c.state;
  const n = notes[c.identity_key] || {};
  const main = [
    avatar(displayName(c), c.identity_key, "", c.avatar),
    h(
      "span",
      { class: "row-main" },
      h(
        "span",
        { class: "row-top" },
        h(
          "span",
          { class: "row-name" },
          n.starred ? h("span", { class: "star", title: "Starred" }, "★ ") : null,
          displayName(c),
          c.verified ? h("span", { class: "verified", title: "Verified" }, " ✔") : null,
        ),
        label ? h("span", { class: "state" }, label) : null,
      ),
      n.tags && n.tags.length
        ? h("span", { class: "contact-tags" }, n.tags.map((t) => h("span", { class: "tag" }, t)))
        : h("span", { class: "fingerprint" }, c.fingerprint),
    ),
  ];
  const info = h(
    "a",
    { class: "icon-button contact-info", href: `#/contact/${c.identity_key}`, "aria-label": `About ${displayName(c)}`, title: "Contact card" },
    icon("info", 20),
  );
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
    { class: "contact-item" },
    h("a", { class: "row", href: `#/chat/${c.identity_key}`, dataset: { key: c.identity_key } }, main),
    info,
  );
}

/** Does contact `c` match the search text (alias, their name, tags)? */
function matches(c, q) {
  if (!q) return true;
  const n = notes[c.identity_key] || {};
  const hay = [c.name, n.alias, ...(n.tags || [])].filter(Boolean).join("\n").toLocaleLowerCase();
  return q
    .toLocaleLowerCase()
    .split(/\s+/)
    .every((w) => hay.includes(w));
}

export function contactsView() {
  const requests = h("ul", { class: "rows", "aria-labelledby": "requests-title" });
  const requestsSection = h("section", { class: "section" }, h("h2", { id: "requests-title" }, "Requests"), requests);
  const others = h("ul", { class: "rows", "aria-labelledby": "contacts-title" });
  const search = h("input", {
    id: "contacts-search",
    type: "text",
    role: "searchbox",
    placeholder: "Search by name, alias or tag",
    "aria-label": "Search contacts",
    autocomplete: "off",
    maxlength: 100,
  });
  const tagBar = h("div", { class: "tag-filter", role: "toolbar", "aria-label": "Filter by tag" });
  let tag = ""; // "" all, "*" starred, else a tag
  search.addEventListener("input", () => draw());
  const el = h(
    "div",
    { class: "tab-view" },
    h("header", { class: "topbar" }, h("h1", {}, "Contacts")),
    h(
      "div",
      { class: "scroll" },
      addForm(),
      requestsSection,
      h(
        "section",
        { class: "section" },
        h("h2", { id: "contacts-title" }, "Contacts"),
        h("div", { class: "contacts-find" }, search, tagBar),
        others,
      ),
    ),
  );
  function chip(value, label) {
    return h(
      "button",
      { type: "button", class: `chip${tag === value ? " mine" : ""}`, "aria-pressed": String(tag === value), dataset: { tag: value }, onclick: () => { tag = tag === value ? "" : value; draw(); } },
      label,
    );
  }
  function draw() {
    const incoming = store.contacts.filter((c) => c.state === "request_received");
    requestsSection.hidden = incoming.length === 0;
    mount(requests, incoming.map(requestRow));
    const tags = [...new Set(Object.values(notes).flatMap((n) => n.tags || []))].sort((a, b) => a.localeCompare(b));
    const anyStar = Object.values(notes).some((n) => n.starred);
    if (tag && tag !== "*" && !tags.includes(tag)) tag = "";
    mount(tagBar, tags.length || anyStar ? [chip("", "All"), anyStar ? chip("*", "★ Starred") : null, tags.map((t) => chip(t, t))] : null);
    const q = search.value.trim();
    const star = (c) => ((notes[c.identity_key] || {}).starred ? 0 : 1);
    const rest = store.contacts
      .filter((c) => c.state !== "request_received")
      .filter((c) => !tag || (tag === "*" ? star(c) === 0 : ((notes[c.identity_key] || {}).tags || []).includes(tag)))
      .filter((c) => matches(c, q))
      .sort((a, b) => star(a) - star(b) || displayName(a).localeCompare(displayName(b)));
    const none = q || tag ? "No contact matches." : "No contacts yet.";
    mount(others, rest.length ? rest.map(contactRow) : h("li", { class: "empty" }, none));
  }
  let asked = 0;
  async function update() {
    draw();
    const mine = ++asked;
    try {
      const got = await call("GET", "/contacts/notes");
      if (mine !== asked) return;
      notes = got;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return; // an older node without notes: the list as it is
    }
    draw();
  }
  return { el, update };
}

// -- the contact card (#/contact/<key>) -------------------------------------------------

function field(id, label, value, attrs = {}) {
  const input = h(attrs.rows ? "textarea" : "input", { id, type: "text", value: value || "", autocomplete: "off", ...attrs });
  if (attrs.rows) input.value = value || "";
  return [h("label", { for: id }, label), input];
}

export function contactCardView(key) {
  const body = h("div", { class: "scroll contact-card-body" });
  const title = h("h2", { class: "conv-name" }, "Contact");
  const el = h(
    "div",
    { class: "conversation panel contact-card-pane" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/contacts", "aria-label": "Back" }, icon("back")),
      h("div", { class: "conv-title" }, title),
    ),
    body,
  );

  function render(c) {
    title.textContent = c.name;
    const [aliasLabel, alias] = field("card-alias", "Alias (only you see it; shown instead of their name)", c.alias, { maxlength: 64 });
    const [tagsLabel, tags] = field("card-tags", "Tags, separated by commas", (c.tags || []).join(", "), { maxlength: 400 });
    const [noteLabel, note] = field("card-note", "Note", c.note, { rows: 3, maxlength: 1000 });
    const [phoneLabel, phone] = field("card-phone", "Phone", c.phone, { maxlength: 100, inputmode: "tel" });
    const [emailLabel, email] = field("card-email", "Email", c.email, { maxlength: 100 });
    const [companyLabel, company] = field("card-company", "Company", c.company, { maxlength: 100 });
    const [birthdayLabel, birthday] = field("card-birthday", "Birthday", c.birthday, { maxlength: 100 });
    const starred = h("input", { id: "card-star", type: "checkbox", checked: !!c.starred });
    const form = h(
      "form",
      { class: "card contact-notes" },
      h("h2", {}, "My notes"),
      h("p", { class: "hint" }, "Kept on this device only: never sent to anyone."),
      aliasLabel, alias, tagsLabel, tags,
      h("label", { class: "check" }, starred, " Starred (listed first)"),
      noteLabel, note, phoneLabel, phone, emailLabel, email, companyLabel, company, birthdayLabel, birthday,
      h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", id: "card-save" }, "Save")),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const saved = await guarded(() =>
        call("PUT", `/contacts/${key}/notes`, {
          alias: alias.value,
          tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
          note: note.value,
          phone: phone.value,
          email: email.value,
          company: company.value,
          birthday: birthday.value,
          starred: starred.checked,
        }),
      );
      if (saved) {
        toast("Saved on this device");
        render(saved);
        refreshAll();
      }
    });
    mount(
      body,
      h(
        "section",
        { class: "profile-card", id: "profile-card" },
        c.cover ? h("img", { class: "profile-cover", src: imageSrc(c.cover), alt: "Moments cover" }) : h("div", { class: "profile-cover empty-cover" }),
        h(
          "div",
          { class: "profile-head" },
          avatar(c.name, c.identity_key, "large", c.avatar),
          h(
            "div",
            { class: "profile-names" },
            h("h3", { class: "profile-name" }, c.starred ? "★ " : "", c.name),
            c.alias ? h("p", { class: "profile-their-name" }, `Name: ${c.profile_name}`) : null,
            c.status ? h("p", { class: "profile-status" }, c.status) : null,
            c.region ? h("p", { class: "profile-region" }, `Region: ${c.region}`) : null,
            h("p", { class: "fingerprint" }, c.fingerprint),
          ),
        ),
        c.tags && c.tags.length ? h("p", { class: "contact-tags" }, c.tags.map((t) => h("span", { class: "tag" }, t))) : null,
        h(
          "div",
          { class: "buttons profile-actions" },
          h("a", { class: "button primary", href: `#/chat/${key}` }, "Send message"),
          h("a", { class: "button", href: `#/moments/${key}` }, "Moments"),
        ),
      ),
      form,
    );
    body.scrollTop = 0; // the card (updated) first, also after saving the form below it
  }

  contactProfile(key)
    .then(render)
    .catch((err) => {
      if (!(err instanceof ApiError)) throw err;
      mount(body, h("p", { class: "empty error", role: "alert" }, err.message));
    });
  return { el, update() {} };
}
