// Favourites (WeChat's Favorites): #/favourites lists the messages I saved —
// copies, so they stay after the message is deleted — newest saved first, with
// a filter box (GET /favourites?q=). Each opens its chat at the message, or is
// removed. Saving happens from a message's action menu (POST /favourites).
//
// For other views: favouritesLink() (the Me tab's entry) and saveFavourite(chat, id).

import { ApiError, call } from "./api.js";
import { avatar, guarded, h, icon, mount, shortTime, toast } from "./dom.js";
import { highlighted, messageHref } from "./search.js";
import { group } from "./store.js";

const STAR = "M12 2.5l2.9 6.1 6.6.8-4.9 4.6 1.3 6.6L12 17.3l-5.9 3.3 1.3-6.6-4.9-4.6 6.6-.8z";

function starIcon(size = 22) {
  const svg = icon("chats", size);
  svg.querySelector("path").setAttribute("d", STAR);
  return svg;
}

/** The Me tab's row that opens #/favourites. */
export function favouritesLink() {
  return h(
    "a",
    { class: "row favourites-link", href: "#/favourites", id: "open-favourites" },
    h("span", { class: "fav-star", "aria-hidden": "true" }, starIcon()),
    h("span", { class: "row-main" }, h("span", { class: "row-name" }, "Favourites")),
  );
}

/** Save message `id` of `chat` to my favourites (a toast says how it went). */
export async function saveFavourite(chat, id) {
  const saved = await guarded(() => call("POST", "/favourites", { chat, id }));
  if (saved) toast("Saved to favourites");
  return saved;
}

/** " · <group name>" for a group's message (a 1:1's sender names the chat). */
function where(chat) {
  const [kind, key] = chat.split(":");
  if (kind !== "group") return null;
  return h("span", { class: "fav-chat" }, ` · ${(group(key) || {}).name || "a group"}`);
}

function item(f, terms, remove) {
  return h(
    "li",
    { class: "fav-item", dataset: { favourite: String(f.id) } },
    h(
      "div",
      { class: "row fav-row" },
      avatar(f.sender_name, f.sender),
      h(
        "div",
        { class: "row-main" },
        h("span", { class: "row-top" }, h("span", { class: "row-name" }, f.sender_name, where(f.chat)), h("span", { class: "row-time" }, shortTime(f.sent_at_ms))),
        h("p", { class: "fav-text" }, highlighted(f.text, terms)),
        h(
          "span",
          { class: "fav-actions" },
          h("a", { href: messageHref(f.chat, f.message_id), class: "fav-open" }, "Show in chat"),
          h("button", { type: "button", class: "link-button fav-remove", onclick: () => remove(f) }, "Remove"),
        ),
      ),
    ),
  );
}

export function favouritesView() {
  const input = h("input", {
    type: "search",
    id: "favourites-filter",
    class: "search-input",
    placeholder: "Search favourites",
    "aria-label": "Search favourites",
    maxlength: 200,
    autocomplete: "off",
  });
  const list = h("ul", { class: "rows fav-list", "aria-label": "Favourites" });
  const el = h(
    "div",
    { class: "conversation panel favourites-pane" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/me", "aria-label": "Back" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, "Favourites")),
    ),
    h("div", { class: "search-form fav-filter" }, input),
    h("div", { class: "scroll" }, list),
  );
  let timer = null;
  let asked = 0;
  async function load() {
    const q = input.value.trim();
    const mine = ++asked;
    let favs;
    try {
      favs = await call("GET", `/favourites?${new URLSearchParams({ q })}`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (mine === asked) mount(list, h("li", { class: "empty error", role: "alert" }, err.message));
      return;
    }
    if (mine !== asked) return;
    const terms = q ? q.split(/\s+/) : [];
    if (!favs.length) {
      mount(
        list,
        h("li", { class: "empty" }, q ? `No favourite has “${q}”.` : "Nothing saved yet: choose Favourite in a message's menu to keep a copy here."),
      );
      return;
    }
    mount(list, favs.map((f) => item(f, terms, remove)));
  }
  async function remove(f) {
    const done = await guarded(() => call("DELETE", `/favourites/${f.id}`));
    if (done !== undefined) {
      toast("Removed from favourites");
      load();
    }
  }
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(load, 200);
  });
  load();
  return {
    el,
    update() {},
    onFavourites: load, // saved or removed here or on another of our devices
    reload: load, // the event socket (re)opened: what changed meanwhile
    destroy() {
      clearTimeout(timer);
      asked++;
    },
  };
}
