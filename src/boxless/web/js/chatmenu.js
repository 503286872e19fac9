// The chat list's row menu: pin/unpin, mark unread/read, mute/unmute, delete the
// chat for me. Opened by a row's "…" button, a right click, a long press (touch)
// or the context-menu key; keyboard-operable (arrows, Home/End, Escape, Tab).

import { ApiError, call } from "./api.js";
import { h, icon, mount, toast } from "./dom.js";
import { changeSettings, refreshSoon, settingsOf } from "./store.js";

let rowMenu = null; // {menu, open(info, opener, x, y), close()} of the chats view
const LONG_PRESS_MS = 500;

/** A list item holding a chat's row link and its "…" menu button (a sibling: never nested). */
export function chatItem(info, link) {
  const more = h(
    "button",
    {
      type: "button",
      class: "row-more",
      "aria-label": `More for ${info.name}`,
      "aria-haspopup": "menu",
      title: "Pin, mute, mark unread, delete",
      onclick: (ev) => {
        ev.preventDefault();
        ev.stopPropagation();
        rowMenu.open(info, more);
      },
    },
    "…",
  );
  link.addEventListener("contextmenu", (ev) => {
    ev.preventDefault();
    const keyboard = ev.button !== 2 && ev.clientX === 0 && ev.clientY === 0;
    rowMenu.open(info, more, keyboard ? null : ev.clientX, keyboard ? null : ev.clientY);
  });
  let press = null;
  link.addEventListener("pointerdown", (ev) => {
    if (ev.pointerType !== "touch") return;
    press = setTimeout(() => {
      press = "fired";
      rowMenu.open(info, more, ev.clientX, ev.clientY);
    }, LONG_PRESS_MS);
  });
  const cancel = () => {
    if (press && press !== "fired") clearTimeout(press);
  };
  link.addEventListener("pointerup", cancel);
  link.addEventListener("pointercancel", cancel);
  link.addEventListener("pointermove", cancel);
  link.addEventListener("click", (ev) => {
    if (press === "fired") ev.preventDefault(); // the long press opened the menu instead
    press = null;
  });
  return h("li", { class: `chat-item ${info.pinned ? "pinned" : ""}` }, link, more);
}

async function markRead(info) {
  const [kind, key] = info.chat.split(":");
  if (kind === "contact") await call("POST", `/contacts/${key}/read`);
  else if (info.lastSeq !== null) await call("POST", `/groups/${key}/read`, { seq: info.lastSeq });
  if (settingsOf(info.chat).marked_unread) await changeSettings(info.chat, { marked_unread: false });
  refreshSoon();
}

async function deleteChat(info) {
  const who = info.chat.startsWith("group:") ? "you stay in the group" : `${info.name} stays your contact`;
  if (!window.confirm(`Delete the chat with ${info.name}? Its messages are removed from this device; ${who}.`)) return;
  await call("DELETE", `/chats/${encodeURIComponent(info.chat)}`);
  if (location.hash.startsWith(info.href)) location.hash = "#/chats";
  toast(`Chat with ${info.name} deleted`);
  refreshSoon();
}

function makeRowMenu() {
  const menu = h("div", { class: "menu row-menu", role: "menu", id: "chat-row-menu", hidden: true });
  let opener = null;

  function item(text, iconName, action) {
    return h(
      "button",
      {
        type: "button",
        role: "menuitem",
        tabindex: "-1",
        onclick: async (ev) => {
          ev.stopPropagation();
          close(true);
          try {
            await action();
          } catch (err) {
            if (!(err instanceof ApiError)) throw err;
            toast(err.message, "error");
          }
        },
      },
      iconName ? icon(iconName, 20) : h("span", { class: "menu-icon-space" }),
      h("span", {}, text),
    );
  }

  function open(info, button, x = null, y = null) {
    const s = settingsOf(info.chat);
    const unread = info.unread > 0;
    mount(
      menu,
      item(s.pinned ? "Unpin" : "Pin to top", "pin", () => changeSettings(info.chat, { pinned: !s.pinned })),
      unread
        ? item("Mark as read", null, () => markRead(info))
        : item("Mark as unread", null, () => {
            if (location.hash.startsWith(info.href)) location.hash = "#/chats"; // leave it unread
            return changeSettings(info.chat, { marked_unread: true });
          }),
      item(info.muted ? "Unmute" : "Mute notifications", "muted", async () => {
        await changeSettings(info.chat, { muted: !info.muted });
        refreshSoon(); // a group's mute is the group's own flag
      }),
      item("Delete chat", "close", () => deleteChat(info)),
    );
    menu.setAttribute("aria-label", `${info.name}: chat options`);
    opener = button;
    button.setAttribute("aria-expanded", "true");
    menu.hidden = false;
    const host = menu.offsetParent || document.body;
    const box = host.getBoundingClientRect();
    const at = button.getBoundingClientRect();
    const left = x === null ? at.right - box.left - menu.offsetWidth : x - box.left;
    const top = y === null ? at.bottom - box.top + host.scrollTop : y - box.top + host.scrollTop;
    menu.style.left = `${Math.max(4, Math.min(left, box.width - menu.offsetWidth - 4))}px`;
    menu.style.top = `${Math.max(4, top)}px`;
    menu.querySelector("[role=menuitem]").focus();
    setTimeout(() => document.addEventListener("click", outside), 0);
  }

  function outside(ev) {
    if (!menu.contains(ev.target)) close(false);
  }

  function close(refocus) {
    if (menu.hidden) return;
    menu.hidden = true;
    document.removeEventListener("click", outside);
    if (opener) {
      opener.setAttribute("aria-expanded", "false");
      if (refocus && opener.isConnected) opener.focus();
    }
  }

  menu.addEventListener("keydown", (ev) => {
    const items = [...menu.querySelectorAll("[role=menuitem]")];
    const at = items.indexOf(document.activeElement);
    if (ev.key === "Escape") {
      ev.preventDefault();
      close(true);
    } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const step = ev.key === "ArrowDown" ? 1 : -1;
      items[(at + step + items.length) % items.length].focus();
    } else if (ev.key === "Home" || ev.key === "End") {
      ev.preventDefault();
      items[ev.key === "Home" ? 0 : items.length - 1].focus();
    } else if (ev.key === "Tab") {
      close(false);
    }
  });
  return { menu, open, close };
}

/** Make the menu of the chats view (its element goes into the list's scroll box). */
export function installRowMenu() {
  rowMenu = makeRowMenu();
  return rowMenu;
}
