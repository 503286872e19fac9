// The chat list's notification controls: the bell menu (state, "Turn on
// notifications", "Show message text in notifications") and the banner asking once.
// Permission is asked only from these clicks (js/notify.js does the rest).

import { h, icon, mount, toast } from "./dom.js";
import {
  bannerDismissed,
  dismissBanner,
  enableNotifications,
  permission,
  previewsShown,
  setPreviewsShown,
} from "./notify.js";

const BELL = "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm6-6v-5c0-3.1-1.6-5.6-4.5-6.3V4a1.5 1.5 0 0 0-3 0v.7C7.6 5.4 6 7.9 6 11v5l-2 2v1h16v-1z";

function bellIcon() {
  const svg = icon("chats", 22);
  svg.querySelector("path").setAttribute("d", BELL);
  return svg;
}

async function turnOn() {
  const result = await enableNotifications();
  if (result === "granted") toast("Notifications are on");
  else if (result === "denied") toast("Notifications are blocked: allow them in the browser's site settings", "error");
}

export function notifyMenu() {
  const menu = h("div", { class: "menu notify-menu", role: "menu", id: "notify-menu", hidden: true });
  const button = h(
    "button",
    {
      type: "button",
      class: "icon-button",
      "aria-label": "Notifications",
      "aria-haspopup": "menu",
      "aria-expanded": "false",
      "aria-controls": "notify-menu",
      onclick: (ev) => {
        ev.stopPropagation();
        if (menu.hidden) open();
        else close();
      },
    },
    bellIcon(),
  );
  function open() {
    const state = permission();
    const status = {
      granted: "Notifications are on for new messages while Boxless is in the background.",
      denied: "Notifications are blocked: allow them in the browser's site settings.",
      default: "Notifications are off.",
      unsupported: "This browser cannot show notifications.",
    }[state];
    mount(
      menu,
      h("p", { class: "menu-note" }, status),
      state === "default"
        ? h("button", { type: "button", role: "menuitem", onclick: () => { close(); turnOn(); } }, "Turn on notifications")
        : null,
      h(
        "button",
        {
          type: "button",
          role: "menuitemcheckbox",
          "aria-checked": String(previewsShown()),
          onclick: () => {
            setPreviewsShown(!previewsShown());
            close();
          },
        },
        h("span", { class: "check", "aria-hidden": "true" }, previewsShown() ? "✓" : ""),
        "Show message text in notifications",
      ),
    );
    menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    menu.querySelector("button").focus();
    document.addEventListener("click", close, { once: true });
  }
  function close() {
    menu.hidden = true;
    button.setAttribute("aria-expanded", "false");
  }
  menu.addEventListener("click", (ev) => ev.stopPropagation());
  menu.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      close();
      button.focus();
    }
  });
  return h("div", { class: "menu-anchor" }, button, menu);
}

export function notifyBanner() {
  if (permission() !== "default" || bannerDismissed()) return null;
  return h(
    "div",
    { class: "notify-banner", role: "region", "aria-label": "Notifications" },
    h("p", {}, "Get a notification when a message arrives while Boxless is in the background."),
    h(
      "div",
      { class: "notify-actions" },
      h("button", { type: "button", class: "primary", onclick: () => turnOn() }, "Turn on notifications"),
      h("button", { type: "button", onclick: () => dismissBanner() }, "Not now"),
    ),
  );
}
