// The Wallet pane's "Private receiving" card (docs/redenvelopes.md, stealth): the
// stealth meta-address with copy and QR, the announcer to scan, "Scan for private
// payments" in steps with progress (block N of M, the last block remembered by the
// node), the payments found with their balances, and "Sweep" to the main address
// after a confirm step. Over /wallet/stealth (api/stealth.py).

import { ApiError, call, imageUrl } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { confirmDialog } from "./bridge.js";

export function stealthSection() {
  const meta = h("code", { class: "wallet-address stealth-meta", id: "stealth-meta" });
  const qr = h("img", { class: "qr", alt: "QR code of your stealth meta-address", width: 160, height: 160 });
  const announcer = h("input", { type: "text", class: "stealth-announcer", placeholder: "Announcer contract 0x…", "aria-label": "Announcer contract", maxlength: 42, autocomplete: "off", spellcheck: "false" });
  const progress = h("progress", { class: "stealth-progress", max: 1, value: 0, hidden: true });
  const status = h("p", { class: "hint stealth-status", role: "status" });
  const found = h("ul", { class: "wallet-history stealth-found", id: "stealth-found", "aria-label": "Private payments found" });
  const scanButton = h("button", { type: "button", class: "primary stealth-scan" }, "Scan for private payments");
  const sweepButton = h("button", { type: "button", class: "stealth-sweep", hidden: true }, "Sweep to my address");
  let info = null;
  let qrLoaded = false;

  async function load() {
    try {
      info = await call("GET", "/wallet/stealth");
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      status.textContent = err.message;
      return;
    }
    meta.textContent = info.meta_address;
    if (!qrLoaded) {
      qrLoaded = true;
      imageUrl("/wallet/stealth/qr.png").then((url) => (qr.src = url), () => {});
    }
    if (info.announcer && document.activeElement !== announcer) announcer.value = info.announcer;
    if (info.error) status.textContent = info.error;
    else if (info.configured) status.textContent = info.scanned_block >= 0 ? `Scanned up to block ${info.scanned_block}.` : "Not scanned yet.";
    else status.textContent = "Enter the announcer contract (ERC-5564) to scan.";
    const rows = info.found || [];
    mount(
      found,
      ...rows.map((f) =>
        h(
          "li",
          { dataset: { address: f.address } },
          h("span", { class: "wallet-tx-main" }, `${f.balance} ETH · ${f.address.slice(0, 8)}…${f.address.slice(-4)}`),
          h("span", { class: "wallet-tx-state" }, f.swept ? "Swept" : `Block ${f.block}`),
        ),
      ),
    );
    sweepButton.hidden = !rows.some((f) => !f.swept && f.balance_wei !== "0");
  }

  async function scan() {
    scanButton.disabled = true;
    try {
      const a = announcer.value.trim();
      if (a && a.toLowerCase() !== String(info && info.announcer || "").toLowerCase()) await call("PUT", "/wallet/stealth", { announcer: a });
      progress.hidden = false;
      let total = 0;
      for (let step = 0; step < 10000; step++) {
        const r = await call("POST", "/wallet/stealth/scan");
        total += r.new;
        progress.max = Math.max(1, r.head);
        progress.value = r.scanned_block;
        status.textContent = `Scanning: block ${r.scanned_block} of ${r.head}…`;
        if (r.done) break;
      }
      toast(total ? `${total} private payment${total === 1 ? "" : "s"} found` : "No new private payments");
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(err.message, "error");
    } finally {
      progress.hidden = true;
      scanButton.disabled = false;
      await load();
    }
  }

  async function sweep() {
    const rows = (info.found || []).filter((f) => !f.swept && f.balance_wei !== "0");
    const ok = await confirmDialog(
      "Sweep private payments?",
      h("p", {}, `Move the ETH of ${rows.length} stealth address${rows.length === 1 ? "" : "es"} to your main address ${info.address}. Each pays its own network fee.`),
      "Sweep",
      "Cancel",
    );
    if (!ok) return;
    sweepButton.disabled = true;
    try {
      const r = await call("POST", "/wallet/stealth/sweep", { confirmed: true });
      toast(`${r.swept.length} swept to your address${r.skipped.length ? `, ${r.skipped.length} skipped` : ""}`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(err.message, "error");
    } finally {
      sweepButton.disabled = false;
      await load();
    }
  }

  scanButton.addEventListener("click", scan);
  sweepButton.addEventListener("click", sweep);
  const copy = h("button", {
    type: "button",
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(meta.textContent);
        toast("Stealth address copied");
      } catch (_) {
        toast("Select and copy the address");
      }
    },
  }, "Copy");
  load();
  return h(
    "section",
    { class: "card wallet-stealth", id: "wallet-stealth", "aria-labelledby": "wallet-stealth-title" },
    h("h2", { id: "wallet-stealth-title" }, "Private receiving"),
    h("p", { class: "hint" }, "Payers send to a fresh address derived from this stealth address: nobody can link the payments to you."),
    h("div", { class: "qr-box" }, qr),
    meta,
    h("div", { class: "buttons" }, copy),
    announcer,
    h("div", { class: "buttons" }, scanButton, sweepButton),
    progress,
    status,
    found,
  );
}
