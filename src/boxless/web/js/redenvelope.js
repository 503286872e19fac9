// Red envelopes in chats: the red card inside a message bubble (open it, see who
// opened which and the best luck), and the dialog that sends one.
//
// Amounts shown are the chain's (the node reads the contract's Claimed logs),
// never what a message says. Nothing is sent without the confirm step: it moves
// money into the envelope contract.

import { ApiError, call } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { contact, group, store } from "./store.js";

const PREFIX = "🧧 Red envelope";
const cache = new Map(); // chat -> Promise<Map(message_id -> envelope)>

/** Whether a message's text is a red envelope card's preview. */
export function isRedEnvelope(text) {
  return typeof text === "string" && text.startsWith(PREFIX);
}

/** Base units (decimal text) in a currency of `decimals`, trimmed: "0.0125". */
export function units(value, decimals = 18) {
  const v = BigInt(value);
  const one = 10n ** BigInt(decimals);
  const whole = v / one;
  const frac = decimals ? (v % one).toString().padStart(decimals, "0").replace(/0+$/, "").slice(0, 6) : "";
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** Wei (decimal text) as ETH, trimmed: "0.0125". */
export function eth(wei) {
  return units(wei, 18);
}

/** An amount of envelope `e`'s currency (ETH or the wallet's token, named by the
 * node from the wallet's configuration, never by the card): "1.5 BXD". */
function money(e, value) {
  return `${units(value, e.decimals ?? 18)} ${e.symbol || "ETH"}`;
}

function envelopesOf(chat, fresh = false) {
  if (fresh || !cache.has(chat)) {
    const loading = call("GET", `/redenvelopes?chat=${encodeURIComponent(chat)}`)
      .then((res) => new Map(res.envelopes.map((e) => [e.message_id, e])))
      .catch((err) => {
        cache.delete(chat);
        console.warn("red envelopes", err);
        return new Map();
      });
    cache.set(chat, loading);
  }
  return cache.get(chat);
}

/** The red card of message `m` in `chat`, or null when it is not an envelope. */
export function redCard(chat, m) {
  if (!m || m.deleted || !isRedEnvelope(m.text)) return null;
  const slot = h("div", { class: "redcard", dataset: { mid: m.id, chat } });
  envelopesOf(chat).then((all) => fill(slot, chat, all.get(m.id)));
  return slot;
}

/** A "redenvelope" event: reload the chat's envelopes, redraw the cards on screen. */
export function onRedEnvelopeEvent(ev) {
  envelopesOf(ev.chat, true).then((all) => {
    for (const slot of document.querySelectorAll(".redcard")) {
      if (slot.dataset.chat === ev.chat) fill(slot, ev.chat, all.get(slot.dataset.mid));
    }
  });
}

/** The events socket (re)opened: envelopes opened or refunded while no page listened
 * are read again, and the cards on screen redrawn. */
export function resumeRedEnvelopes() {
  cache.clear();
  const chats = new Set([...document.querySelectorAll(".redcard")].map((slot) => slot.dataset.chat));
  for (const chat of chats) onRedEnvelopeEvent({ type: "redenvelope", chat });
}

function nameOf(chat, key) {
  if (!key) return "someone";
  if (store.me && key === store.me.identity_key) return "You";
  if (chat.startsWith("group:")) {
    const g = group(chat.slice(6));
    const m = g && (g.members || []).find((x) => x.identity_key === key);
    if (m && m.name) return m.name;
  }
  const c = contact(key);
  return (c && c.name) || `${key.slice(0, 8)}…`;
}

function statusText(e) {
  if (e.status === "refused") return e.reason;
  if (e.my_amount) return `You got ${money(e, e.my_amount)}`;
  if (e.status === "empty") return "All opened: this envelope is empty";
  if (e.status === "expired") return "Expired: what was left went back to the sender";
  if (e.pending_relays.includes(store.me && store.me.identity_key)) return "Opening…";
  return `${e.claimed} of ${e.shares} opened`;
}

function fill(slot, chat, e) {
  if (!e) {
    mount(slot);
    return;
  }
  slot.dataset.status = e.my_amount ? "opened" : e.status;
  const canOpen = !e.outgoing && !e.my_amount && e.status === "open" &&
    !e.pending_relays.includes(store.me && store.me.identity_key);
  const list = e.opened.length
    ? h(
        "ul",
        { class: "redcard-opened", "aria-label": "Who opened which" },
        e.opened.map((p) =>
          h(
            "li",
            { dataset: { best: e.best_luck === p.address ? "yes" : "no" } },
            h("span", {}, p.member ? nameOf(chat, p.member) : `${p.address.slice(0, 8)}…`),
            h("span", { class: "redcard-amount" }, money(e, p.amount)),
            e.best_luck === p.address ? h("span", { class: "redcard-best" }, "Best luck") : null,
          ),
        ),
      )
    : null;
  mount(
    slot,
    h("div", { class: "redcard-head" },
      h("span", { class: "redcard-icon", "aria-hidden": "true" }, "🧧"),
      h("div", {},
        h("div", { class: "redcard-greeting" }, e.greeting || "Best wishes"),
        h("div", { class: "redcard-kind" },
          `${money(e, e.total)} · ${e.shares} ${e.lucky ? "lucky" : "equal"} share${e.shares === 1 ? "" : "s"}`))),
    h("div", { class: "redcard-status", dataset: { status: slot.dataset.status } }, statusText(e)),
    canOpen
      ? h("button", {
          type: "button",
          class: "redcard-open",
          onclick: async (ev) => {
            ev.stopPropagation();
            ev.currentTarget.disabled = true;
            try {
              const res = await call("POST", `/redenvelopes/${e.envelope_id}/open`, {});
              toast(res.amount ? `You got ${money(e, res.amount)}` : "Opening: the sender's device claims your share and pays the gas");
            } catch (err) {
              if (!(err instanceof ApiError)) throw err;
              toast(err.message, "error");
            }
            onRedEnvelopeEvent({ chat });
          },
        }, "Open")
      : null,
    list,
  );
}

/** The composer's 🧧 button: send a red envelope to this chat. */
export function redEnvelopeButton(chat) {
  return h(
    "button",
    {
      type: "button",
      class: "icon-button redenvelope-button",
      "aria-label": "Send a red envelope",
      title: "Send a red envelope",
      onclick: () => redEnvelopeDialog(chat),
    },
    "🧧",
  );
}

/** The dialog: currency, total, shares, lucky or equal, greeting; then confirm, then send. */
export function redEnvelopeDialog(chat) {
  const group = chat.startsWith("group:");
  const total = h("input", { id: "re-total", inputmode: "decimal", autocomplete: "off", placeholder: "0.00", "aria-label": "Total (ETH)" });
  const token = h("select", { id: "re-token", "aria-label": "Currency", hidden: true,
    onchange: () => total.setAttribute("aria-label", `Total (${token.value})`) },
  h("option", { value: "ETH" }, "ETH"));
  call("GET", "/wallet").then((w) => { // the wallet's ERC-20 (the devnet's BXD), if any
    const sym = w && w.chain && w.chain.token_symbol;
    if (sym) {
      token.append(h("option", { value: sym }, sym));
      token.hidden = false;
    }
  }).catch(() => {});
  const shares = h("input", { id: "re-shares", type: "number", min: 1, max: 1000, value: group ? 3 : 1, "aria-label": "Shares" });
  const lucky = h("select", { id: "re-kind", "aria-label": "Split" },
    h("option", { value: "lucky" }, "Lucky (random amounts)"),
    h("option", { value: "equal" }, "Equal amounts"));
  const greeting = h("input", { id: "re-greeting", maxlength: 200, placeholder: "恭喜发财, best wishes", "aria-label": "Greeting" });
  const review = h("p", { class: "re-review", hidden: true });
  const error = h("p", { class: "pay-error", role: "alert" });
  const next = h("button", { type: "submit", class: "primary" }, "Next");
  let confirming = false;
  const dialog = h(
    "dialog",
    { class: "pay-dialog redenvelope-dialog", "aria-label": "Send a red envelope" },
    h("form", {
      method: "dialog",
      onsubmit: async (ev) => {
        ev.preventDefault();
        error.textContent = "";
        if (!/^[0-9]+(\.[0-9]{1,18})?$/.test(total.value.trim())) {
          error.textContent = `Type the total in ${token.value}, like 0.05`;
          return;
        }
        const n = Number(shares.value);
        if (!Number.isInteger(n) || n < 1 || n > 1000) {
          error.textContent = "1 to 1000 shares";
          return;
        }
        if (!confirming) {
          confirming = true;
          token.disabled = true; // the review names the currency: it is what is sent
          review.hidden = false;
          review.textContent = `${total.value.trim()} ${token.value} leaves your wallet now (plus gas${token.value === "ETH" ? "" : ", and one approval"}) for ${n} ${lucky.value} shares. What nobody opens in 24 hours comes back to you.`;
          next.textContent = "Send";
          return;
        }
        next.disabled = true;
        try {
          await call("POST", "/redenvelopes", {
            chat, total: total.value.trim(), shares: n, lucky: lucky.value === "lucky", greeting: greeting.value,
            token: token.value,
          });
          toast("Red envelope sent");
          dialog.close();
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          error.textContent = err.message;
          next.disabled = false;
        }
      },
    },
      h("h2", {}, "🧧 Red envelope"),
      h("div", { class: "pay-fields" }, token, total, group ? shares : null, group ? lucky : null, greeting),
      review,
      error,
      h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), next)),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  total.focus();
  return dialog;
}
