// Payments in chats: the transfer and request cards inside message bubbles, and
// the dialog that sends money, asks for it, or splits a bill (in a group).
//
// A card's status comes from the node, which asks the chain: "Received" only when
// the chain confirms the transfer (never from what the message says). Nothing is
// sent without the confirm step, which shows the fee cap (EIP-1559) and total.

import { ApiError, call } from "./api.js";
import { h, mount, toast } from "./dom.js";
import { contact, group, store } from "./store.js";

const PREFIXES = ["💸 Transfer ", "🧾 Request ", "🧾 Split "];
const STATUS = {
  pending: "Pending",
  confirmed: "Confirmed",
  received: "Received",
  forged: "Not paid: the chain disagrees",
  failed: "Failed",
  open: "Requested",
};
const ADDRESS_TRIES = 10;
const cache = new Map(); // chat -> Promise<Map(message_id -> card)>

/** Whether a message's text is a payment card's preview (cards are fetched only then). */
export function isPayment(text) {
  return typeof text === "string" && PREFIXES.some((p) => text.startsWith(p));
}

function cardsOf(chat, fresh = false) {
  if (fresh || !cache.has(chat)) {
    const loading = call("GET", `/payments/cards?chat=${encodeURIComponent(chat)}`)
      .then((res) => new Map(res.cards.map((c) => [c.message_id, c])))
      .catch((err) => {
        cache.delete(chat);
        console.warn("payment cards", err);
        return new Map();
      });
    cache.set(chat, loading);
  }
  return cache.get(chat);
}

/**
 * The card of message `m` in `chat` (an element to put in the bubble), or null
 * when the message is not a payment. Filled when the chat's cards arrive.
 */
export function payCard(chat, m) {
  if (!m || m.deleted || !isPayment(m.text)) return null;
  const slot = h("div", { class: "paycard", dataset: { mid: m.id, chat } });
  cardsOf(chat).then((cards) => fill(slot, chat, cards.get(m.id)));
  return slot;
}

/** A "payment" event: reload that chat's cards and redraw the ones on screen. */
export function onPaymentEvent(ev) {
  if (!ev.message_id) return; // a contact's address arrived: nothing on screen changes
  cardsOf(ev.chat, true).then((cards) => {
    for (const slot of document.querySelectorAll(".paycard")) {
      if (slot.dataset.chat === ev.chat) fill(slot, ev.chat, cards.get(slot.dataset.mid));
    }
  });
}

/** The events socket (re)opened: cards whose status changed while no page listened
 * (the chain confirmed a transfer) are read again, and the ones on screen redrawn. */
export function resumePayCards() {
  cache.clear();
  const chats = new Set([...document.querySelectorAll(".paycard")].map((slot) => slot.dataset.chat));
  for (const chat of chats) onPaymentEvent({ type: "payment", chat, message_id: "resume" });
}

function fill(slot, chat, card) {
  if (!card) {
    mount(slot);
    return;
  }
  slot.dataset.status = card.status;
  slot.dataset.kind = card.kind;
  const badge = h("span", { class: "paycard-status", dataset: { status: card.status } }, statusText(card));
  if (card.kind === "transfer") {
    mount(
      slot,
      h("div", { class: "paycard-kind" }, card.outgoing ? "Transfer sent" : "Transfer"),
      h("div", { class: "paycard-amount" }, card.display),
      card.note ? h("div", { class: "paycard-note" }, card.note) : null,
      badge,
      card.status === "forged" || card.status === "failed" ? h("div", { class: "paycard-reason" }, card.reason) : null,
      h("div", { class: "paycard-tx", title: card.tx }, `tx ${card.tx.slice(0, 10)}…`),
    );
    return;
  }
  const split = card.shares && card.shares.length > 0;
  const canPay = !card.outgoing && card.my_share && !card.paid_by_me;
  mount(
    slot,
    h("div", { class: "paycard-kind" }, split ? "Split the bill" : card.outgoing ? "You asked for" : "Asks you for"),
    h("div", { class: "paycard-amount" }, split && !card.outgoing && card.my_share_display ? card.my_share_display : card.display),
    split ? h("div", { class: "paycard-note" }, `${card.display} in ${card.shares.length} shares`) : null,
    card.note ? h("div", { class: "paycard-note" }, card.note) : null,
    split
      ? h(
          "ul",
          { class: "paycard-shares" },
          card.shares.map((s) =>
            h(
              "li",
              { dataset: { paid: s.paid ? "yes" : "no" } },
              h("span", { class: "paycard-who" }, `${s.paid ? "✓" : s.member === card.author ? "—" : "·"} ${nameOf(chat, s.member)}`),
              h("span", {}, s.display),
            ),
          ),
        )
      : null,
    h("span", { class: "paycard-status", dataset: { status: card.paid || card.paid_by_me ? "received" : "open" } }, requestStatus(card)),
    canPay
      ? h(
          "button",
          {
            type: "button",
            class: "primary paycard-pay",
            onclick: (ev) => {
              ev.stopPropagation();
              payDialog(chat, { request: card });
            },
          },
          `Pay ${card.my_share_display}`,
        )
      : null,
  );
}

function requestStatus(card) {
  if (card.paid) return "Paid";
  if (card.paid_by_me) return "You paid";
  const owing = (card.shares || []).filter((s) => s.member !== card.author);
  if (owing.length) return `${owing.filter((s) => s.paid).length} of ${owing.length} paid`;
  return "Not paid yet";
}

/** A member's name: "You", a group member's or a contact's name, else a short key. */
function nameOf(chat, key) {
  if (store.me && key === store.me.identity_key) return "You";
  const g = chat.startsWith("group:") ? group(chat.slice(6)) : null;
  const m = g && (g.members || []).find((x) => x.identity_key === key);
  const c = contact(key);
  return (m && m.name) || (c && c.name) || `${key.slice(0, 8)}…`;
}

function statusText(card) {
  if (card.kind === "transfer" && card.status === "confirmed" && !card.outgoing) return STATUS.received;
  return STATUS[card.status] || card.status;
}

/** The "+" button of a composer: transfer or request money (1:1), split a bill (group). */
export function payButton(chat) {
  return h(
    "button",
    {
      type: "button",
      class: "icon-button pay-button",
      "aria-label": chat.startsWith("group:") ? "Split a bill" : "Transfer or request money",
      title: chat.startsWith("group:") ? "Split a bill" : "Transfer or request money",
      onclick: () => payDialog(chat, {}),
    },
    "¥",
  );
}

/**
 * The payment dialog. Modes: "transfer" (1:1), "request" (1:1), "split" (group),
 * or paying a `request` card. Transfers go through a confirm step with the fees.
 */
export async function payDialog(chat, { request = null } = {}) {
  const group = chat.startsWith("group:");
  let mode = request ? "pay" : group ? "split" : "transfer";
  let wallet = null;
  try {
    wallet = await call("GET", "/wallet");
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    toast(err.message, "error");
    return null;
  }
  if (!wallet.chain) {
    toast("Set up your wallet's chain first (Me → Wallet)", "error");
    return null;
  }
  const symbols = wallet.balances.map((b) => b.symbol);
  const amount = h("input", { id: "pay-amount", inputmode: "decimal", autocomplete: "off", placeholder: "0.00", "aria-label": "Amount" });
  const symbol = h("select", { id: "pay-symbol", "aria-label": "Token" }, symbols.map((s) => h("option", { value: s }, s)));
  const note = h("input", { id: "pay-note", maxlength: 200, placeholder: "Note (optional)", "aria-label": "Note" });
  const review = h("div", { class: "pay-review", hidden: true });
  const error = h("p", { class: "pay-error", role: "alert" });
  const next = h("button", { type: "submit", class: "primary" }, "Next");
  let quote = null;

  const tabs = group || request
    ? null
    : h(
        "div",
        { class: "pay-tabs", role: "tablist" },
        ["transfer", "request"].map((m) =>
          h(
            "button",
            {
              type: "button",
              role: "tab",
              "aria-selected": m === mode ? "true" : "false",
              onclick: (ev) => {
                mode = m;
                for (const b of tabs.children) b.setAttribute("aria-selected", b === ev.currentTarget ? "true" : "false");
                reset();
              },
            },
            m === "transfer" ? "Transfer" : "Request",
          ),
        ),
      );

  const fields = request
    ? h("p", { class: "pay-fixed" }, `${request.my_share_display}${request.note ? ` · ${request.note}` : ""}`)
    : h(
        "div",
        { class: "pay-fields" },
        h("div", { class: "pay-amount-row" }, amount, symbol),
        note,
      );

  function reset() {
    quote = null;
    review.hidden = true;
    mount(review);
    error.textContent = "";
    next.textContent = mode === "request" ? "Request" : mode === "split" ? "Split the bill" : "Next";
    next.disabled = false;
  }

  const title = request ? "Pay a request" : group ? "Split a bill" : "Transfer";
  const dialog = h(
    "dialog",
    { class: "pay-dialog", "aria-label": title },
    h(
      "form",
      {
        method: "dialog",
        onsubmit: async (ev) => {
          ev.preventDefault();
          next.disabled = true;
          error.textContent = "";
          try {
            if (mode === "request" || mode === "split") {
              await call("POST", "/payments/request", { chat, amount: amount.value.trim(), symbol: symbol.value, note: note.value });
              toast(mode === "split" ? "Bill split: each member got a request" : "Request sent");
              dialog.close();
              return;
            }
            const body = request
              ? { chat, request: request.message_id }
              : { chat, amount: amount.value.trim(), symbol: symbol.value };
            if (!quote) {
              quote = await quoteWithRetry(body, error);
              showReview(review, quote);
              next.textContent = "Confirm and send";
              next.disabled = false;
              return;
            }
            await call("POST", "/payments/transfer", { ...body, note: request ? "" : note.value, max_fee_cap: quote.fee_cap });
            toast("Sent: the card shows when the chain confirms it");
            dialog.close();
          } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            error.textContent = err.message;
            if (err.code === "fees_rose") reset();
            next.disabled = false;
          }
        },
      },
      h("h2", {}, title),
      tabs,
      fields,
      review,
      error,
      h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"), next),
    ),
  );
  for (const input of [amount, symbol]) input.addEventListener("input", () => quote && reset());
  reset();
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

async function quoteWithRetry(body, error) {
  for (let i = 0; ; i++) {
    try {
      return await call("POST", "/payments/quote", body);
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== "address_unknown" || i >= ADDRESS_TRIES) throw err;
      error.textContent = "Asking for their wallet address…";
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

function showReview(review, q) {
  mount(
    review,
    h("h3", {}, "Check and confirm"),
    h("dl", {}, q.lines.map((line) => {
      const at = line.indexOf(":");
      return [h("dt", {}, line.slice(0, at)), h("dd", {}, line.slice(at + 1).trim())];
    })),
    h("p", { class: "hint" }, "The fee is at most this (EIP-1559); usually less is charged."),
  );
  review.hidden = false;
}
