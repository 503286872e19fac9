// First run: create an account (passphrase → recovery phrase → type back words
// → name) or restore one from its phrase. `done()` is called once the account
// exists and the node has started the client.
//
// The phrase is shown once: the API never returns it again. This page keeps it
// only until the account is created (so "Back" can show it again before that).

import { ApiError, call } from "./api.js";
import { h, mount } from "./dom.js";
import { linkDeviceForm } from "./devicelink.js";

function field(id, label, attrs = {}) {
  const input = h(attrs.rows ? "textarea" : "input", { id, name: id, ...attrs });
  return [h("label", { for: id }, label), input];
}

export function onboardingView(done) {
  const el = h("main", { class: "onboarding" });
  let phrase = null; // {words, confirm}
  let answers = {};

  function screen(step, title, ...body) {
    mount(
      el,
      h(
        "div",
        { class: "onboarding-card", dataset: { step } },
        h("img", { src: "icons/icon-192.png", alt: "", class: "logo", width: 56, height: 56 }),
        h("h1", {}, title),
        ...body,
      ),
    );
    const first = el.querySelector("input, textarea, button.primary");
    if (first) first.focus();
  }

  function errorBox() {
    return h("p", { class: "error", role: "alert" });
  }

  async function attempt(button, error, fn) {
    error.textContent = "";
    button.disabled = true;
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      error.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  }

  function welcome() {
    screen(
      "welcome",
      "Welcome to Boxless",
      h(
        "p",
        {},
        "Your account is a key you make yourself, on this device: no phone number, " +
          "no server that owns it. Messages are end-to-end encrypted.",
      ),
      h("div", { class: "buttons column" },
        h("button", { class: "primary", onclick: choosePassphrase }, "Create a new account"),
        h("button", { onclick: restore }, "Restore from a recovery phrase"),
        h("button", { onclick: linkAccount, id: "link-existing" }, "Link to an existing account"),
      ),
    );
  }

  function choosePassphrase() {
    const [l1, p1] = field("passphrase", "Passphrase for this device", { type: "password", autocomplete: "new-password", minlength: 8 });
    const [l2, p2] = field("passphrase2", "Repeat the passphrase", { type: "password", autocomplete: "new-password" });
    const error = errorBox();
    const next = h("button", { class: "primary", type: "submit" }, "Next");
    const form = h(
      "form",
      {},
      h("p", { class: "hint" }, "It encrypts your messages and keys on this device. At least 8 characters; a few unrelated words make a good one."),
      l1, p1, l2, p2, error,
      h("div", { class: "buttons" }, h("button", { type: "button", onclick: welcome }, "Back"), next),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (p1.value !== p2.value) {
        error.textContent = "The two passphrases differ.";
        return;
      }
      attempt(next, error, async () => {
        phrase = await call("POST", "/onboarding/create", { passphrase: p1.value });
        answers = {};
        showPhrase();
      });
    });
    screen("passphrase", "Protect this device", form);
  }

  function showPhrase() {
    const ok = h("input", { type: "checkbox", id: "wrote-it-down" });
    const next = h("button", { class: "primary", type: "button", disabled: true, onclick: confirmWords }, "Next");
    ok.addEventListener("change", () => {
      next.disabled = !ok.checked;
    });
    screen(
      "phrase",
      "Your recovery phrase",
      h(
        "p",
        {},
        "Write these 24 words on paper, in order, and keep them safe. They are the only way to " +
          "restore your account, and anyone who has them can become you. They are shown only now.",
      ),
      h(
        "ol",
        { class: "phrase", "aria-label": "Recovery phrase" },
        phrase.words.map((w) => h("li", {}, h("span", { class: "word" }, w))),
      ),
      h("div", { class: "check" }, ok, h("label", { for: "wrote-it-down" }, "I wrote down all 24 words")),
      h("div", { class: "buttons" }, next),
    );
  }

  function confirmWords() {
    const error = errorBox();
    const inputs = phrase.confirm.map((n) =>
      field(`word-${n}`, `Word #${n}`, { type: "text", autocomplete: "off", autocapitalize: "none", spellcheck: "false", value: answers[n] || "" }),
    );
    const next = h("button", { class: "primary", type: "submit" }, "Next");
    const form = h(
      "form",
      {},
      h("p", {}, "To check you have it, type these words of your phrase."),
      inputs.flat(),
      error,
      h("div", { class: "buttons" }, h("button", { type: "button", onclick: showPhrase }, "Show the phrase again"), next),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      answers = {};
      phrase.confirm.forEach((n, i) => {
        answers[n] = inputs[i][1].value.trim().toLowerCase();
      });
      const wrong = phrase.confirm.find((n) => answers[n] !== phrase.words[n - 1]);
      if (wrong) {
        error.textContent = `Word #${wrong} does not match. Check what you wrote down.`;
        return;
      }
      chooseName();
    });
    screen("confirm", "Check your phrase", form);
  }

  function chooseName() {
    const [label, name] = field("display-name", "Your name", { type: "text", maxlength: 64, autocomplete: "nickname" });
    const error = errorBox();
    const create = h("button", { class: "primary", type: "submit" }, "Create my account");
    const form = h(
      "form",
      {},
      h("p", {}, "This is what your contacts see. You can be anyone: it is not checked."),
      label, name, error,
      h("div", { class: "buttons" }, create),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      attempt(create, error, async () => {
        create.textContent = "Creating your account…";
        try {
          await call("POST", "/onboarding/confirm", { words: answers, name: name.value });
        } finally {
          create.textContent = "Create my account";
        }
        phrase = null;
        answers = {};
        done();
      });
    });
    screen("name", "Choose your name", form);
  }

  function linkAccount() {
    screen("link", "Link to an existing account", linkDeviceForm(welcome, done));
  }

  function restore() {
    const [lp, words] = field("restore-phrase", "Recovery phrase (24 words)", { rows: 4, autocomplete: "off", spellcheck: "false", autocapitalize: "none" });
    const [ln, name] = field("restore-name", "Your name (not needed with a backup file)", { type: "text", maxlength: 64 });
    const [l1, p1] = field("restore-passphrase", "Passphrase for this device", { type: "password", autocomplete: "new-password" });
    const [l2, p2] = field("restore-passphrase2", "Repeat the passphrase", { type: "password", autocomplete: "new-password" });
    // a backup file (Me → Backup) brings history and settings too; its name is the account's
    const [lb, backup] = field("restore-backup", "Backup file (optional: restores your history too)", { type: "file" });
    const error = errorBox();
    const go = h("button", { class: "primary", type: "submit" }, "Restore");
    const form = h(
      "form",
      {},
      lp, words, ln, name, l1, p1, l2, p2, lb, backup, error,
      h("div", { class: "buttons" }, h("button", { type: "button", onclick: welcome }, "Back"), go),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (p1.value !== p2.value) {
        error.textContent = "The two passphrases differ.";
        return;
      }
      attempt(go, error, async () => {
        const file = backup.files && backup.files[0];
        if (file) {
          go.textContent = "Restoring…";
          try {
            await call("PUT", "/onboarding/backup", undefined, { raw: file });
            await call("POST", "/onboarding/restore-backup", { phrase: words.value, passphrase: p1.value });
          } finally {
            go.textContent = "Restore";
          }
        } else {
          await call("POST", "/onboarding/restore", { phrase: words.value, name: name.value, passphrase: p1.value });
        }
        done();
      });
    });
    screen("restore", "Restore your account", form);
  }

  welcome();
  return { el };
}
