// Runs while the page is parsed: document.write of a frame whose srcdoc runs a
// bundle script in its own realm (tests/e2e/test_miniapps_web.py).
"use strict";
window.EARLY = (function () {
  var port = __STUN__.write;
  var base = document.currentScript.src.replace(/early\.js.*$/, "");
  try {
    document.write('<iframe srcdoc="<script src=&quot;' + base + "rtc.js?" + port + '&quot;></scr' + 'ipt>"></iframe>');
    return document.querySelectorAll("iframe").length ? "frame_left" : "blocked";
  } catch (e) {
    return "blocked";
  }
})();
