// A group's info panel: members and their roles; for admins, invite (from
// accepted contacts), remove, promote/demote, name, description, picture,
// announcements-only and history sharing, and an invite link with its QR
// code; for everyone, mute and leave.
//
// Every change goes to the API and the panel re-reads the group from the
// store, which the `group` event refreshes; API errors show as toasts.

import { ApiError, call } from "./api.js";
import { GROUP_PICTURE_BYTES, avatar, groupAvatar, guarded, h, icon, mount, pictureForUpload, toast } from "./dom.js";
import { memberName } from "./group.js";
import { group, refreshGroups, store } from "./store.js";

/** A member's picture: ours, or a contact's (members we don't know show initials). */
function pictureOf(key) {
  if (store.me && key === store.me.identity_key) return store.me.avatar;
  return store.contacts.find((c) => c.identity_key === key)?.avatar ?? null;
}

export function groupInfoView(gid) {
  const body = h("div", { class: "scroll info-scroll" });
  const el = h(
    "div",
    { class: "conversation panel group-info" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: `#/group/${gid}`, "aria-label": "Back to the group" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, "Group info")),
      h("span", { class: "icon-spacer", "aria-hidden": "true" }),
    ),
    body,
  );
  let confirmRemove = null; // member key whose "Remove" awaits a second click
  let confirmLeave = false;
  let link = null; // {link, expires_at, qr_png}
  let drafts = null; // {name, description} being edited (kept across re-renders)
  let shownFor = ""; // JSON of the state last rendered, to keep focus while nothing changed

  async function change(fn, done) {
    await guarded(async () => {
      await fn();
      await refreshGroups();
      if (done) toast(done);
    });
  }

  const patch = (fields, done) => change(() => call("PATCH", `/groups/${gid}`, fields), done);

  function settingsCard(g, admin) {
    if (!admin) {
      return h(
        "section",
        { class: "card group-head" },
        groupAvatar(g, "large"),
        h("div", {}, h("h2", { class: "my-name" }, g.name), g.description ? h("p", { class: "description" }, g.description) : null),
      );
    }
    drafts = drafts || { name: g.name, description: g.description || "" };
    const name = h("input", { id: "group-name", type: "text", maxlength: 64, value: drafts.name, oninput: (ev) => (drafts.name = ev.target.value) });
    const description = h("textarea", { id: "group-description", rows: 2, maxlength: 500, oninput: (ev) => (drafts.description = ev.target.value) });
    description.value = drafts.description;
    const picture = h("input", {
      id: "group-picture",
      type: "file",
      accept: "image/*",
      onchange: async (ev) => {
        const file = ev.target.files && ev.target.files[0];
        ev.target.value = "";
        if (!file) return;
        let image;
        try {
          // cropped and shrunk for you; sent as an encrypted attachment (api/group_avatars.py)
          image = await pictureForUpload(file, 512, GROUP_PICTURE_BYTES);
        } catch (err) {
          return toast(err.message, "error");
        }
        toast("Uploading the picture…");
        await change(() => call("PUT", `/groups/${gid}/avatar`, { image }), "Picture changed");
      },
    });
    return h(
      "section",
      { class: "card group-head" },
      groupAvatar(g, "large"),
      h(
        "form",
        {
          class: "grow",
          onsubmit: (ev) => {
            ev.preventDefault();
            const fields = {};
            if (drafts.name.trim() && drafts.name.trim() !== g.name) fields.name = drafts.name.trim();
            if (drafts.description.trim() !== (g.description || "")) fields.description = drafts.description.trim();
            if (!Object.keys(fields).length) return toast("Nothing changed");
            drafts = null;
            patch(fields, "Saved: the members see the change");
          },
        },
        h("label", { for: "group-name" }, "Group name"),
        name,
        h("label", { for: "group-description" }, "Description"),
        description,
        h("label", { for: "group-picture" }, "Group picture (any picture: it is resized for you)"),
        picture,
        h(
          "div",
          { class: "buttons" },
          h("button", { type: "submit", class: "primary" }, "Save"),
          g.avatar || g.avatar_url ? h("button", { type: "button", onclick: () => change(() => call("PUT", `/groups/${gid}/avatar`, { image: "" }), "Picture removed") }, "Remove picture") : null,
        ),
      ),
    );
  }

  function toggleRow(id, labelText, hint, checked, onchange) {
    return h(
      "div",
      { class: "switch-row" },
      h("input", { id, type: "checkbox", role: "switch", checked, onchange: (ev) => onchange(ev.target.checked) }),
      h("label", { for: id }, labelText, hint ? h("span", { class: "hint" }, hint) : null),
    );
  }

  function adminCard(g) {
    return h(
      "section",
      { class: "card", "aria-labelledby": "admin-title" },
      h("h2", { id: "admin-title" }, "Admin settings"),
      toggleRow("announcements-only", "Only admins can send messages", null, Boolean(g.announcements_only), (on) =>
        patch({ announcements_only: on }, on ? "Only admins can write now" : "Everyone can write now"),
      ),
      toggleRow("history-sharing", "New members see earlier messages", "Shares the group's earlier keys with people who join", Boolean(g.history_sharing), (on) =>
        patch({ history_sharing: on }),
      ),
      linkBox(),
    );
  }

  function linkBox() {
    const make = h(
      "button",
      {
        type: "button",
        onclick: () =>
          guarded(async () => {
            link = await call("POST", `/groups/${gid}/link`, {});
            render(true);
          }),
      },
      icon("qr", 20),
      link ? "New invite link" : "Invite link",
    );
    if (!link) return h("div", { class: "buttons" }, make);
    const text = h("textarea", { id: "group-link", class: "link-field", rows: 2, readonly: true, spellcheck: "false" });
    text.value = link.link;
    const expires = link.expires_at ? new Date(link.expires_at * 1000).toLocaleString() : "";
    return h(
      "div",
      { class: "invite-link" },
      h("div", { class: "qr-box" }, link.qr_png ? h("img", { class: "qr", src: link.qr_png, alt: "QR code of the invite link" }) : null),
      h("label", { for: "group-link" }, "Invite link"),
      text,
      h("p", { class: "hint" }, `Anyone with it can ask to join; you let them in. ${expires ? `Valid until ${expires}.` : ""}`),
      h(
        "div",
        { class: "buttons" },
        h(
          "button",
          {
            type: "button",
            class: "primary",
            onclick: async () => {
              try {
                await navigator.clipboard.writeText(link.link);
                toast("Link copied");
              } catch (_) {
                text.select();
                toast("Select and copy the link");
              }
            },
          },
          "Copy link",
        ),
        make,
      ),
    );
  }

  function memberRow(g, m, admin) {
    const me = store.me && m.identity_key === store.me.identity_key;
    const name = me ? `${store.me.name} (you)` : m.name || memberName(g, m.identity_key);
    const buttons = [];
    // The creator cannot be removed or demoted (the group's rules refuse it).
    if (admin && !me && m.identity_key !== g.creator) {
      const isAdmin = m.role === "admin";
      buttons.push(
        h(
          "button",
          {
            type: "button",
            "aria-label": `${isAdmin ? "Remove admin" : "Make admin"}: ${name}`,
            onclick: () =>
              change(() => call("PUT", `/groups/${gid}/members/${m.identity_key}/role`, { role: isAdmin ? "member" : "admin" })),
          },
          isAdmin ? "Remove admin" : "Make admin",
        ),
        confirmRemove === m.identity_key
          ? h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `Remove ${name} from the group`,
                onclick: () => {
                  confirmRemove = null;
                  change(() => call("DELETE", `/groups/${gid}/members/${m.identity_key}`), `${name} was removed`);
                },
              },
              "Remove from group",
            )
          : h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `Remove ${name}`,
                onclick: () => {
                  confirmRemove = m.identity_key;
                  render(true);
                },
              },
              "Remove",
            ),
      );
    }
    return h(
      "li",
      { class: "row member-row", dataset: { key: m.identity_key } },
      avatar(name, m.identity_key, "small", pictureOf(m.identity_key)),
      h(
        "span",
        { class: "row-main" },
        h(
          "span",
          { class: "row-top" },
          h("span", { class: "row-name" }, name),
          m.role === "admin" ? h("span", { class: "role" }, g.creator === m.identity_key ? "Creator, admin" : "Admin") : null,
        ),
        buttons.length ? h("span", { class: "member-actions" }, buttons) : null,
      ),
    );
  }

  function inviteCard(g) {
    const inGroup = new Set((g.members || []).map((m) => m.identity_key));
    const candidates = store.contacts.filter((c) => c.state === "accepted" && !inGroup.has(c.identity_key));
    return h(
      "section",
      { class: "section", "aria-labelledby": "invite-title" },
      h("h2", { id: "invite-title" }, "Invite contacts"),
      h(
        "ul",
        { class: "rows" },
        candidates.length
          ? candidates.map((c) =>
              h(
                "li",
                { class: "row member-row", dataset: { key: c.identity_key } },
                avatar(c.name, c.identity_key, "small", c.avatar),
                h("span", { class: "row-main" }, h("span", { class: "row-name" }, c.name)),
                h(
                  "button",
                  {
                    type: "button",
                    "aria-label": `Invite ${c.name}`,
                    onclick: () => change(() => call("POST", `/groups/${gid}/members`, { identity_key: c.identity_key }), `${c.name} was invited`),
                  },
                  "Invite",
                ),
              ),
            )
          : h("li", { class: "empty" }, "All your contacts are in this group."),
      ),
    );
  }

  function everyoneCard(g) {
    return h(
      "section",
      { class: "card" },
      toggleRow("group-muted", "Mute notifications", "Unread counts stay; mentions still show", Boolean(g.muted), (on) =>
        change(() => call("PUT", `/groups/${gid}/mute`, { muted: on })),
      ),
      g.member === false
        ? h("p", { class: "hint" }, "You are no longer a member of this group.")
        : h(
            "div",
            { class: "buttons" },
            confirmLeave
              ? h(
                  "button",
                  {
                    type: "button",
                    class: "danger",
                    onclick: () => {
                      confirmLeave = false;
                      change(() => call("POST", `/groups/${gid}/leave`), "You left the group");
                    },
                  },
                  "Leave: I am sure",
                )
              : h(
                  "button",
                  {
                    type: "button",
                    class: "danger",
                    onclick: () => {
                      confirmLeave = true;
                      render(true);
                    },
                  },
                  "Leave group",
                ),
          ),
    );
  }

  function render(force = false) {
    const g = group(gid);
    const key = JSON.stringify([g, store.contacts.map((c) => [c.identity_key, c.state])]);
    // Re-rendering the form would lose the caret; skip it while nothing changed.
    if (!force && key === shownFor) return;
    shownFor = key;
    if (!g) return mount(body, h("p", { class: "empty" }, "This group is not on this device."));
    const admin = g.my_role === "admin" && g.member !== false;
    const members = [...(g.members || [])].sort((a, b) => Number(b.role === "admin") - Number(a.role === "admin") || (a.name || "").localeCompare(b.name || ""));
    const focusedId = document.activeElement && body.contains(document.activeElement) ? document.activeElement.id : null;
    mount(
      body,
      settingsCard(g, admin),
      h(
        "section",
        { class: "section", "aria-labelledby": "members-title" },
        h("h2", { id: "members-title" }, `${members.length} member${members.length === 1 ? "" : "s"}`),
        h("ul", { class: "rows", "aria-label": "Members" }, members.map((m) => memberRow(g, m, admin))),
      ),
      admin ? inviteCard(g) : null,
      admin ? adminCard(g) : null,
      everyoneCard(g),
    );
    if (focusedId) document.getElementById(focusedId)?.focus();
  }

  render(true);
  return {
    el,
    update: () => render(),
    onGroup(ev) {
      if (ev.group === gid) refreshGroups().catch((err) => console.warn(err instanceof ApiError ? err.message : err));
    },
  };
}
