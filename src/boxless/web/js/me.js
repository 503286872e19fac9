// The Me tab (picture, name, fingerprint, contact link and QR code, node status) and
// the Discover tab (features still to come).

import { ApiError, call, imageUrl } from "./api.js";
import { avatar, h, icon, mount, pictureForUpload, toast } from "./dom.js";
import { sessionCard } from "./lock.js";
import { store } from "./store.js";
import { favouritesLink } from "./favourites.js";

export function meView() {
  const qr = h("img", { class: "qr", alt: "My contact QR code", width: 240, height: 240 });
  const link = h("textarea", { id: "my-link", rows: 3, readonly: true, spellcheck: "false" });
  const status = h("dl", { class: "status" });
  const profile = h("div", { class: "profile" });
  let qrLoaded = false;
  let qrLink = "";
  let refetches = 0; // bounded: a long link is shown until our card is on the network
  let refetch = null;

  const copy = h(
    "button",
    {
      type: "button",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(link.value);
          toast("Link copied");
        } catch (_) {
          link.select();
          toast("Select and copy the link");
        }
      },
    },
    "Copy link",
  );

  const el = h(
    "div",
    { class: "tab-view" },
    h("header", { class: "topbar" }, h("h1", {}, "Me")),
    h(
      "div",
      { class: "scroll" },
      h("section", { class: "card" }, profile),
      favouritesLink(),
      h(
        "section",
        { class: "card", "aria-labelledby": "share-title" },
        h("h2", { id: "share-title" }, "Share your contact"),
        h(
          "p",
          { class: "hint" },
          "Anyone with this link or QR code can send you a contact request. ",
          "A phone camera reads the code from this screen; your keys are fetched from the network.",
        ),
        h("div", { class: "qr-box" }, qr),
        h("label", { for: "my-link" }, "My contact link"),
        link,
        h("div", { class: "buttons" }, copy),
      ),
      h(
        "section",
        { class: "card", "aria-labelledby": "wallet-title" },
        h("h2", { id: "wallet-title" }, "Wallet"),
        h("p", { class: "soon" }, "Coming soon"),
      ),
      h("section", { class: "card", "aria-labelledby": "node-title" }, h("h2", { id: "node-title" }, "My node"), status),
      sessionCard(),
    ),
  );

  async function loadStatus() {
    try {
      const s = await call("GET", "/status");
      const rows = [
        ["Mode", s.mode],
        ["Connected", s.connected ? "yes" : "no"],
        ["Peers", s.peers],
      ];
      if (s.service_peer) rows.push(["Service peer", s.service_peer]);
      mount(status, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      mount(status, h("dd", {}, err.message));
    }
  }

  function nameForm(current) {
    const input = h("input", {
      id: "my-name-input", type: "text", value: current, maxlength: 64, autocomplete: "nickname",
      "aria-label": "Display name",
    });
    const form = h(
      "form",
      {
        class: "inline-form",
        onsubmit: async (ev) => {
          ev.preventDefault();
          try {
            store.me = await call("PUT", "/me", { name: input.value.trim() });
            toast("Name saved; your contacts will see it");
            update();
          } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            toast(err.message, "error");
          }
        },
      },
      h("label", { for: "my-name-input" }, "Display name (shown to your contacts)"),
      input,
      h("button", { type: "submit", class: "primary" }, "Save name"),
    );
    return form;
  }

  async function setPicture(image, done) {
    try {
      store.me = await call("PUT", "/me/avatar", { image });
      toast(done);
      update();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(err.message, "error");
    }
  }

  function pictureControls(me) {
    const file = h("input", {
      id: "my-picture",
      type: "file",
      accept: "image/*",
      class: "visually-hidden",
      onchange: async (ev) => {
        const chosen = ev.target.files && ev.target.files[0];
        ev.target.value = "";
        if (!chosen) return;
        let image;
        try {
          image = await pictureForUpload(chosen);
        } catch (err) {
          return toast(err.message, "error");
        }
        await setPicture(image, "Picture saved; your contacts will see it");
      },
    });
    return h(
      "div",
      { class: "picture-controls" },
      file,
      h("label", { for: "my-picture", class: "file-label" }, me.avatar ? "Change picture" : "Add a picture"),
      me.avatar
        ? h(
            "button",
            { type: "button", class: "link-button", onclick: () => setPicture("", "Picture removed") },
            "Remove picture",
          )
        : null,
    );
  }

  let shownProfile = "";
  function update() {
    const me = store.me;
    if (!me) return;
    const shown = JSON.stringify([me.name, me.avatar, me.fingerprint]);
    if (shown !== shownProfile) {  // re-render only on change: keep the name being typed
      shownProfile = shown;
      mount(
        profile,
        h("div", { class: "my-picture" }, avatar(me.name, me.identity_key, "large", me.avatar), pictureControls(me)),
        h(
          "div",
          { class: "profile-main" },
          h("h2", { class: "my-name" }, me.name),
          h("p", { class: "fingerprint", "aria-label": `Fingerprint ${me.fingerprint}` }, me.fingerprint),
          nameForm(me.name),
        ),
      );
    }
    if (link.value !== me.link) link.value = me.link;
    if (me.link.length > 120 && refetches < 20 && !refetch) {
      refetches += 1;
      refetch = setTimeout(async () => {
        refetch = null;
        try {
          store.me = await call("GET", "/me");
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
        }
        update();
      }, 3000);
    }
    if (qrLink !== me.link) {
      qrLink = me.link;
      qrLoaded = false;
    }
    if (!qrLoaded) {
      qrLoaded = true;
      imageUrl("/me/qr.png")
        .then((url) => {
          qr.src = url;
        })
        .catch(() => {
          qrLoaded = false;
        });
      loadStatus();
    }
  }
  return { el, update };
}

export function discoverView() {
  const item = (name, text) =>
    h(
      "li",
      { class: "row disabled", "aria-disabled": "true" },
      h("span", { class: "row-main" }, h("span", { class: "row-name" }, name), h("span", { class: "row-preview" }, text)),
      h("span", { class: "soon" }, "Coming soon"),
    );
  const live = (href, name, text) =>
    h(
      "li",
      {},
      h(
        "a",
        { class: "row", href },
        h("span", { class: "row-main" }, h("span", { class: "row-name" }, name), h("span", { class: "row-preview" }, text)),
      ),
    );
  const el = h(
    "div",
    { class: "tab-view" },
    h("header", { class: "topbar" }, h("h1", {}, "Discover")),
    h(
      "div",
      { class: "scroll" },
      h(
        "ul",
        { class: "rows", "aria-label": "Discover" },
        live("#/moments", "Moments", "Posts from your contacts, end-to-end encrypted"),
        live("#/nearby", "People Nearby", "Meet people within a few kilometres (opt-in, no exact location)"),
        item("Mini apps", "Signed web apps that run in a sandbox"),
        live("#/new-group", "Groups", "Group chats of a thousand and more: start one"),
        live("#/broadcasts", "Broadcast lists", "One message to many contacts, each privately"),
        item("Red envelopes", "Send money with a message"),
      ),
      h("p", { class: "hint centered-text" }, icon("discover", 18), " These arrive in coming releases."),
    ),
  );
  return { el, update() {} };
}
