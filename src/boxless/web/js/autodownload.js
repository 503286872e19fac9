// The auto-download card of the Me tab: which received files the node fetches by
// itself (photos only / photos and videos / all files / never) and up to what size,
// the same on every network. Chats show the others with a Download button.

import { ApiError } from "./api.js";
import { AUTO_RULES, getAutoSettings, setAutoSettings } from "./attachments.js";
import { h, toast } from "./dom.js";

export function autoDownloadCard() {
  const rule = h(
    "select",
    { id: "auto-download-rule" },
    AUTO_RULES.map(([value, label]) => h("option", { value }, label)),
  );
  const limit = h("input", { type: "number", min: "0", max: "2048", step: "1", id: "auto-download-limit", class: "auto-download" });
  const form = h(
    "form",
    { class: "auto-download-form" },
    h("label", { for: "auto-download-rule" }, "Download by itself"),
    rule,
    h("label", { for: "auto-download-limit" }, "Up to (MB)"),
    limit,
    h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Save")),
  );
  function show(s) {
    rule.value = s.auto_download;
    limit.value = String(Math.round(s.auto_download_bytes / 1024 / 1024));
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const mb = Number(limit.value);
    if (!Number.isFinite(mb) || mb < 0) return toast("Give a size in MB (0: never)", "error");
    try {
      show(await setAutoSettings({ auto_download: rule.value, auto_download_bytes: Math.round(mb * 1024 * 1024) }));
      toast("Saved: new files follow it in every chat");
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(err.message, "error");
    }
  });
  getAutoSettings().then(show).catch(() => {});
  return h(
    "section",
    { class: "card", "aria-labelledby": "auto-download-title" },
    h("h2", { id: "auto-download-title" }, "Auto-download"),
    h("p", { class: "hint" }, "Other files wait in the chat with a Download button. Videos play while they stream either way."),
    form,
  );
}
