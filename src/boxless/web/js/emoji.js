// The composer's emoji picker: a button that opens a grid of common emoji;
// picking one inserts it at the caret (the picker stays open for more).

import { h, mount } from "./dom.js";

const EMOJI = [
  "😀", "😂", "🤣", "😊", "😍", "😘", "😎", "🤔", "😅", "😉", "🙂", "🙃",
  "😢", "😭", "😡", "😱", "😴", "🤗", "🤩", "🥳", "😇", "🤝", "👍", "👎",
  "👏", "🙏", "💪", "👋", "👌", "✌️", "❤️", "💔", "🔥", "✨", "🎉", "🎂",
  "🌹", "☀️", "🌙", "⭐", "☕", "🍺", "🍕", "🍜", "⚽", "🚗", "✅", "❌",
];

/** An emoji button and its panel for `input` (a textarea); returns {button, panel}. */
export function emojiPicker(input) {
  const panel = h("div", { class: "emoji-panel", role: "dialog", "aria-label": "Emoji", hidden: true });
  const button = h(
    "button",
    { type: "button", class: "emoji-button", "aria-label": "Emoji", "aria-expanded": "false", onclick: () => toggle() },
    "😊",
  );
  function insert(emoji) {
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? input.value.length;
    input.value = input.value.slice(0, start) + emoji + input.value.slice(end);
    const caret = start + emoji.length;
    input.focus();
    input.setSelectionRange(caret, caret);
    input.dispatchEvent(new Event("input"));
  }
  function toggle(open = panel.hidden) {
    panel.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open && !panel.firstChild) {
      mount(
        panel,
        EMOJI.map((e) => h("button", { type: "button", class: "emoji-choice", "aria-label": `Insert ${e}`, onclick: () => insert(e) }, e)),
      );
    }
  }
  panel.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      toggle(false);
      button.focus();
    }
  });
  return { button, panel, close: () => toggle(false) };
}
