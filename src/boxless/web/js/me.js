// The Me tab (picture, name, fingerprint, contact link and QR code, node status) and
// the Discover tab (features still to come).

import { ApiError, call, imageUrl } from "./api.js";
import { avatar, guarded, h, imageSrc, mount, pictureForUpload, toast } from "./dom.js";
import { sessionCard } from "./lock.js";
import { store } from "./store.js";
import { favouritesLink } from "./favourites.js";
import { devicesLink } from "./devices.js";
import { backupCard } from "./backup.js";
import { walletLink } from "./wallet.js";
import { autoDownloadCard } from "./autodownload.js";

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
      detailsCard(),
      favouritesLink(),
      walletLink(),
      devicesLink(),
      backupCard(),
      autoDownloadCard(),
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

const COVER_BYTES = 12 * 1024; // what a profile message carries besides the picture

/** A Moments cover ready to upload: 8:3, at most 720 px wide, a JPEG of at most 12 KiB. */
async function coverForUpload(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (_) {
    throw new Error("That file is not a picture this browser can read: choose a PNG or JPEG");
  }
  const w0 = Math.min(bitmap.width, (bitmap.height * 8) / 3);
  const h0 = (w0 * 3) / 8;
  for (let w = Math.min(720, Math.round(w0)); w >= 160; w = Math.floor(w * 0.8)) {
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = Math.round((w * 3) / 8);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, (bitmap.width - w0) / 2, (bitmap.height - h0) / 2, w0, h0, 0, 0, canvas.width, canvas.height);
    for (const quality of [0.7, 0.5, 0.35]) {
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
      if (blob && blob.size <= COVER_BYTES) {
        return await new Promise((resolve, reject) => {
          const reader = new FileReader();
          reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ""));
          reader.onerror = () => reject(reader.error);
          reader.readAsDataURL(blob);
        });
      }
    }
  }
  throw new Error("That picture could not be made small enough: try another one");
}

/** Status line, region and Moments cover: shared with contacts (GET/PUT /me/profile, PUT /me/cover). */
function detailsCard() {
  const status = h("input", { id: "my-status", type: "text", maxlength: 100, placeholder: "What's up?", autocomplete: "off" });
  const region = h("input", { id: "my-region", type: "text", maxlength: 64, placeholder: "City, country", autocomplete: "off" });
  const cover = h("div", { class: "my-cover-box" });
  const file = h("input", { id: "my-cover-file", type: "file", accept: "image/*", class: "visually-hidden" });
  function show(p) {
    status.value = p.status || "";
    region.value = p.region || "";
    mount(
      cover,
      p.cover ? h("img", { class: "my-cover", src: imageSrc(p.cover), alt: "My Moments cover" }) : null,
      h("label", { for: "my-cover-file", class: "file-label" }, p.cover ? "Change cover photo" : "Add a Moments cover photo"),
      p.cover ? h("button", { type: "button", class: "link-button", onclick: () => setCover("") }, "Remove cover") : null,
    );
  }
  async function setCover(image) {
    const p = await guarded(() => call("PUT", "/me/cover", { image }));
    if (p) {
      toast(image ? "Cover saved; your contacts will see it" : "Cover removed");
      show(p);
    }
  }
  file.addEventListener("change", async () => {
    const chosen = file.files && file.files[0];
    file.value = "";
    if (!chosen) return;
    try {
      await setCover(await coverForUpload(chosen));
    } catch (err) {
      if (err instanceof ApiError) throw err;
      toast(err.message, "error");
    }
  });
  const form = h(
    "form",
    { class: "card my-details", "aria-labelledby": "details-title" },
    h("h2", { id: "details-title" }, "Profile"),
    h("label", { for: "my-status" }, "Status (your contacts see it)"),
    status,
    h("label", { for: "my-region" }, "Region"),
    region,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary", id: "my-details-save" }, "Save profile")),
    file,
    cover,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const p = await guarded(() => call("PUT", "/me/profile", { status: status.value, region: region.value }));
    if (p) {
      toast("Profile saved; your contacts will see it");
      show(p);
    }
  });
  call("GET", "/me/profile")
    .then(show)
    .catch((err) => {
      if (!(err instanceof ApiError)) throw err;
    });
  return form;
}

export function discoverView() {
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
        live("#/miniapps", "Mini apps", "Signed web apps that run in a sandbox"),
        live("#/new-group", "Groups", "Group chats of a thousand and more: start one"),
        live("#/broadcasts", "Broadcast lists", "One message to many contacts, each privately"),
        live("#/wallet", "Wallet", "Balances, receive, private receiving; red envelopes and transfers from any chat"),
      ),
    ),
  );
  return { el, update() {} };
}
