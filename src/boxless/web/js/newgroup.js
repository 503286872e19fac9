// Starting a group (name, description, members picked from accepted contacts)
// and joining one by its boxless://g/ link (preview: name and admin; then a
// request the admin's node answers; the chat list shows it as requested until
// we are let in).

import { ApiError, call } from "./api.js";
import { avatar, h, icon, mount, toast } from "./dom.js";
import { cameraAvailable, scanQr } from "./scan.js";
import { refreshGroups, store } from "./store.js";

const JOIN_LINK = "boxless.joinLink";

/** Open the join screen with `link` filled in (e.g. pasted where contacts are added). */
export function openJoin(link) {
  sessionStorage.setItem(JOIN_LINK, link);
  location.hash = "#/join-group";
}

export function isGroupLink(text) {
  return /^boxless:\/\/g\//i.test(text.trim());
}

function panel(titleText, ...children) {
  return h(
    "div",
    { class: "conversation panel form-panel" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/chats", "aria-label": "Back to chats" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, titleText)),
      h("span", { class: "icon-spacer", "aria-hidden": "true" }),
    ),
    h("div", { class: "scroll" }, ...children),
  );
}

/** Checkboxes of accepted contacts; `selected()` returns the ticked keys. */
export function contactPicker(id, max = Infinity) {
  const list = h("ul", { class: "rows pick-list", id, "aria-label": "Contacts" });
  const count = h("p", { class: "hint", "aria-live": "polite" });
  const ticked = new Set();
  let shown = null; // the contacts last rendered, so a refresh that changes none keeps the focus
  function update() {
    const accepted = store.contacts.filter((c) => c.state === "accepted").sort((a, b) => a.name.localeCompare(b.name));
    const key = JSON.stringify(accepted.map((c) => [c.identity_key, c.name]));
    if (key === shown) return;
    shown = key;
    count.textContent = `${ticked.size} chosen${Number.isFinite(max) ? ` (at most ${max})` : ""}`;
    if (!accepted.length) {
      return mount(list, h("li", { class: "empty" }, "No contacts yet: add some in Contacts first."));
    }
    mount(
      list,
      accepted.map((c) => {
        const boxId = `pick-${id}-${c.identity_key.slice(0, 16)}`;
        return h(
          "li",
          { class: "row pick-row" },
          h("input", {
            type: "checkbox",
            id: boxId,
            checked: ticked.has(c.identity_key),
            onchange: (ev) => {
              if (ev.target.checked && ticked.size >= max) {
                ev.target.checked = false;
                return toast(`At most ${max}`, "error");
              }
              if (ev.target.checked) ticked.add(c.identity_key);
              else ticked.delete(c.identity_key);
              count.textContent = `${ticked.size} chosen${Number.isFinite(max) ? ` (at most ${max})` : ""}`;
            },
          }),
          avatar(c.name, c.identity_key, "small", c.avatar),
          h("label", { for: boxId, class: "pick-label" }, c.name),
        );
      }),
    );
  }
  return { el: h("div", {}, count, list), update, selected: () => [...ticked], clear: () => ticked.clear() };
}

export function newGroupView() {
  const name = h("input", { id: "new-group-name", type: "text", maxlength: 64, required: true, placeholder: "Family, Project X, …" });
  const description = h("textarea", { id: "new-group-description", rows: 2, maxlength: 500 });
  const picker = contactPicker("new-group-members");
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create group");
  const form = h(
    "form",
    { class: "card", "aria-label": "New group" },
    h("label", { for: "new-group-name" }, "Group name"),
    name,
    h("label", { for: "new-group-description" }, "Description (optional)"),
    description,
    h("label", { for: "new-group-members" }, "Members"),
    picker.el,
    error,
    h("div", { class: "buttons" }, submit),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    if (!name.value.trim()) {
      error.textContent = "Give the group a name.";
      return name.focus();
    }
    submit.disabled = true;
    submit.textContent = "Creating…";
    try {
      const g = await call("POST", "/groups", { name: name.value.trim(), description: description.value.trim() });
      const failed = [];
      for (const key of picker.selected()) {
        try {
          await call("POST", `/groups/${g.id}/members`, { identity_key: key });
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          const c = store.contacts.find((x) => x.identity_key === key);
          failed.push(`${c ? c.name : key.slice(0, 8)}: ${err.message}`);
        }
      }
      await refreshGroups();
      if (failed.length) toast(`Not invited — ${failed.join("; ")}`, "error");
      else toast(`Group “${g.name}” created`);
      location.hash = `#/group/${g.id}`;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
      submit.textContent = "Create group";
    }
  });
  return { el: panel("New group", form), update: () => picker.update() };
}

export function joinGroupView() {
  const link = h("textarea", { id: "join-link", class: "link-field", rows: 2, placeholder: "boxless://g/…", spellcheck: "false", autocomplete: "off" });
  link.value = sessionStorage.getItem(JOIN_LINK) || "";
  sessionStorage.removeItem(JOIN_LINK);
  const result = h("div", { class: "join-result", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  let preview = null; // the preview JSON, or null
  let requested = null; // the join answer, or null

  async function doPreview(ev) {
    if (ev) ev.preventDefault();
    error.textContent = "";
    preview = null;
    requested = null;
    if (!isGroupLink(link.value)) {
      error.textContent = "Paste a group invite link: it starts with boxless://g/";
      render();
      return;
    }
    try {
      preview = await call("POST", "/groups/preview", { link: link.value.trim() });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      error.textContent = err.message;
    }
    render();
  }

  async function doJoin() {
    error.textContent = "";
    try {
      requested = await call("POST", "/groups/join", { link: link.value.trim() });
      await refreshGroups();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      error.textContent = err.message;
    }
    render();
  }

  function render() {
    if (!preview) return mount(result);
    const admitted = store.groups.find((g) => g.id === preview.group && g.member !== false);
    const admin = preview.admin_name || `${(preview.admin || "").slice(0, 8)}…`;
    let state;
    if (admitted) {
      state = h("p", { class: "join-state ok" }, "You are in. ", h("a", { href: `#/group/${admitted.id}`, class: "button primary" }, "Open the group"));
    } else if (requested) {
      state = h("p", { class: "join-state", dataset: { state: "requested" } }, `Requested: waiting for ${admin} to let you in.`);
    } else {
      state = h("div", { class: "buttons" }, h("button", { type: "button", class: "primary", onclick: doJoin }, "Join group"));
    }
    mount(
      result,
      h(
        "div",
        { class: "card join-preview" },
        h("h2", {}, preview.name),
        h("p", { class: "hint" }, `Invited by ${admin}`, preview.expires_at ? ` · link valid until ${new Date(preview.expires_at * 1000).toLocaleDateString()}` : ""),
        state,
      ),
    );
  }

  const form = h(
    "form",
    { class: "card", "aria-label": "Join a group", onsubmit: doPreview },
    h("label", { for: "join-link" }, "Group invite link"),
    link,
    h("p", { class: "hint" }, "An admin of the group shares it from the group's info."),
    error,
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "submit" }, "Show the group"),
      cameraAvailable()
        ? h(
            "button",
            {
              type: "button",
              onclick: () =>
                scanQr(
                  (text) => {
                    link.value = text;
                    doPreview();
                  },
                  (message) => {
                    error.textContent = message;
                  },
                ),
            },
            icon("qr", 20),
            " Scan with the camera",
          )
        : null,
    ),
  );
  if (link.value) doPreview();
  return { el: panel("Join a group", form, result), update: render };
}
