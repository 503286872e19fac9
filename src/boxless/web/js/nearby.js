// People Nearby (#/nearby, from Discover): opt in with the browser's location,
// see who else shares within a few kilometres (distance buckets only), say hello,
// accept hellos (the greeter becomes a contact), stop sharing.
//
// The position never leaves this device: the API turns it into a ~5 km cell and
// a ~1 km area at once (docs/nearby.md). For app.js: nearbyView, onNearbyEvent(ev).

import { ApiError, call } from "./api.js";
import { avatar, guarded, h, icon, mount, toast } from "./dom.js";
import { refreshAll } from "./store.js";

let current = null; // the open view's reload(), for events

/** A "nearby" event: the open view reloads (a hello also shows a toast). */
export function onNearbyEvent(ev) {
  if (ev.what === "hello") toast("Someone nearby said hello: see People Nearby");
  if (ev.what === "contact" || ev.what === "hello_accepted") refreshAll();
  if (current) current();
}

/** The events socket (re)opened: the open view re-reads cards and hellos it missed. */
export function resumeNearby() {
  if (current) current();
}

function position() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(new Error("This browser cannot tell your location."));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve(p.coords),
      (err) =>
        reject(
          new Error(
            err.code === 1
              ? "Location is blocked for this page: allow it in the browser's site settings, then try again."
              : "Your location could not be found: try again outdoors or later.",
          ),
        ),
      { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 },
    );
  });
}

function personRow(p, hello) {
  return h(
    "li",
    { class: "row nearby-person", dataset: { card: p.id } },
    avatar(p.name || "?", p.id, "", p.avatar),
    h(
      "span",
      { class: "row-main" },
      h(
        "span",
        { class: "row-top" },
        h("span", { class: "row-name" }, p.name || "Someone nearby"),
        h("span", { class: "nearby-distance" }, p.distance),
      ),
      p.status ? h("span", { class: "row-preview" }, p.status) : null,
    ),
    p.greeted
      ? h("span", { class: "nearby-sent" }, "Hello sent")
      : h("button", { type: "button", class: "primary", onclick: () => hello(p), "aria-label": `Say hello to ${p.name || "someone nearby"}` }, "Say hello"),
  );
}

function helloRow(x, accept, ignore) {
  return h(
    "li",
    { class: "row nearby-hello", dataset: { card: x.id } },
    avatar(x.name || "?", x.id),
    h(
      "span",
      { class: "row-main" },
      h("span", { class: "row-name" }, x.name || "Someone nearby"),
      h("span", { class: "row-preview" }, x.text ? `“${x.text}”` : "says hello"),
    ),
    h(
      "span",
      { class: "buttons" },
      h("button", { type: "button", class: "primary", onclick: () => accept(x), "aria-label": `Accept ${x.name || "hello"}` }, "Accept"),
      h("button", { type: "button", onclick: () => ignore(x) }, "Ignore"),
    ),
  );
}

export function nearbyView() {
  const name = h("input", { id: "nearby-name", type: "text", maxlength: 64, placeholder: "Optional", autocomplete: "off" });
  const status = h("input", { id: "nearby-status", type: "text", maxlength: 100, placeholder: "Optional: coffee, anyone?", autocomplete: "off" });
  const withPicture = h("input", { id: "nearby-avatar", type: "checkbox" });
  const error = h("p", { class: "error", role: "alert" });
  const startButton = h("button", { type: "submit", class: "primary", id: "nearby-start" }, "Share my location and look around");
  const optIn = h(
    "form",
    { class: "card nearby-optin" },
    h("h2", {}, "People Nearby"),
    h(
      "p",
      { class: "hint" },
      "See others who also opted in within a few kilometres. Only a ~5 km area is shared, under a new nickname key each time — never your position or who you are. ",
      "Anyone sharing nearby can see your card until you stop (it disappears within 5 minutes anyway).",
    ),
    h("label", { for: "nearby-name" }, "Name on your card"),
    name,
    h("label", { for: "nearby-status" }, "Status"),
    status,
    h("label", { class: "check" }, withPicture, " Show my picture"),
    error,
    h("div", { class: "buttons" }, startButton),
  );
  const where = h("p", { class: "hint nearby-where" });
  const hellosSection = h("section", { class: "section" }, h("h2", {}, "Hellos"), h("ul", { class: "rows", id: "nearby-hellos" }));
  const people = h("ul", { class: "rows", id: "nearby-people", "aria-label": "People nearby" });
  const stopButton = h("button", { type: "button", class: "danger", id: "nearby-stop" }, "Stop sharing and clear");
  const sharing = h(
    "div",
    { class: "nearby-sharing", hidden: true },
    where,
    hellosSection,
    h("section", { class: "section" }, h("h2", {}, "Nearby"), people),
    h("div", { class: "buttons nearby-stop-row" }, stopButton),
  );
  const el = h(
    "div",
    { class: "conversation panel nearby-pane" },
    h(
      "header",
      { class: "topbar conv-top" },
      h("a", { class: "icon-button back", href: "#/discover", "aria-label": "Back" }, icon("back")),
      h("div", { class: "conv-title" }, h("h2", { class: "conv-name" }, "People Nearby")),
    ),
    h("div", { class: "scroll" }, optIn, sharing),
  );

  function show(state) {
    optIn.hidden = state.sharing;
    sharing.hidden = !state.sharing;
    if (!state.sharing) return;
    where.textContent = `Sharing a ~5 km area as “${state.name || "someone nearby"}”. People here see your card; it is re-sent every minute.`;
    hellosSection.hidden = state.hellos.length === 0;
    mount(hellosSection.querySelector("ul"), state.hellos.map((x) => helloRow(x, accept, ignore)));
    mount(
      people,
      state.people.length
        ? state.people.map((p) => personRow(p, hello))
        : h("li", { class: "empty" }, "Nobody else is sharing nearby right now. Keep this open: cards arrive every minute."),
    );
  }

  let asked = 0;
  async function reload() {
    const mine = ++asked;
    try {
      const state = await call("GET", "/nearby");
      if (mine === asked) show(state);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (mine === asked) error.textContent = err.message;
    }
  }

  async function hello(p) {
    const text = "Hi! Saw you on People Nearby.";
    const state = await guarded(() => call("POST", `/nearby/people/${p.id}/hello`, { text }));
    if (state) {
      toast(`Hello sent to ${p.name || "someone nearby"}`);
      show(state);
    }
  }
  async function accept(x) {
    const state = await guarded(() => call("POST", `/nearby/hellos/${x.id}/accept`));
    if (state) {
      toast(`${x.name || "They"} will be a contact in a moment`);
      show(state);
      refreshAll();
    }
  }
  async function ignore(x) {
    const state = await guarded(() => call("DELETE", `/nearby/hellos/${x.id}`));
    if (state) show(state);
  }

  optIn.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    startButton.disabled = true;
    startButton.textContent = "Finding your location…";
    try {
      const c = await position();
      const state = await call("POST", "/nearby/start", {
        lat: c.latitude,
        lon: c.longitude,
        name: name.value.trim(),
        status: status.value.trim(),
        avatar: withPicture.checked,
      });
      show(state);
    } catch (err) {
      if (!(err instanceof ApiError) && !(err instanceof Error)) throw err;
      error.textContent = err.message;
    } finally {
      startButton.disabled = false;
      startButton.textContent = "Share my location and look around";
    }
  });
  stopButton.addEventListener("click", async () => {
    const state = await guarded(() => call("POST", "/nearby/stop"));
    if (state) {
      toast("Stopped sharing: your card is gone");
      show(state);
    }
  });

  current = reload;
  const timer = setInterval(reload, 30000); // cards expire even when no event comes
  reload();
  return {
    el,
    update() {},
    destroy() {
      clearInterval(timer);
      if (current === reload) current = null;
      asked++;
    },
  };
}
