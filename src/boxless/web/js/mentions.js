// @mentions in group messages: highlighting them in a message's text, and the
// composer's autocomplete (typing "@" lists the members and "all").
//
// A mention is "@" + a member's display name as the group knows it, or "@all".
// The names picked from the list are remembered with their identity keys, so
// the message names exactly those members even when two share a first word;
// text typed by hand is parsed by the node the same way.

import { h, mount } from "./dom.js";

const ALL = { key: "all", name: "all", hint: "everyone in the group" };

/**
 * The text as nodes, each "@name" of `names` (and "@all") in a <mark>;
 * `mine` is my own name, whose mentions get the class "me".
 *
 * `mentioned` is who the message mentions by identity key, as the node
 * recorded it when the message arrived: [{name, me}] with each one's name
 * today (or just `true`: it mentions me). A mentioned member whose "@name"
 * today is not in the text (renamed since, or known to the sender by another
 * name) takes the next "@word" that names no member, so a rename keeps the
 * highlight.
 */
export function highlight(text, names, mine, mentioned = null) {
  const who = mentioned === true ? [{ name: mine, me: true }] : Array.isArray(mentioned) ? mentioned : [];
  const all = [...names, ...who.map((w) => w.name)].filter(Boolean);
  const mineAs = [mine, ...who.filter((w) => w.me).map((w) => w.name)].filter(Boolean);
  const { parts, found } = highlightNames(text, all, mineAs);
  const missing = who.filter((w) => !w.name || !found.has(w.name.toLowerCase()));
  if (!missing.length) return parts;
  const known = all.map((n) => n.toLowerCase());
  const words = [];
  for (const m of text.matchAll(/(^|[\s(["'“])@([\p{L}\p{N}_.-]+)/gu)) {
    const word = m[2].replace(/[.-]+$/u, "");
    if (word && word.toLowerCase() !== "all" && !known.some((n) => n.startsWith(word.toLowerCase()))) words.push(word);
  }
  if (!words.length) return parts;
  const extra = missing.slice(0, words.length).map((w, i) => ({ ...w, name: words[i] }));
  const mineExtra = extra.filter((w) => w.me).map((w) => w.name);
  return highlightNames(text, [...all, ...extra.map((w) => w.name)], [...mineAs, ...mineExtra]).parts;
}

/** {parts, found}: the nodes, and the names (lower case) found as mentions. */
function highlightNames(text, names, mine) {
  const mineLower = new Set(mine.map((n) => n.toLowerCase()));
  const wanted = [...new Set([...names, ...mine, "all"])].filter(Boolean).sort((a, b) => b.length - a.length);
  const out = [];
  const seen = new Set();
  let plain = "";
  let i = 0;
  while (i < text.length) {
    const at = text.indexOf("@", i);
    if (at < 0) break;
    const before = at === 0 ? " " : text[at - 1];
    const found = /\s|[(["'“]/.test(before)
      ? wanted.find((n) => {
          const candidate = text.slice(at + 1, at + 1 + n.length);
          const after = text[at + 1 + n.length];
          return candidate.toLowerCase() === n.toLowerCase() && (after === undefined || !/[\p{L}\p{N}_]/u.test(after));
        })
      : undefined;
    if (found === undefined) {
      plain += text.slice(i, at + 1);
      i = at + 1;
      continue;
    }
    plain += text.slice(i, at);
    if (plain) out.push(plain);
    plain = "";
    const shown = text.slice(at, at + 1 + found.length);
    seen.add(found.toLowerCase());
    const me = found === "all" || mineLower.has(found.toLowerCase());
    out.push(h("mark", { class: `mention ${me ? "me" : ""}` }, shown));
    i = at + 1 + found.length;
  }
  plain += text.slice(i);
  if (plain) out.push(plain);
  return { parts: out, found: seen };
}

/**
 * Attach the mention picker to `input` (a textarea). `members()` returns
 * [{key, name}] of the other members. The returned object's `picked(text)`
 * gives {mentions, mention_all} for the text about to be sent (or {} when
 * nothing was picked, so the node parses the text), and `reset()` forgets.
 */
export function mentionPicker(input, members) {
  const list = h("ul", { class: "mention-list", role: "listbox", id: "mention-list", hidden: true, "aria-label": "Mention someone" });
  let options = [];
  let active = 0;
  let token = null; // {start, end} of the "@query" being typed
  const chosen = new Map(); // name -> key

  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", "mention-list");

  function query() {
    const caret = input.selectionStart ?? input.value.length;
    const upto = input.value.slice(0, caret);
    const m = /(^|\s)@([^\s@]{0,32})$/u.exec(upto);
    if (!m) return null;
    return { start: caret - m[2].length - 1, end: caret, text: m[2].toLowerCase() };
  }

  function render() {
    token = query();
    if (!token) return hide();
    const people = members().filter((p) => p.name.toLowerCase().includes(token.text));
    people.sort((a, b) => Number(!a.name.toLowerCase().startsWith(token.text)) - Number(!b.name.toLowerCase().startsWith(token.text)));
    options = [...people, ...("all".startsWith(token.text) ? [ALL] : [])];
    if (!options.length) return hide();
    active = Math.min(active, options.length - 1);
    mount(
      list,
      options.map((o, i) =>
        h(
          "li",
          {
            role: "option",
            id: `mention-opt-${i}`,
            class: i === active ? "active" : "",
            "aria-selected": i === active ? "true" : "false",
            onmousedown: (ev) => {
              ev.preventDefault(); // keep the focus in the textarea
              choose(o);
            },
          },
          h("span", { class: "mention-name" }, `@${o.name}`),
          o.hint ? h("span", { class: "mention-hint" }, o.hint) : null,
        ),
      ),
    );
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    input.setAttribute("aria-activedescendant", `mention-opt-${active}`);
  }

  function hide() {
    list.hidden = true;
    options = [];
    active = 0;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function choose(o) {
    const t = token || query();
    if (!t) return;
    const text = `@${o.name} `;
    input.value = input.value.slice(0, t.start) + text + input.value.slice(t.end);
    const caret = t.start + text.length;
    input.setSelectionRange(caret, caret);
    if (o.key !== "all") chosen.set(o.name, o.key);
    hide();
    input.dispatchEvent(new Event("input"));
  }

  input.addEventListener("input", render);
  input.addEventListener("click", render);
  input.addEventListener("blur", () => setTimeout(hide, 100));
  // Registered before the composer's own Enter handler, so a pick wins over sending.
  input.addEventListener("keydown", (ev) => {
    if (list.hidden || !options.length) return;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      active = (active + (ev.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
      render();
    } else if (ev.key === "Enter" || ev.key === "Tab") {
      ev.preventDefault();
      ev.stopImmediatePropagation();
      choose(options[active]);
    } else if (ev.key === "Escape") {
      ev.stopImmediatePropagation();
      hide();
    }
  });

  return {
    el: list,
    picked(text) {
      const keys = [...chosen].filter(([name]) => text.includes(`@${name}`)).map(([, key]) => key);
      if (!keys.length) return {};
      return { mentions: keys, mention_all: /(^|\s)@all\b/i.test(text) };
    },
    reset() {
      chosen.clear();
      hide();
    },
  };
}
