// Bob's Coffee: the menu and orders come from the shop bot (Boxless.backend), the
// payment goes into escrow (Boxless.pay, confirmed in Boxless, not here).
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const cart = {};
  let menu = [];
  let seller = null;
  const orders = new Map();

  const decimal = (wei) => {
    const s = BigInt(wei).toString().padStart(19, "0");
    return (s.slice(0, -18) + "." + s.slice(-18)).replace(/\.?0+$/, "");
  };
  const eth = (wei) => decimal(wei) + " ETH";
  function status(text, error) {
    $("status").textContent = text;
    $("status").className = error ? "error" : "";
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  async function ask(payload) {
    const answer = await Boxless.backend.request(payload);
    if (answer && answer.error) throw new Error(answer.error);
    return answer;
  }

  function total() {
    let sum = 0n;
    for (const m of menu) sum += BigInt(m.price) * BigInt(cart[m.id] || 0);
    return sum;
  }
  function renderMenu() {
    const ul = $("menu");
    ul.replaceChildren();
    for (const m of menu) {
      const li = el("li");
      const name = el("span", "", m.name + " ");
      name.append(el("span", "price", eth(m.price)));
      const qty = el("span", "qty");
      const minus = el("button", "", "−");
      const n = el("span", "", String(cart[m.id] || 0));
      const plus = el("button", "", "+");
      minus.dataset.item = plus.dataset.item = m.id;
      minus.addEventListener("click", () => { cart[m.id] = Math.max(0, (cart[m.id] || 0) - 1); renderMenu(); });
      plus.addEventListener("click", () => { cart[m.id] = Math.min(10, (cart[m.id] || 0) + 1); renderMenu(); });
      qty.append(minus, n, plus);
      li.append(name, qty);
      ul.append(li);
    }
    $("total").textContent = "Total: " + eth(total());
    $("order").disabled = total() === 0n;
  }
  function renderOrders() {
    const ul = $("orders");
    ul.replaceChildren();
    for (const o of orders.values()) {
      const li = el("li");
      li.dataset.order = o.order;
      li.append(el("span", "", o.items.join(", ") + " — " + eth(o.amount)), el("span", "state", o.state));
      if (o.state === "ready" && typeof o.deal === "number") {
        const release = el("button", "release", "Collected: release payment");
        release.addEventListener("click", () => releaseOrder(o, release));
        li.append(release);
      }
      ul.append(li);
    }
  }
  function remember(o) {
    orders.set(o.order, o);
    renderOrders();
  }

  async function order() {
    const items = {};
    for (const [k, v] of Object.entries(cart)) if (v > 0) items[k] = v;
    $("order").disabled = true;
    try {
      const o = await ask({ op: "order", items });
      remember(o);
      status("Order " + o.order + ": confirm the payment in Boxless…");
      const paid = await Boxless.pay({ amount: decimal(o.amount), token: "ETH", memo: o.memo, to: o.seller, ref: o.order });
      const deal = paid && typeof paid.deal === "number" ? paid.deal : null;
      if (deal === null) throw new Error("the payment gave no escrow deal");
      remember(await ask({ op: "paid", order: o.order, deal }));
      status("Paid into escrow. The shop is checking the payment…");
      for (const k of Object.keys(cart)) cart[k] = 0;
      renderMenu();
    } catch (e) {
      status(e.message || String(e), true);
      $("order").disabled = total() === 0n;
    }
  }

  async function releaseOrder(o, button) {
    button.disabled = true;
    try {
      await Boxless.release(o.deal); // confirmed in Boxless's own dialog
      status("Released: the shop is paid.");
    } catch (e) {
      status(e.message || String(e), true);
      button.disabled = false;
    }
  }

  Boxless.backend.onMessage((msg) => {
    if (!msg || typeof msg.order !== "string") return;
    remember(msg);
    if (msg.note) status(msg.note);
  });

  $("order").addEventListener("click", order);
  (async () => {
    try {
      const user = await Boxless.getUser().catch(() => null);
      const m = await ask({ op: "menu" });
      menu = m.items;
      seller = m.seller;
      $("shop").textContent = m.shop;
      renderMenu();
      status((user && user.name ? "Hello " + user.name + ". " : "") + (seller ? "What would you like?" : "The shop takes no payments yet."));
    } catch (e) {
      status("The shop does not answer: " + (e.message || e), true);
    }
  })();
})();
