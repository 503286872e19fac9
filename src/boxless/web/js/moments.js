// Moments (WeChat's 朋友圈): #/moments is the feed of my contacts' posts and mine,
// newest first (GET /moments), with a composer whose audience is chosen here
// (all contacts, only some, all except some, only me: POST /moments); each post
// can be liked, commented on (the comments shown are those of my contacts:
// the node already keeps only those) and, if mine, deleted. Opening the feed
// marks it read (POST /moments/read); the Discover tab shows the unread count.
//
// For other views: momentsView, onMomentEvent(ev) (app.js onEvent),
// refreshMomentsUnread() (sets store.momentsUnread).

import { ApiError, call } from "./api.js";
import { avatar, guarded, h, icon, mount, shortTime, toast } from "./dom.js";
import { changed, contact, store } from "./store.js";

const listeners = new Set();

/** The unread count for the Discover tab's badge (store.momentsUnread). */
export async function refreshMomentsUnread() {
  try {
    const got = await call("GET", "/moments?limit=1");
    store.momentsUnread = got.unread;
    changed();
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
  }
}

/** A moment_changed event: the open feed reloads; the badge follows. */
export function onMomentEvent(ev) {
  for (const fn of listeners) fn(ev);
  refreshMomentsUnread();
}

function nameOf(key) {
  if (store.me && key === store.me.identity_key) return store.me.name || "Me";
  const c = contact(key);
  return c ? c.name : "Someone";
}

function composer(onPosted) {
  const text = h("textarea", { id: "moment-text", class: "moment-input", rows: 3, maxlength: 2000, placeholder: "What's on your mind?", "aria-label": "New moment" });
  const place = h("input", { id: "moment-place", class: "moment-place", maxlength: 100, placeholder: "Place (optional)", "aria-label": "Place" });
  const mode = h(
    "select",
    { id: "moment-audience", class: "moment-audience", "aria-label": "Who can see it" },
    h("option", { value: "all" }, "All contacts"),
    h("option", { value: "only" }, "Only…"),
    h("option", { value: "except" }, "All except…"),
    h("option", { value: "me" }, "Only me"),
  );
  const picks = h("fieldset", { class: "moment-picks", hidden: true }, h("legend", {}, "Choose contacts"));
  function fillPicks() {
    const accepted = store.contacts.filter((c) => c.state === "accepted");
    mount(
      picks,
      h("legend", {}, mode.value === "only" ? "Who can see it" : "Who can't see it"),
      accepted.map((c) =>
        h("label", { class: "moment-pick" }, h("input", { type: "checkbox", value: c.identity_key }), " ", c.name),
      ),
    );
  }
  mode.addEventListener("change", () => {
    picks.hidden = !(mode.value === "only" || mode.value === "except");
    if (!picks.hidden) fillPicks();
  });
  const button = h("button", { type: "submit", class: "primary", id: "moment-post" }, "Post");
  const form = h("form", { class: "moment-compose" }, text, h("div", { class: "moment-options" }, place, mode, button), picks);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const chosen = [...picks.querySelectorAll("input:checked")].map((i) => i.value);
    button.disabled = true;
    const done = await guarded(() =>
      call("POST", "/moments", { text: text.value, place: place.value.trim(), audience: mode.value, chosen: picks.hidden ? [] : chosen }),
    );
    button.disabled = false;
    if (done) {
      text.value = "";
      place.value = "";
      toast("Posted");
      onPosted();
    }
  });
  return form;
}

function postItem(p, reload) {
  const commentInput = h("input", { class: "moment-comment-input", maxlength: 1000, placeholder: "Comment", "aria-label": "Comment" });
  const commentForm = h("form", { class: "moment-comment-form" }, commentInput);
  commentForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!commentInput.value.trim()) return;
    const done = await guarded(() => call("POST", `/moments/${p.id}/comments`, { text: commentInput.value }));
    if (done) reload();
  });
  const me = store.me ? store.me.identity_key : "";
  const liked = p.likes.includes(me);
  const like = h(
    "button",
    { type: "button", class: `link-button moment-like${liked ? " liked" : ""}`, "aria-pressed": String(liked) },
    liked ? "♥ Liked" : "♡ Like",
  );
  like.addEventListener("click", async () => {
    await guarded(() => call("POST", `/moments/${p.id}/like`, { liked: !liked }));
    reload();
  });
  const actions = [like];
  if (p.mine) {
    const del = h("button", { type: "button", class: "link-button moment-delete" }, "Delete");
    del.addEventListener("click", async () => {
      const done = await guarded(() => call("DELETE", `/moments/${p.id}`));
      if (done !== undefined) reload();
    });
    actions.push(del);
  }
  const comments = p.comments.map((c) => {
    const row = h("li", { class: "moment-comment", dataset: { comment: c.id } }, h("b", {}, nameOf(c.author)), ": ", c.text);
    if (p.mine || c.author === me) {
      const x = h("button", { type: "button", class: "link-button moment-uncomment", "aria-label": "Delete comment" }, "×");
      x.addEventListener("click", async () => {
        await guarded(() => call("DELETE", `/moments/${p.id}/comments/${c.id}`));
        reload();
      });
      row.append(" ", x);
    }
    return row;
  });
  return h(
    "li",
    { class: "moment", dataset: { post: p.id } },
    avatar(nameOf(p.poster), p.poster),
    h(
      "div",
      { class: "moment-main" },
      h("span", { class: "row-name moment-poster" }, nameOf(p.poster)),
      p.text ? h("p", { class: "moment-text" }, p.text) : null,
      p.media.length ? h("ul", { class: "moment-media" }, p.media.map((m) => h("li", {}, icon("chats", 14), " ", m.name))) : null,
      h("span", { class: "moment-meta" }, shortTime(p.posted_at_ms), p.place ? ` · ${p.place}` : ""),
      h("span", { class: "moment-actions" }, actions),
      p.likes.length ? h("p", { class: "moment-likes" }, "♥ ", p.likes.map(nameOf).join(", ")) : null,
      comments.length ? h("ul", { class: "moment-comments" }, comments) : null,
      commentForm,
    ),
  );
}

export function momentsView() {
  const list = h("ul", { class: "moment-list", "aria-label": "Moments" });
  let asked = 0;
  async function load() {
    const mine = ++asked;
    let got;
    try {
      got = await call("GET", "/moments?limit=50");
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (mine === asked) mount(list, h("li", { class: "empty error", role: "alert" }, err.message));
      return;
    }
    if (mine !== asked) return;
    if (!got.posts.length) {
      mount(list, h("li", { class: "empty" }, "No moments yet: write the first one above."));
    } else {
      mount(list, got.posts.map((p) => postItem(p, load)));
    }
    if (got.unread) {
      await call("POST", "/moments/read");
      refreshMomentsUnread();
    }
  }
  const el = h(
    "div",
    { class: "conversation panel moments-pane" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/discover", "aria-label": "Back" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, "Moments")),
    ),
    h("div", { class: "scroll" }, composer(load), list),
  );
  const listener = () => load();
  listeners.add(listener);
  load();
  return {
    el,
    update() {},
    destroy() {
      listeners.delete(listener);
      asked++;
    },
  };
}
