// Drafts kept per chat on the node (PUT /chats/{chat}/draft), so a half-written
// message survives switching chats, a reload and another tab. Loaded from
// GET /chats/settings; saved a moment after typing stops and when the chat closes.

import { ApiError, call } from "./api.js";

const SAVE_AFTER_MS = 700;

/** Keep `input`'s text as the draft of `chat` ("contact:<key>" or "group:<id>"). */
export function keepDraft(chat, input) {
  let saved = "";
  let timer = null;
  let loaded = false;
  let missing = false; // this node has no drafts API (an older `boxless up`)

  async function save() {
    clearTimeout(timer);
    timer = null;
    const text = input.value;
    if (!loaded || missing || text === saved) return;
    saved = text;
    try {
      await call("PUT", `/chats/${encodeURIComponent(chat)}/draft`, { text });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 404 || err.status === 405) missing = true;
      else console.warn("draft not saved", err.message);
    }
  }

  (async () => {
    try {
      const settings = await call("GET", "/chats/settings");
      const draft = (settings && settings[chat] && settings[chat].draft) || "";
      if (draft && !input.value) input.value = draft; // no input event: that would say "typing"
      saved = draft;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      missing = err.status === 404 || err.status === 405;
    }
    loaded = true;
  })();

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(save, SAVE_AFTER_MS);
  });

  return {
    /** The message went out: the draft is empty now. */
    sent() {
      if (loaded) save();
    },
    flush: save,
  };
}
