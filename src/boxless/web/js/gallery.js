// A chat's media gallery: Photos, Videos and Files tabs over the chat's files
// (GET /chats/{chat}/attachments, newest first, 60 at a time with "More"), and
// the auto-download setting. A photo or video opens the viewer; a file row
// shows where it was sent (the message in context) and saves it.

import { ApiError, call, imageUrl } from "./api.js";
import { MEDIA_ICON, contentUrl, formatSize, getAutoDownload, mediaKind, pathIcon, setAutoDownload } from "./attachments.js";
import { h, icon, mount, toast } from "./dom.js";
import { openViewer } from "./viewer.js";

const PAGE = 60;
const TABS = [
  ["photos", "Photos"],
  ["videos", "Videos"],
  ["files", "Files"],
];

function tabOf(a) {
  const k = mediaKind(a);
  return k === "image" ? "photos" : k === "video" ? "videos" : "files";
}

/** The button for a chat header. */
export function galleryButton(chat) {
  return h("button", { type: "button", class: "icon-button gallery-button", "aria-label": "Photos, videos and files", title: "Media", onclick: () => openGallery(chat) }, pathIcon(MEDIA_ICON));
}

/** The link to show message `id` of `chat` in its conversation. */
function messageHref(chat, id) {
  const [kind, key] = chat.split(":");
  return `#/${kind === "contact" ? "chat" : "group"}/${key}/m/${encodeURIComponent(id)}`;
}

export function openGallery(chat, start = "photos") {
  document.querySelector(".gallery")?.remove();
  let tab = start;
  let files = [];
  let next = null;
  let loaded = false;
  const before = document.activeElement;
  const body = h("div", { class: "gallery-body" });
  const more = h("button", { type: "button", class: "gallery-more", hidden: true, onclick: () => load() }, "More");
  const tabs = h(
    "div",
    { class: "gallery-tabs", role: "tablist" },
    TABS.map(([id, label]) => h("button", { type: "button", role: "tab", id: `gallery-tab-${id}`, "aria-selected": String(id === tab), onclick: () => select(id) }, label)),
  );
  const limit = h("input", { type: "number", min: "0", max: "2048", step: "1", id: "auto-download-mb", class: "auto-download" });
  const settings = h(
    "form",
    { class: "gallery-settings" },
    h("label", { for: "auto-download-mb" }, "Auto-download files up to"),
    limit,
    h("span", {}, "MB"),
    h("button", { type: "submit" }, "Save"),
    h("p", { class: "gallery-hint muted" }, "Larger files wait for Download. 0: never. Applies to every chat."),
  );
  const close = h("button", { type: "button", class: "icon-button", "aria-label": "Close media", onclick: () => done() }, icon("close"));
  const el = h(
    "div",
    { class: "gallery", role: "dialog", "aria-modal": "true", "aria-label": "Photos, videos and files", tabindex: "-1" },
    h("div", { class: "gallery-panel" }, h("header", { class: "gallery-top" }, h("h2", {}, "Media"), close), tabs, body, more, settings),
  );

  function done() {
    document.removeEventListener("keydown", onKey, true);
    el.remove();
    if (before && before.focus) before.focus({ preventScroll: true });
  }

  function onKey(ev) {
    if (ev.key === "Escape" && !document.querySelector(".viewer")) {
      ev.preventDefault();
      done();
    }
  }

  function select(id) {
    tab = id;
    for (const b of tabs.children) b.setAttribute("aria-selected", String(b.id === `gallery-tab-${id}`));
    draw();
  }

  function draw() {
    const shown = files.filter((a) => tabOf(a) === tab);
    more.hidden = next === null;
    if (!loaded) return mount(body, h("p", { class: "muted" }, "Loading…"));
    if (!shown.length) return mount(body, h("p", { class: "gallery-empty muted" }, `No ${tab} in this chat yet.`));
    if (tab === "files") {
      return mount(
        body,
        h(
          "ul",
          { class: "gallery-files" },
          shown.map((a) =>
            h(
              "li",
              {},
              h("span", { class: "att-file-icon", "aria-hidden": "true" }, mediaKind(a) === "voice" ? "🎤" : "📄"),
              h("a", { class: "att-name", href: messageHref(chat, a.message_id), onclick: () => done() }, a.name),
              h("span", { class: "att-size" }, formatSize(a.size)),
              a.state === "ready" || a.outgoing ? h("a", { class: "button att-save", href: contentUrl(a.message_id, a.index), download: a.name }, "Save") : fetchButton(a),
            ),
          ),
        ),
      );
    }
    const items = files.filter((a) => ["photos", "videos"].includes(tabOf(a))).slice().reverse(); // oldest first, like the chat
    mount(
      body,
      h(
        "div",
        { class: "gallery-grid" },
        shown.map((a) => {
          const cell = h("button", { type: "button", class: `gallery-cell ${tabOf(a)}`, "aria-label": `Open ${a.name}` });
          if (a.state === "ready" && tab === "photos") cell.append(h("img", { src: contentUrl(a.message_id, a.index), alt: "", loading: "lazy" }));
          else if (a.thumbnail) {
            const img = h("img", { alt: "" });
            imageUrl(`/messages/${encodeURIComponent(a.message_id)}/attachments/${a.index}/thumbnail`).then((u) => (img.src = u)).catch(() => img.remove());
            cell.append(img);
          } else cell.append(h("span", { class: "att-placeholder" }, tab === "videos" ? "🎬" : "🖼"));
          if (tab === "videos") cell.append(h("span", { class: "att-play", "aria-hidden": "true" }, "▶"));
          cell.addEventListener("click", () => openViewer(items, items.findIndex((x) => x.message_id === a.message_id && x.index === a.index)));
          return cell;
        }),
      ),
    );
  }

  /** Download (the node fetches, verifies and caches it), then Save. */
  function fetchButton(a) {
    const b = h("button", { type: "button", class: "att-get" }, a.state === "failed" ? "Try again" : "Download");
    b.addEventListener("click", async () => {
      b.disabled = true;
      b.textContent = "Downloading…";
      try {
        const row = await call("POST", `/messages/${encodeURIComponent(a.message_id)}/attachments/${a.index}/download`);
        Object.assign(a, row);
        if (row.state !== "ready") toast(row.error || "The file could not be fetched", "error");
        draw();
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        toast(err.message, "error");
        b.disabled = false;
        b.textContent = "Try again";
      }
    });
    return b;
  }

  async function load() {
    try {
      const page = await call("GET", `/chats/${encodeURIComponent(chat)}/attachments?limit=${PAGE}${next === null ? "" : `&before=${next}`}`);
      files = [...files, ...page.files];
      next = page.next;
      loaded = true;
      draw();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(err.message, "error");
    }
  }

  settings.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const mb = Number(limit.value);
    if (!Number.isFinite(mb) || mb < 0) return toast("Give a size in MB (0: never)", "error");
    try {
      const bytes = await setAutoDownload(Math.round(mb * 1024 * 1024));
      limit.value = String(Math.round(bytes / 1024 / 1024));
      toast("Saved");
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      toast(err.message, "error");
    }
  });
  getAutoDownload()
    .then((bytes) => (limit.value = String(Math.round(bytes / 1024 / 1024))))
    .catch(() => {});

  el.addEventListener("click", (ev) => ev.target === el && done());
  document.addEventListener("keydown", onKey, true);
  document.body.append(el);
  draw();
  load();
  el.focus();
  return { el, close: done };
}
