// Boxless mini-app runtime lock (docs/miniapps.md, "WebRTC and fresh realms").
// The app origin runs this first in every realm that can run code: it is the first
// <script> of every HTML page it serves and the first line of every script it serves
// (CSP: no inline script, no eval, scripts only from the app origin). It removes,
// non-configurably, every API that opens a socket the CSP does not govern — WebRTC's
// ICE sends STUN datagrams to any address, Chromium ignores CSP `webrtc 'block'` —
// and every way to a fresh realm that would still have them: frames, however made.
(function (w) {
  "use strict";
  var d = Object.defineProperty;
  var gopd = Object.getOwnPropertyDescriptor;
  var names = Object.getOwnPropertyNames;
  var apply = Reflect.apply;
  var hasOwn = Object.prototype.hasOwnProperty;
  var test = RegExp.prototype.test;
  var NETWORK = /^(webkit)?RTC|^WebTransport|^(UDP|TCP|TCPServer)Socket$|^MediaDevices$|^(webkit)?MediaStream$|^PresentationRequest$/;
  function gone(obj, name) {
    var desc = gopd(obj, name);
    if (desc && !desc.configurable) return; // locked before (this runs at the top of every script)
    try {
      d(obj, name, { value: undefined, writable: false, enumerable: false, configurable: false });
    } catch (e) {
      /* nothing to lock */
    }
  }
  var own = names(w);
  for (var i = 0; i < own.length; i++) if (apply(test, NETWORK, [own[i]])) gone(w, own[i]);
  var more = ["RTCPeerConnection", "webkitRTCPeerConnection", "RTCDataChannel", "RTCIceTransport", "RTCRtpSender", "RTCRtpReceiver", "RTCSctpTransport", "RTCDtlsTransport", "WebTransport", "MediaDevices", "UDPSocket", "TCPSocket"];
  for (i = 0; i < more.length; i++) gone(w, more[i]);
  if (w.Navigator) {
    var nav = ["mediaDevices", "getUserMedia", "webkitGetUserMedia", "mozGetUserMedia", "getDisplayMedia"];
    for (i = 0; i < nav.length; i++) gone(w.Navigator.prototype, nav[i]);
  }
  if (!w.document || apply(hasOwn, w, ["__boxlessRuntime"])) return; // a worker, or done
  d(w, "__boxlessRuntime", { value: 1, writable: false, enumerable: false, configurable: false });

  // Frames: a child browsing context is a fresh realm. Refuse to make frame elements,
  // remove any that reach the document however they came (parser, innerHTML, an
  // imported node...) synchronously after each insertion API and again from a
  // MutationObserver, and never hand out a frame's window.
  var doc = w.document;
  var FRAMES = "iframe,frame,object,embed,fencedframe,portal";
  var FRAME_TAG = /^(iframe|frame|object|embed|fencedframe|portal)$/i;
  var qsa = w.Document.prototype.querySelectorAll;
  var qsaEl = w.Element.prototype.querySelectorAll;
  var qsaFrag = w.DocumentFragment.prototype.querySelectorAll;
  var nlLength = gopd(w.NodeList.prototype, "length").get;
  var nlItem = w.NodeList.prototype.item;
  var removeEl = w.Element.prototype.remove;
  var toLower = String.prototype.toLowerCase;
  var nodeType = gopd(w.Node.prototype, "nodeType").get;
  var localName = gopd(w.Element.prototype, "localName").get;
  var split = String.prototype.split;
  var roots = []; // shadow roots, closed ones too
  function purgeList(list) {
    var n = apply(nlLength, list, []);
    for (var j = n - 1; j >= 0; j--) apply(removeEl, apply(nlItem, list, [j]), []);
  }
  function purge() {
    purgeList(apply(qsa, doc, [FRAMES]));
    for (var k = 0; k < roots.length; k++) purgeList(apply(qsaFrag, roots[k], [FRAMES]));
  }
  function clean(node) {
    // a node (or fragment) about to be inserted: strip frames from it first
    if (!node || typeof node !== "object") return;
    var type;
    try {
      type = apply(nodeType, node, []);
    } catch (e) {
      return; // not a node: a string, the native method decides
    }
    if (type === 1) {
      if (apply(test, FRAME_TAG, [apply(localName, node, [])])) throw new w.DOMException("mini apps cannot use frames", "NotSupportedError");
      purgeList(apply(qsaEl, node, [FRAMES]));
    } else if (type === 11) {
      purgeList(apply(qsaFrag, node, [FRAMES]));
    }
  }
  function lock(obj, name, value) {
    d(obj, name, { value: value, writable: false, enumerable: false, configurable: false });
  }
  function wrapInsert(proto, name) {
    var desc = proto && gopd(proto, name);
    if (!desc || typeof desc.value !== "function") return;
    var orig = desc.value;
    lock(proto, name, function () {
      for (var a = 0; a < arguments.length; a++) clean(arguments[a]);
      try {
        return apply(orig, this, arguments);
      } finally {
        purge();
      }
    });
  }
  function wrapSetter(proto, name) {
    var desc = proto && gopd(proto, name);
    if (!desc || !desc.set) return;
    var set = desc.set;
    d(proto, name, {
      get: desc.get,
      set: function (v) {
        try {
          apply(set, this, [v]);
        } finally {
          purge();
        }
      },
      enumerable: desc.enumerable,
      configurable: false,
    });
  }
  function nothing(proto, name) {
    var desc = proto && gopd(proto, name);
    if (!desc) return;
    if (desc.get) d(proto, name, { get: function () { return null; }, enumerable: desc.enumerable, configurable: false });
    else lock(proto, name, function () { return null; });
  }
  var P = w.Node.prototype;
  var E = w.Element.prototype;
  var inserting = [
    [P, ["appendChild", "insertBefore", "replaceChild"]],
    [E, ["append", "prepend", "before", "after", "replaceWith", "replaceChildren", "insertAdjacentElement", "insertAdjacentHTML", "insertAdjacentText", "setHTMLUnsafe", "setHTML", "moveBefore"]],
    [w.CharacterData.prototype, ["before", "after", "replaceWith"]],
    [w.DocumentType.prototype, ["before", "after", "replaceWith"]],
    [w.Document.prototype, ["append", "prepend", "replaceChildren", "write", "writeln", "open", "moveBefore", "adoptNode", "importNode"]],
    [w.DocumentFragment.prototype, ["append", "prepend", "replaceChildren", "moveBefore"]],
    [w.ShadowRoot && w.ShadowRoot.prototype, ["setHTMLUnsafe", "setHTML"]],
    [w.Range.prototype, ["insertNode", "surroundContents", "createContextualFragment"]],
    [w.Document.prototype, ["execCommand"]],
  ];
  for (i = 0; i < inserting.length; i++) for (var m = 0; m < inserting[i][1].length; m++) wrapInsert(inserting[i][0], inserting[i][1][m]);
  wrapSetter(E, "innerHTML");
  wrapSetter(E, "outerHTML");
  if (w.ShadowRoot) wrapSetter(w.ShadowRoot.prototype, "innerHTML");
  var attach = E.attachShadow;
  lock(E, "attachShadow", function () {
    var root = apply(attach, this, arguments);
    roots[roots.length] = root;
    return root;
  });
  var create = w.Document.prototype.createElement;
  var createNS = w.Document.prototype.createElementNS;
  lock(w.Document.prototype, "createElement", function (tag) {
    if (apply(test, FRAME_TAG, [apply(toLower, String(tag), [])])) throw new w.DOMException("mini apps cannot use frames", "NotSupportedError");
    return apply(create, this, arguments);
  });
  lock(w.Document.prototype, "createElementNS", function (ns, tag) {
    var parts = apply(split, apply(toLower, String(tag), []), [":"]);
    var local = parts[parts.length - 1];
    if (apply(test, FRAME_TAG, [local])) throw new w.DOMException("mini apps cannot use frames", "NotSupportedError");
    return apply(createNS, this, arguments);
  });
  nothing(w.HTMLIFrameElement && w.HTMLIFrameElement.prototype, "contentWindow");
  nothing(w.HTMLIFrameElement && w.HTMLIFrameElement.prototype, "contentDocument");
  nothing(w.HTMLFrameElement && w.HTMLFrameElement.prototype, "contentWindow");
  nothing(w.HTMLFrameElement && w.HTMLFrameElement.prototype, "contentDocument");
  nothing(w.HTMLObjectElement && w.HTMLObjectElement.prototype, "contentWindow");
  nothing(w.HTMLObjectElement && w.HTMLObjectElement.prototype, "contentDocument");
  nothing(w.HTMLObjectElement && w.HTMLObjectElement.prototype, "getSVGDocument");
  nothing(w.HTMLEmbedElement && w.HTMLEmbedElement.prototype, "getSVGDocument");
  // whatever path was missed (the page's own parser, a new API): removed before the
  // next task, so before a srcdoc or src navigation could commit
  new w.MutationObserver(purge).observe(doc, { childList: true, subtree: true });
})(self);
