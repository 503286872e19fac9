// Linked devices (docs/devices.md): #/devices lists this account's devices (name,
// platform, linked at, last seen), renames and revokes them, and links a new one:
// paste or scan the link the new device shows, compare its short code, confirm.
//
// For other views: devicesLink() (the Me tab's row) and onDevicesEvent(ev).

import { call } from "./api.js";
import { guarded, h, icon, mount, shortTime, toast } from "./dom.js";
import { cameraAvailable, scanQr } from "./scan.js";

let current = null; // the open pane's reload(), for events

function stylesheet() {
  if (document.getElementById("devices-css")) return;
  document.head.append(h("link", { rel: "stylesheet", href: "css/devices.css", id: "devices-css" }));
}

/** The Me tab's row that opens #/devices. */
export function devicesLink() {
  stylesheet();
  return h(
    "a",
    { class: "row devices-link", href: "#/devices", id: "open-devices" },
    h("span", { class: "devices-icon", "aria-hidden": "true" }, icon("contacts", 22)),
    h("span", { class: "row-main" }, h("span", { class: "row-name" }, "Devices")),
  );
}

/** A "devices" event (a roster changed, a transfer's progress): refresh the pane. */
export function onDevicesEvent(ev) {
  if (current) current(ev);
}

/** The events socket (re)opened: the open pane re-reads what it missed (a roster change). */
export function resumeDevices() {
  if (current) current(null);
}

function deviceRow(d, reload) {
  const name = h("span", { class: "row-name device-name" }, d.name);
  const meta = h(
    "span",
    { class: "device-meta" },
    `${d.platform} · linked ${shortTime(d.linked_at * 1000)}`,
    d.this_device ? " · this device" : d.last_seen_ms ? ` · seen ${shortTime(d.last_seen_ms)}` : "",
  );
  const rename = h("button", { type: "button", class: "link-button device-rename" }, "Rename");
  const actions = h("span", { class: "device-actions" }, rename);
  rename.addEventListener("click", () => {
    const input = h("input", { class: "device-name-input", value: d.name, maxlength: 64, "aria-label": "Device name" });
    const save = h("button", { type: "button", class: "button device-save" }, "Save");
    mount(actions, input, save);
    input.focus();
    save.addEventListener("click", async () => {
      const done = await guarded(() => call("PUT", `/devices/${d.device}`, { name: input.value }));
      if (done) reload();
    });
  });
  if (!d.this_device) {
    const revoke = h("button", { type: "button", class: "link-button danger device-revoke" }, "Revoke");
    revoke.addEventListener("click", async () => {
      if (!window.confirm(`Revoke ${d.name}? It stops receiving messages and wipes its keys.`)) return;
      const done = await guarded(() => call("DELETE", `/devices/${d.device}`));
      if (done) {
        toast(`${d.name} was revoked`);
        reload();
      }
    });
    actions.append(revoke);
  }
  return h(
    "li",
    { class: "device-item", dataset: { device: d.device } },
    h("div", { class: "row" }, h("div", { class: "row-main" }, name, meta, actions)),
  );
}

/** The boxless:// link in a picture of a QR code (vendored jsQR), or null. */
async function qrFromImage(blob) {
  await import("../vendor/jsqr/jsQR.js"); // UMD: sets self.jsQR
  const bitmap = await createImageBitmap(blob);
  const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const found = self.jsQR(img.data, img.width, img.height, { inversionAttempts: "attemptBoth" });
  return found && found.data.startsWith("boxless://d/") ? found.data : null;
}

function linkForm(reload) {
  const input = h("textarea", {
    id: "device-link-input",
    class: "device-link-input",
    rows: 3,
    placeholder: "boxless://d/… (shown by the new device)",
    "aria-label": "The new device's link",
  });
  const status = h("p", { class: "hint device-link-status", "aria-live": "polite" });
  const check = h("button", { type: "button", class: "button", id: "device-link-check" }, "Continue");
  const buttons = h("div", { class: "device-link-buttons" }, check);
  const file = h("input", { type: "file", accept: "image/*", id: "device-link-image", class: "visually-hidden", "aria-label": "A picture of the QR code" });
  const fromImage = h("button", { type: "button", class: "button secondary", id: "device-link-from-image" }, "QR code from a picture");
  fromImage.addEventListener("click", () => file.click());
  file.addEventListener("change", async () => {
    const picked = file.files && file.files[0];
    file.value = "";
    if (!picked) return;
    const link = await qrFromImage(picked);
    if (!link) {
      toast("No Boxless device link found in that picture", "error");
      return;
    }
    input.value = link;
    check.click();
  });
  buttons.append(fromImage, file);
  if (cameraAvailable()) {
    const scan = h("button", { type: "button", class: "button secondary" }, "Scan QR code");
    scan.addEventListener("click", () =>
      scanQr(
        (link) => {
          input.value = link;
          check.click();
        },
        (message) => toast(message, "error"),
      ),
    );
    buttons.append(scan);
  }
  check.addEventListener("click", async () => {
    const link = input.value.trim();
    if (!link) return;
    const p = await guarded(() => call("POST", "/devices/link/preview", { link }));
    if (!p) return;
    const confirm = h("button", { type: "button", class: "button", id: "device-link-confirm" }, "Same code: link it");
    mount(
      status,
      h("span", { class: "device-preview" }, `${p.name} (${p.platform}) shows `),
      h("strong", { class: "device-code", id: "device-link-code" }, p.code),
      h("span", {}, ". Does the new device show the same code? "),
      confirm,
    );
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      mount(status, "Handing the account over…");
      const d = await guarded(() => call("POST", "/devices/link", { link }));
      if (d) {
        mount(status, `${d.name} is linked.`);
        input.value = "";
        reload();
      } else {
        mount(status, "");
      }
    });
  });
  return h(
    "section",
    { class: "device-link-form", "aria-label": "Link a device" },
    h("h3", {}, "Link a device"),
    h("p", { class: "hint" }, "On the new device run boxless link (or choose Link to an existing account), then paste or scan the link it shows."),
    input,
    buttons,
    status,
  );
}

export function devicesView() {
  stylesheet();
  const list = h("ul", { class: "rows device-list", "aria-label": "Devices" });
  const el = h(
    "div",
    { class: "conversation panel devices-pane" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/me", "aria-label": "Back" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, "Devices")),
    ),
    h("div", { class: "scroll" }, list, linkForm(load)),
  );
  async function load() {
    const got = await guarded(() => call("GET", "/devices"));
    if (!got) return;
    mount(list, got.devices.map((d) => deviceRow(d, load)));
  }
  current = (ev) => {
    if (ev && ev.what === "sending") return;
    load();
  };
  load();
  return {
    el,
    update() {},
    destroy() {
      current = null;
    },
  };
}
