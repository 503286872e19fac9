// Scanning a QR code with the camera: BarcodeDetector where the browser has one
// (Chrome on Android and macOS), else the vendored jsQR (web/vendor/jsqr, loaded
// only when needed). Frames never leave the page; the camera stops as soon as a
// boxless:// link is read, on Cancel, or after SCAN_LIMIT_MS.

import { h } from "./dom.js";

const SCAN_LIMIT_MS = 120_000;
const FRAME_EVERY_MS = 150;
const MAX_SIDE = 720; // frames are scaled down to this for jsQR

/** True if this browser can give us a camera (a secure context with mediaDevices). */
export function cameraAvailable() {
  return Boolean(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

async function detector() {
  if ("BarcodeDetector" in window) {
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) {
        const native = new window.BarcodeDetector({ formats: ["qr_code"] });
        return async (video) => {
          const codes = await native.detect(video);
          return codes.length ? codes[0].rawValue : null;
        };
      }
    } catch (_) {
      // fall through to jsQR
    }
  }
  await import("../vendor/jsqr/jsQR.js"); // UMD: sets self.jsQR
  const jsQR = self.jsQR;
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  return async (video) => {
    const w = video.videoWidth;
    const hgt = video.videoHeight;
    if (!w || !hgt) return null;
    const scale = Math.min(1, MAX_SIDE / Math.max(w, hgt));
    canvas.width = Math.round(w * scale);
    canvas.height = Math.round(hgt * scale);
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const found = jsQR(img.data, img.width, img.height, { inversionAttempts: "attemptBoth" });
    return found ? found.data : null;
  };
}

/**
 * Open the camera in a dialog and call `onLink(text)` with the first boxless://
 * link read. `onError(message)` gets a message for people (no camera, refused).
 */
export async function scanQr(onLink, onError) {
  const video = h("video", { class: "scan-video", autoplay: true, muted: true, playsinline: true });
  const status = h("p", { class: "hint", "aria-live": "polite" }, "Starting the camera…");
  const dialog = h(
    "dialog",
    { class: "scan-dialog", "aria-label": "Scan a QR code" },
    h("h2", {}, "Scan a QR code"),
    video,
    status,
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => stop() }, "Cancel")),
  );
  let stream = null;
  let timer = null;
  let done = false;
  function stop() {
    done = true;
    clearTimeout(timer);
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (dialog.open) dialog.close();
    dialog.remove();
  }
  dialog.addEventListener("cancel", () => stop());
  document.body.append(dialog);
  dialog.showModal();
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (err) {
    stop();
    const denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
    onError(denied
      ? "The browser was not allowed to use the camera: allow it, or choose a picture of the QR code"
      : "No camera was found: choose a picture of the QR code instead");
    return;
  }
  if (done) return stop();
  video.srcObject = stream;
  await video.play().catch(() => {});
  const read = await detector();
  status.textContent = "Hold the QR code in front of the camera.";
  const until = Date.now() + SCAN_LIMIT_MS;
  const tick = async () => {
    if (done) return;
    if (Date.now() > until) {
      stop();
      onError("No QR code was read: try again closer, or choose a picture of it");
      return;
    }
    let text = null;
    try {
      text = await read(video);
    } catch (_) {
      text = null; // a frame that could not be read: try the next
    }
    if (text && /^boxless:\/\//i.test(text.trim())) {
      stop();
      onLink(text.trim());
      return;
    }
    if (text) status.textContent = "That QR code is not a Boxless link.";
    timer = setTimeout(tick, FRAME_EVERY_MS);
  };
  tick();
}
