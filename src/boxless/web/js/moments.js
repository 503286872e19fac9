// Moments (WeChat's 朋友圈): #/moments is the feed of my contacts' posts and mine,
// newest first (GET /moments), with a composer whose audience is chosen here
// (all contacts, only some, all except some, only me: POST /moments); each post
// can be liked, commented on (the comments shown are those of my contacts:
// the node already keeps only those) and, if mine, deleted. Opening the feed
// marks it read (POST /moments/read); the Discover tab shows the unread count.
//
// Photos: the composer takes up to 9 photos or one video (picker, previews,
// upload progress: each file goes to POST /moments/media first, then the post
// names their tokens); the feed shows them in a grid, a tap opens one full size.
// A comment can be replied to ("Reply" sets reply_to). A post may mention
// contacts who can see it ("@ Mention"); they get a notification.
//
// #/moments/<key> is that contact's page: their Moments cover (from their
// profile; a default until they set one), avatar and name, and their posts I
// may see. The poster's name and avatar in the feed lead there.
//
// Notifications (GET /moments/notices): likes and comments on my posts,
// replies to my comments, mentions; a bar on top of the feed says how many are
// new and opens the list (then they are read); the Discover badge counts
// unread posts and notifications.
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
    store.momentsUnread = got.unread + (got.notices_unread || 0);
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

/** The events socket (re)opened: the open feed and the badge re-read what they missed. */
export function resumeMoments() {
  for (const fn of listeners) fn({ type: "moment_changed", what: "resume" });
  return refreshMomentsUnread();
}

function nameOf(key) {
  if (store.me && key === store.me.identity_key) return store.me.name || "Me";
  const c = contact(key);
  return c ? c.name : "Someone";
}

export const MAX_PHOTOS = 9;
const mediaUrl = (postId, index) => `/api/v1/moments/${postId}/media/${index}`;

/** POST one photo or video to /moments/media with upload progress (XHR); its token. */
function uploadMedia(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const query = new URLSearchParams({ name: file.name || "photo", mime: file.type || "" });
    xhr.open("POST", `/api/v1/moments/media?${query}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText || "null");
      } catch (_) {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data.token);
      else reject(new ApiError(xhr.status, data?.error?.code || `http_${xhr.status}`, data?.error?.message || "the upload failed: try again"));
    };
    xhr.onerror = () => reject(new ApiError(0, "unreachable", "the upload broke off: is `boxless up` running?"));
    xhr.send(file);
  });
}

/** The composer's picked photos (or one video): previews with a remove button each. */
function mediaPicker() {
  const files = [];
  const urls = new Map();
  const input = h("input", { type: "file", id: "moment-files", accept: "image/*,video/*", multiple: true, hidden: true });
  const pick = h("button", { type: "button", class: "link-button moment-add-media", "aria-label": "Add photos or a video" }, "📷 Photos");
  const previews = h("ul", { class: "moment-previews", "aria-label": "Photos to post" });
  pick.addEventListener("click", () => input.click());
  function draw() {
    mount(
      previews,
      files.map((f, i) => {
        if (!urls.has(f)) urls.set(f, URL.createObjectURL(f));
        const x = h("button", { type: "button", class: "moment-preview-remove", "aria-label": `Remove ${f.name}` }, "×");
        x.addEventListener("click", () => {
          URL.revokeObjectURL(urls.get(f));
          urls.delete(f);
          files.splice(i, 1);
          draw();
        });
        const look = f.type.startsWith("image/") ? h("img", { src: urls.get(f), alt: f.name }) : h("span", { class: "moment-preview-video" }, "🎬 ", f.name);
        return h("li", { class: "moment-preview", dataset: { name: f.name } }, look, h("progress", { max: "1", value: "0", hidden: true, "aria-label": `Uploading ${f.name}` }), x);
      }),
    );
    previews.hidden = !files.length;
  }
  input.addEventListener("change", () => {
    const picked = [...input.files];
    input.value = "";
    const videos = [...files, ...picked].filter((f) => f.type.startsWith("video/"));
    const photos = [...files, ...picked].filter((f) => f.type.startsWith("image/"));
    if (picked.some((f) => !/^(image|video)\//.test(f.type))) toast("A moment carries photos or a video");
    else if (videos.length > 1 || (videos.length && photos.length)) toast("One video, or up to 9 photos");
    else if (photos.length > MAX_PHOTOS) toast(`At most ${MAX_PHOTOS} photos`);
    else files.push(...picked);
    draw();
  });
  draw();
  return {
    input,
    pick,
    previews,
    files,
    /** Upload every file in order (progress on its preview); their tokens. */
    async upload() {
      const tokens = [];
      const rows = [...previews.children];
      for (const [i, f] of files.entries()) {
        const bar = rows[i].querySelector("progress");
        bar.hidden = false;
        bar.max = String(f.size || 1);
        tokens.push(await uploadMedia(f, (sent) => (bar.value = String(sent))));
        bar.value = bar.max;
      }
      return tokens;
    },
    clear() {
      for (const u of urls.values()) URL.revokeObjectURL(u);
      urls.clear();
      files.splice(0);
      draw();
    },
  };
}

function composer(onPosted) {
  const text = h("textarea", { id: "moment-text", class: "moment-input", rows: 3, maxlength: 2000, placeholder: "What's on your mind?", "aria-label": "New moment" });
  const place = h("input", { id: "moment-place", class: "moment-place", maxlength: 100, placeholder: "Place (optional)", "aria-label": "Place" });
  const media = mediaPicker();
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
    // a tag (a contact list of mine, kept only here) picks everyone who carries it
    call("GET", "/contacts/notes")
      .then((notes) => {
        const byTag = new Map();
        for (const [key, n] of Object.entries(notes || {})) {
          for (const t of n.tags || []) byTag.set(t, [...(byTag.get(t) || []), key]);
        }
        if (!byTag.size || picks.hidden) return;
        const tags = [...byTag.keys()].sort((a, b) => a.localeCompare(b));
        picks.insertBefore(
          h(
            "div",
            { class: "moment-tag-picks" },
            tags.map((t) => {
              const b = h("button", { type: "button", class: "link-button moment-tag-pick" }, "# " + t);
              b.addEventListener("click", () => {
                for (const key of byTag.get(t)) {
                  const box = picks.querySelector(`input[value="${key}"]`);
                  if (box) box.checked = true;
                }
              });
              return b;
            }),
          ),
          picks.children[1] || null,
        );
      })
      .catch((err) => {
        if (!(err instanceof ApiError)) throw err;
      });
  }
  mode.addEventListener("change", () => {
    picks.hidden = !(mode.value === "only" || mode.value === "except");
    if (!picks.hidden) fillPicks();
  });
  const mentionPicks = h("fieldset", { class: "moment-picks moment-mentions", hidden: true });
  const mention = h("button", { type: "button", class: "link-button moment-mention", "aria-label": "Mention contacts" }, "@ Mention");
  mention.addEventListener("click", () => {
    mentionPicks.hidden = !mentionPicks.hidden;
    if (mentionPicks.hidden) return;
    const accepted = store.contacts.filter((c) => c.state === "accepted");
    mount(
      mentionPicks,
      h("legend", {}, "Mention (they get a notification)"),
      accepted.map((c) => h("label", { class: "moment-pick" }, h("input", { type: "checkbox", value: c.identity_key }), " ", c.name)),
    );
  });
  const button = h("button", { type: "submit", class: "primary", id: "moment-post" }, "Post");
  const form = h(
    "form",
    { class: "moment-compose" },
    text,
    media.previews,
    h("div", { class: "moment-options" }, media.pick, media.input, mention, place, mode, button),
    picks,
    mentionPicks,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const chosen = [...picks.querySelectorAll("input:checked")].map((i) => i.value);
    button.disabled = true;
    const done = await guarded(async () => {
      const tokens = media.files.length ? await media.upload() : [];
      return call("POST", "/moments", {
        text: text.value,
        place: place.value.trim(),
        audience: mode.value,
        chosen: picks.hidden ? [] : chosen,
        mentions: mentionPicks.hidden ? [] : [...mentionPicks.querySelectorAll("input:checked")].map((i) => i.value),
        media: tokens,
      });
    });
    button.disabled = false;
    if (done) {
      text.value = "";
      place.value = "";
      media.clear();
      mentionPicks.hidden = true;
      toast("Posted");
      onPosted();
    }
  });
  return form;
}

/** Full size: one photo of a post over everything; arrows move, Esc or × closes. */
function openPhoto(p, photos, at) {
  let index = at;
  const img = h("img", { class: "moment-full-img", alt: "" });
  const count = h("span", { class: "moment-full-count" });
  const close = h("button", { type: "button", class: "icon-button moment-full-close", "aria-label": "Close" }, icon("close"));
  const el = h("div", { class: "moment-full", role: "dialog", "aria-modal": "true", "aria-label": "Photo", tabindex: "-1" }, h("div", { class: "moment-full-top" }, count, close), img);
  function draw() {
    const m = photos[index];
    img.src = mediaUrl(p.id, m.index);
    img.alt = m.name;
    count.textContent = `${index + 1} / ${photos.length}`;
  }
  function onKey(ev) {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation(); // only the photo closes, not the pane under it
      shut();
    }
    else if (ev.key === "ArrowRight" && index < photos.length - 1) (index++, draw());
    else if (ev.key === "ArrowLeft" && index > 0) (index--, draw());
  }
  function shut() {
    document.removeEventListener("keydown", onKey, true);
    window.removeEventListener("hashchange", shut);
    el.remove();
  }
  window.addEventListener("hashchange", shut); // leaving the feed closes it too
  close.addEventListener("click", shut);
  el.addEventListener("click", (ev) => {
    if (ev.target === el) shut();
  });
  document.addEventListener("keydown", onKey, true);
  draw();
  document.body.append(el);
  el.focus();
}

/** A post's photos in a grid (1: large, 4: 2 × 2, else rows of 3), or its video. */
function mediaGrid(p) {
  if (!p.media.length) return null;
  const video = p.media.find((m) => m.kind === "video");
  if (video) return h("div", { class: "moment-video" }, h("video", { src: mediaUrl(p.id, video.index), controls: true, preload: "metadata", playsinline: true }));
  const photos = p.media.filter((m) => m.kind === "image");
  const shape = photos.length === 1 ? "one" : photos.length === 4 ? "four" : "many";
  return h(
    "ul",
    { class: `moment-media moment-media-${shape}`, "aria-label": "Photos" },
    photos.map((m, i) => {
      const b = h("button", { type: "button", class: "moment-photo", "aria-label": `Open ${m.name}` }, h("img", { src: mediaUrl(p.id, m.index), alt: m.name, loading: "lazy" }));
      b.addEventListener("click", () => openPhoto(p, photos, i));
      return h("li", {}, b);
    }),
  );
}

function postItem(p, reload) {
  const commentInput = h("input", { class: "moment-comment-input", maxlength: 1000, placeholder: "Comment", "aria-label": "Comment" });
  const commentForm = h("form", { class: "moment-comment-form" }, commentInput);
  let replyTo = null; // the comment a reply answers (its "Reply" button sets it)
  commentForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!commentInput.value.trim()) return;
    const body = { text: commentInput.value };
    if (replyTo) body.reply_to = replyTo;
    const done = await guarded(() => call("POST", `/moments/${p.id}/comments`, body));
    if (done) reload();
  });
  const byId = new Map(p.comments.map((c) => [c.id, c]));
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
    const to = c.reply_to ? byId.get(c.reply_to) : null;
    const who = to ? [h("b", {}, nameOf(c.author)), " replied to ", h("b", {}, nameOf(to.author))] : [h("b", {}, nameOf(c.author))];
    const row = h("li", { class: "moment-comment", dataset: { comment: c.id } }, who, ": ", c.text);
    if (c.author !== me) {
      const reply = h("button", { type: "button", class: "link-button moment-reply", "aria-label": `Reply to ${nameOf(c.author)}` }, "Reply");
      reply.addEventListener("click", () => {
        replyTo = c.id;
        commentInput.placeholder = `Reply to ${nameOf(c.author)}`;
        commentInput.focus();
      });
      row.append(" ", reply);
    }
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
    h("a", { href: `#/moments/${p.poster}`, class: "moment-avatar", "aria-hidden": "true", tabindex: "-1" }, avatar(nameOf(p.poster), p.poster)),
    h(
      "div",
      { class: "moment-main" },
      h("a", { href: `#/moments/${p.poster}`, class: "row-name moment-poster" }, nameOf(p.poster)),
      p.text ? h("p", { class: "moment-text" }, p.text) : null,
      mediaGrid(p),
      p.mentions.length ? h("p", { class: "moment-mentioned" }, "with ", p.mentions.map((k) => `@${nameOf(k)}`).join(", ")) : null,
      h("span", { class: "moment-meta" }, shortTime(p.posted_at_ms), p.place ? h("span", { class: "moment-place-name" }, ` · 📍 ${p.place}`) : ""),
      h("span", { class: "moment-actions" }, actions),
      p.likes.length ? h("p", { class: "moment-likes" }, "♥ ", p.likes.map(nameOf).join(", ")) : null,
      comments.length ? h("ul", { class: "moment-comments" }, comments) : null,
      commentForm,
    ),
  );
}

const NOTICE_TEXT = {
  like: () => "liked your moment",
  comment: (n) => `commented: ${n.text}`,
  reply: (n) => `replied to you: ${n.text}`,
  mention: () => "mentioned you in a moment",
};

/** The notifications bar (how many are new) and, once opened, the list; `onOpen(postId)`. */
function noticesPanel(onOpen) {
  const bar = h("button", { type: "button", class: "moment-notices-bar", hidden: true, "aria-live": "polite" });
  const list = h("ul", { class: "moment-notices", hidden: true, "aria-label": "Notifications" });
  bar.addEventListener("click", async () => {
    list.hidden = !list.hidden;
    if (list.hidden) return;
    const got = await guarded(() => call("GET", "/moments/notices?limit=100"));
    if (!got) return;
    mount(
      list,
      got.notices.length
        ? got.notices.map((n) => {
            const row = h(
              "li",
              { class: `moment-notice${n.unread ? " unread" : ""}`, dataset: { kind: n.kind, post: n.post_id } },
              avatar(nameOf(n.actor), n.actor, "small"),
              h("span", { class: "moment-notice-text" }, h("b", {}, nameOf(n.actor)), " ", NOTICE_TEXT[n.kind] ? NOTICE_TEXT[n.kind](n) : n.kind),
              h("span", { class: "moment-meta" }, shortTime(n.at_ms)),
            );
            row.addEventListener("click", () => onOpen(n.post_id));
            return row;
          })
        : h("li", { class: "empty" }, "No notifications yet."),
    );
    if (got.unread) {
      await call("POST", "/moments/notices/read");
      bar.classList.remove("has-new");
      bar.textContent = "🔔 Notifications";
      refreshMomentsUnread();
    }
  });
  return {
    bar,
    list,
    show(unread) {
      bar.hidden = false;
      bar.classList.toggle("has-new", unread > 0);
      bar.textContent = !unread ? "🔔 Notifications" : unread === 1 ? "🔔 1 new notification" : `🔔 ${unread} new notifications`;
    },
  };
}

function coverMime(b64) {
  if (b64.startsWith("iVBOR")) return "image/png";
  if (b64.startsWith("UklGR")) return "image/webp";
  return "image/jpeg";
}

/** A contact's page (or mine) on top of their posts: the cover, the avatar, the name. */
function coverHeader(poster) {
  const mine = store.me && poster === store.me.identity_key;
  const cover = h("div", { class: "moment-cover moment-cover-default", role: "img", "aria-label": "Cover photo" });
  const el = h("section", { class: "moment-page-head" }, cover, h("div", { class: "moment-page-who" }, h("span", { class: "moment-page-name" }, nameOf(poster)), avatar(nameOf(poster), poster, "large")));
  (async () => {
    const got = await call("GET", mine ? "/me/profile" : `/contacts/${poster}/profile`).catch(() => null);
    if (got && got.cover) {
      const img = h("img", { class: "moment-cover-img", src: `data:${coverMime(got.cover)};base64,${got.cover}`, alt: "" });
      img.addEventListener("error", () => img.remove(), { once: true });
      cover.classList.remove("moment-cover-default");
      cover.append(img);
    }
    if (got && got.status) el.append(h("p", { class: "moment-page-status" }, got.status));
  })();
  return el;
}

export function momentsView(poster = null) {
  const list = h("ul", { class: "moment-list", "aria-label": "Moments" });
  const panel = poster ? null : noticesPanel((postId) => {
    const row = list.querySelector(`.moment[data-post="${CSS.escape(postId)}"]`);
    if (row) {
      row.scrollIntoView({ block: "center" });
      row.classList.add("flash");
      setTimeout(() => row.classList.remove("flash"), 1500);
    }
  });
  let asked = 0;
  async function load() {
    const mine = ++asked;
    let got;
    try {
      got = await call("GET", poster ? `/moments?limit=50&poster=${poster}` : "/moments?limit=50");
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (mine === asked) mount(list, h("li", { class: "empty error", role: "alert" }, err.message));
      return;
    }
    if (mine !== asked) return;
    if (panel) panel.show(got.notices_unread || 0);
    if (!got.posts.length) {
      mount(list, h("li", { class: "empty" }, poster ? "No moments you can see." : "No moments yet: write the first one above."));
    } else {
      mount(list, got.posts.map((p) => postItem(p, load)));
    }
    if (got.unread) {
      await call("POST", "/moments/read");
      refreshMomentsUnread();
    }
  }
  const title = poster ? nameOf(poster) : "Moments";
  const top = poster ? [coverHeader(poster)] : [panel.bar, panel.list, composer(load)];
  const el = h(
    "div",
    { class: `conversation panel moments-pane${poster ? " moments-page" : ""}` },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: poster ? "#/moments" : "#/discover", "aria-label": "Back" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, title)),
    ),
    h("div", { class: "scroll" }, ...top, list),
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
