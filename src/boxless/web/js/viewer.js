// The full-screen viewer of a chat's photos and videos.
//
// `openViewer(items, at)` shows item `at` of `items` (the chat's photos and
// videos, oldest first: rows of the attachments API with their message id).
// Arrow keys, the side buttons or a swipe move between them; Esc or × closes;
// Save downloads the file. A photo not fetched yet shows its thumbnail while
// the full image loads (the API fetches it first); a video plays from the
// API's content URL, which answers Range requests, so it starts before the
// whole file is here.

import { contentUrl, formatSize } from "./attachments.js";
import { h, icon, mount } from "./dom.js";

const SWIPE_PX = 50;

let current = null; // the open viewer (one at a time)

/** Close the open viewer, if any. */
export function closeViewer() {
  if (current) current.close();
}

export function openViewer(items, at = 0) {
  closeViewer();
  if (!items.length) return null;
  let index = Math.min(Math.max(0, at), items.length - 1);
  const before = document.activeElement;

  const stage = h("div", { class: "viewer-stage" });
  const counter = h("span", { class: "viewer-count", "aria-live": "polite" });
  const name = h("span", { class: "viewer-name" });
  const save = h("a", { class: "viewer-save button", "aria-label": "Save" }, "Save");
  const prev = h("button", { type: "button", class: "viewer-prev", "aria-label": "Previous" }, "‹");
  const next = h("button", { type: "button", class: "viewer-next", "aria-label": "Next" }, "›");
  const close = h("button", { type: "button", class: "icon-button viewer-close", "aria-label": "Close" }, icon("close"));
  const el = h(
    "div",
    { class: "viewer", role: "dialog", "aria-modal": "true", "aria-label": "Photos and videos", tabindex: "-1" },
    h("div", { class: "viewer-top" }, counter, name, save, close),
    stage,
    prev,
    next,
  );

  function draw() {
    const a = items[index];
    const url = contentUrl(a.message_id, a.index);
    counter.textContent = `${index + 1} / ${items.length}`;
    name.textContent = `${a.name} · ${formatSize(a.size)}`;
    save.href = url;
    save.setAttribute("download", a.name);
    prev.disabled = index === 0;
    next.disabled = index === items.length - 1;
    if (a.mime.startsWith("video/")) {
      mount(stage, h("video", { class: "viewer-media", src: url, controls: true, autoplay: true, playsinline: true }));
    } else {
      const img = h("img", { class: "viewer-media", src: url, alt: a.name, draggable: "false" });
      img.addEventListener("error", () => stage.append(h("p", { class: "viewer-error" }, "This photo could not be loaded.")), { once: true });
      mount(stage, img);
    }
    el.dataset.index = String(index);
  }

  function go(delta) {
    const to = index + delta;
    if (to < 0 || to >= items.length) return;
    index = to;
    draw();
  }

  function onKey(ev) {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      api.close();
    } else if (ev.key === "ArrowLeft") {
      ev.preventDefault();
      go(-1);
    } else if (ev.key === "ArrowRight") {
      ev.preventDefault();
      go(1);
    }
  }

  // swipe: a horizontal drag of more than SWIPE_PX moves one photo
  let startX = null;
  let swiped = false; // the click that ends a swipe does not close the viewer
  stage.addEventListener("pointerdown", (ev) => {
    startX = ev.clientX;
    swiped = false;
  });
  stage.addEventListener("pointerup", (ev) => {
    if (startX === null) return;
    const dx = ev.clientX - startX;
    startX = null;
    if (Math.abs(dx) > SWIPE_PX) {
      swiped = true;
      go(dx < 0 ? 1 : -1);
    }
  });
  stage.addEventListener("pointercancel", () => (startX = null));
  stage.addEventListener("dragstart", (ev) => ev.preventDefault()); // a drag is a swipe here, not a copy of the photo
  prev.addEventListener("click", () => go(-1));
  next.addEventListener("click", () => go(1));
  close.addEventListener("click", () => api.close());
  el.addEventListener("click", (ev) => {
    if ((ev.target === el || ev.target === stage) && !swiped) api.close();
    swiped = false;
  });

  const api = {
    el,
    go,
    close() {
      document.removeEventListener("keydown", onKey, true);
      el.remove();
      if (current === api) current = null;
      if (before && before.focus) before.focus({ preventScroll: true });
    },
  };
  document.addEventListener("keydown", onKey, true);
  document.body.append(el);
  draw();
  el.focus();
  current = api;
  return api;
}
