// Verification: compare the safety number with the contact, then confirm.

import { ApiError, call } from "./api.js";
import { avatar, h, icon, mount, toast } from "./dom.js";
import { openSas } from "./sas.js";
import { contact, refreshAll } from "./store.js";

export function verifyView(key) {
  const number = h("div", { class: "safety-number", "aria-label": "Safety number" }, "…");
  const state = h("div", { class: "verify-state", role: "status" });
  const head = h("div", { class: "verify-head" });
  const confirm = h("button", { class: "primary", type: "button" }, "They match: mark as verified");
  const emoji = h(
    "button",
    { type: "button", onclick: () => openSas(key, { start: true }) },
    "Compare emoji",
  );
  const el = h(
    "div",
    { class: "conversation verify" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: `#/chat/${key}`, "aria-label": "Back to the chat" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, "Safety number")),
    ),
    h(
      "div",
      { class: "scroll" },
      h(
        "section",
        { class: "card" },
        head,
        h(
          "p",
          {},
          "Compare these 60 digits with the ones your contact sees, in person or on a call. " +
            "If they match, nobody is in the middle of your conversation.",
        ),
        number,
        state,
        h("div", { class: "buttons" }, confirm),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Or compare emoji"),
        h(
          "p",
          {},
          "When you both have Boxless open, compare 7 emoji instead: it checks the same " +
            "keys and takes a few seconds.",
        ),
        h("div", { class: "buttons" }, emoji),
      ),
    ),
  );

  confirm.addEventListener("click", async () => {
    try {
      await call("POST", `/contacts/${key}/verification`);
      toast("Verified");
      await refreshAll();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(err.message, "error");
    }
  });

  call("GET", `/contacts/${key}/verification`)
    .then((v) => {
      const groups = v.safety_number.split(" ");
      mount(number, groups.map((g) => h("span", {}, g)));
    })
    .catch((err) => mount(number, err.message));

  return {
    el,
    update() {
      const c = contact(key);
      if (!c) return;
      mount(head, avatar(c.name, key, "large", c.avatar), h("div", {}, h("h2", {}, c.name), h("p", { class: "fingerprint" }, c.fingerprint)));
      if (c.verification_broken) {
        state.className = "verify-state warn";
        state.textContent = `${c.name}'s keys changed since you verified them. Compare again before trusting this chat.`;
      } else if (c.verified) {
        state.className = "verify-state ok";
        state.textContent = `✔ You verified ${c.name}.`;
      } else {
        state.className = "verify-state";
        state.textContent = "Not verified yet.";
      }
      confirm.hidden = c.verified;
    },
  };
}
