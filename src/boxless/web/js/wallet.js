// The Wallet pane (#/wallet, opened from Me): the account's Ethereum address with
// its EIP-681 receive QR, balances (ETH and the chain's token), a send form with
// an explicit confirm step showing the fee cap, and the history with each
// transaction's state as the chain reports it. Amounts stay decimal strings of
// base units from the API; nothing here does arithmetic on money.

import { ApiError, call, imageUrl } from "./api.js";
import { h, icon, mount, shortTime, toast } from "./dom.js";
import { stealthSection } from "./stealth.js";

const STATES = {
  pending: "Pending",
  included: "In a block",
  confirmed: "Confirmed",
  failed: "Failed",
  replaced: "Replaced",
};

/** The Me tab's row that opens the wallet. */
export function walletLink() {
  return h(
    "a",
    { class: "row wallet-link", href: "#/wallet", id: "open-wallet" },
    h("span", { class: "wallet-icon", "aria-hidden": "true" }, "¥"),
    h("span", { class: "row-main" }, h("span", { class: "row-name" }, "Wallet")),
  );
}

export function walletView() {
  const address = h("code", { class: "wallet-address", id: "wallet-address" });
  const qr = h("img", { class: "qr", alt: "QR code to pay this wallet (EIP-681)", width: 200, height: 200 });
  const uri = h("p", { class: "hint wallet-uri" });
  const balances = h("ul", { class: "wallet-balances", id: "wallet-balances" });
  const chain = h("p", { class: "hint" });
  const history = h("ul", { class: "wallet-history", id: "wallet-history" });
  const setup = h("section", { class: "card", hidden: true });
  const to = h("input", { id: "wallet-to", placeholder: "0x…", autocomplete: "off", spellcheck: "false", "aria-label": "To address" });
  const amount = h("input", { id: "wallet-amount", inputmode: "decimal", placeholder: "0.00", "aria-label": "Amount" });
  const symbol = h("select", { id: "wallet-symbol", "aria-label": "Token" });
  const note = h("input", { id: "wallet-note", maxlength: 200, placeholder: "Note (optional)", "aria-label": "Note" });
  const review = h("div", { class: "pay-review", hidden: true });
  const sendError = h("p", { class: "pay-error", role: "alert" });
  const sendButton = h("button", { type: "submit", class: "primary" }, "Next");
  let quote = null;
  let qrUrl = null;
  let alive = true;

  function resetQuote() {
    quote = null;
    review.hidden = true;
    sendButton.textContent = "Next";
    sendButton.disabled = false;
  }
  for (const input of [to, amount, symbol]) input.addEventListener("input", resetQuote);

  const sendForm = h(
    "form",
    {
      class: "wallet-send",
      onsubmit: async (ev) => {
        ev.preventDefault();
        sendButton.disabled = true;
        sendError.textContent = "";
        const body = { to: to.value.trim(), amount: amount.value.trim(), symbol: symbol.value };
        try {
          if (!quote) {
            quote = await call("POST", "/wallet/quote", body);
            mount(
              review,
              h("h3", {}, "Check and confirm"),
              h("ul", {}, quote.lines.map((line) => h("li", {}, line))),
            );
            review.hidden = false;
            sendButton.textContent = "Confirm and send";
            sendButton.disabled = false;
            return;
          }
          await call("POST", "/wallet/send", { ...body, note: note.value, max_fee_cap: quote.fee_cap });
          toast("Sent");
          amount.value = "";
          note.value = "";
          resetQuote();
          load();
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          sendError.textContent = err.message;
          if (err.code === "fees_rose") resetQuote();
          sendButton.disabled = false;
        }
      },
    },
    h("label", { for: "wallet-to" }, "To"),
    to,
    h("label", { for: "wallet-amount" }, "Amount"),
    h("div", { class: "pay-amount-row" }, amount, symbol),
    note,
    review,
    sendError,
    h("div", { class: "buttons" }, sendButton),
  );

  const el = h(
    "div",
    { class: "conversation panel wallet-view" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/me", "aria-label": "Back" }, icon("back")),
      h("h2", { class: "conv-name" }, "Wallet"),
    ),
    h(
      "div",
      { class: "scroll" },
      setup,
      h("section", { class: "card", "aria-labelledby": "wallet-balances-title" }, h("h2", { id: "wallet-balances-title" }, "Balances"), balances, chain),
      h(
        "section",
        { class: "card wallet-receive", "aria-labelledby": "wallet-receive-title" },
        h("h2", { id: "wallet-receive-title" }, "Receive"),
        h("div", { class: "qr-box" }, qr),
        address,
        uri,
        h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => copy(address.textContent) }, "Copy address")),
      ),
      h("section", { class: "card", "aria-labelledby": "wallet-send-title" }, h("h2", { id: "wallet-send-title" }, "Send"), sendForm),
      h("section", { class: "card", "aria-labelledby": "wallet-history-title" }, h("h2", { id: "wallet-history-title" }, "History"), history),
      stealthSection(), // js/stealth.js
    ),
  );

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      toast("Address copied");
    } catch (_) {
      toast("Select and copy the address");
    }
  }

  function showSetup() {
    const url = h("input", { id: "wallet-rpc", placeholder: "http://127.0.0.1:8545", "aria-label": "RPC URL" });
    const id = h("input", { id: "wallet-chain-id", inputmode: "numeric", placeholder: "31337", "aria-label": "Chain id" });
    mount(
      setup,
      h("h2", {}, "Choose a chain"),
      h("p", { class: "hint" }, "Any EVM JSON-RPC URL; its chain id is checked before it is saved. `boxless demo` sets this up for you."),
      h(
        "form",
        {
          onsubmit: async (ev) => {
            ev.preventDefault();
            try {
              await call("PUT", "/wallet/chain", { rpc_url: url.value.trim(), chain_id: Number(id.value) });
              load();
            } catch (err) {
              if (!(err instanceof ApiError)) throw err;
              toast(err.message, "error");
            }
          },
        },
        url,
        id,
        h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Save")),
      ),
    );
    setup.hidden = false;
  }

  async function load() {
    let w;
    try {
      w = await call("GET", "/wallet");
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      mount(balances, h("li", { class: "hint" }, err.message));
      return;
    }
    if (!alive) return;
    address.textContent = w.address;
    if (!w.chain) {
      showSetup();
      mount(balances, h("li", { class: "hint" }, "No chain yet"));
      return;
    }
    setup.hidden = true;
    chain.textContent = `Chain ${w.chain.chain_id} · ${w.chain.rpc_url}`;
    uri.textContent = w.uri || "";
    mount(
      balances,
      w.balances.map((b) =>
        h("li", { dataset: { symbol: b.symbol } }, h("span", { class: "wallet-symbol" }, b.symbol), h("span", { class: "wallet-amount" }, b.display.split(" ")[0])),
      ),
    );
    const chosen = symbol.value;
    mount(symbol, w.balances.map((b) => h("option", { value: b.symbol }, b.symbol)));
    if (chosen) symbol.value = chosen;
    if (!qrUrl) {
      imageUrl("/wallet/qr.png")
        .then((url) => {
          qrUrl = url;
          qr.src = url;
        })
        .catch(() => {});
    }
    try {
      const res = await call("GET", "/wallet/history?limit=30");
      if (!alive) return;
      mount(
        history,
        res.transactions.length
          ? res.transactions.map((t) =>
              h(
                "li",
                { dataset: { state: t.state } },
                h("span", { class: "wallet-tx-main" }, `${t.display} → ${t.to.slice(0, 8)}…${t.to.slice(-4)}`, t.note ? h("span", { class: "hint" }, ` · ${t.note}`) : null),
                h("span", { class: "wallet-tx-state", dataset: { state: t.state } }, STATES[t.state] || t.state),
                h("time", {}, shortTime(t.created_ms)),
              ),
            )
          : h("li", { class: "hint" }, "Nothing sent yet"),
      );
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      mount(history, h("li", { class: "hint" }, err.message));
    }
  }

  load();
  const timer = setInterval(load, 5000);
  return {
    el,
    update() {},
    reload: load,
    onPayment: () => load(),
    destroy() {
      alive = false;
      clearInterval(timer);
      if (qrUrl) URL.revokeObjectURL(qrUrl);
    },
  };
}
