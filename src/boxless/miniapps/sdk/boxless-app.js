// Boxless mini-app SDK, bridge API v1 (docs/miniapps.md). Load it in your app's page:
//   <script src="/sdk/boxless-app.js"></script>   (served by the app origin)
// Your page runs in a sandboxed frame with no network: everything goes through
// window.Boxless, whose calls are answered by the Boxless app around you.
//   await Boxless.getUser()                -> {id, name?, avatar?}  (id: per app, pseudonymous)
//   await Boxless.backend.request(payload) -> the bot's response payload (end-to-end encrypted)
//   Boxless.backend.onMessage(fn)          -> fn(payload) for each push from the bot
//   await Boxless.pay({amount, token, memo, to, ref}) -> {deal} (the user confirms in Boxless)
//   await Boxless.release(deal)            -> the deal, released: the seller is paid (confirmed too)
//   await Boxless.shareToChat({title, text}) (the user picks the chat and confirms)
//   await Boxless.storage.get(key) / set(key, value)  (strings, per app, quota-limited)
// Each call rejects with an Error whose .code says why (permission_denied,
// permission_needed, suspended, timeout, ...).
(function () {
  "use strict";
  var pending = new Map();
  var listeners = [];
  var next = 1;

  function call(method, params) {
    return new Promise(function (resolve, reject) {
      var id = next++;
      pending.set(id, { resolve: resolve, reject: reject });
      window.parent.postMessage({ boxless: 1, id: id, method: method, params: params === undefined ? null : params }, "*");
    });
  }

  window.addEventListener("message", function (ev) {
    if (ev.source !== window.parent) return;
    var m = ev.data;
    if (!m || m.boxless !== 1) return;
    if (m.event === "backend.message") {
      listeners.forEach(function (fn) {
        try {
          fn(m.data);
        } catch (e) {
          console.error(e);
        }
      });
      return;
    }
    var p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (m.error) {
      var err = new Error(m.error.message);
      err.code = m.error.code;
      p.reject(err);
    } else {
      p.resolve(m.result);
    }
  });

  window.Boxless = Object.freeze({
    version: 1,
    getUser: function () {
      return call("getUser");
    },
    backend: Object.freeze({
      request: function (payload) {
        return call("backend.request", { payload: payload });
      },
      onMessage: function (fn) {
        if (listeners.length < 16) listeners.push(fn);
      },
    }),
    pay: function (order) {
      return call("pay", order);
    },
    release: function (deal) {
      return call("release", { deal: deal });
    },
    shareToChat: function (card) {
      return call("shareToChat", card);
    },
    storage: Object.freeze({
      get: function (key) {
        return call("storage.get", { key: key });
      },
      set: function (key, value) {
        return call("storage.set", { key: key, value: value });
      },
    }),
  });
})();
