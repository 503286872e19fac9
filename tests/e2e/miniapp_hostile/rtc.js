// Loaded only by frames the hostile app tries to make (srcdoc, document.write, a
// closed declarative shadow root...): WebRTC in that fresh realm, aimed at the UDP
// port named in this script's query. The runtime lock, first line of every script
// the app origin serves, must have removed it here too.
(function () {
  var port = (document.currentScript && document.currentScript.src.split("?")[1]) || "0";
  try {
    var pc = new RTCPeerConnection({ iceServers: [{ urls: "stun:127.0.0.1:" + port }] });
    pc.createDataChannel("x");
    pc.createOffer().then(function (o) {
      return pc.setLocalDescription(o);
    });
  } catch (e) {
    /* locked */
  }
})();
