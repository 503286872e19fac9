// A mini app for tests/e2e/test_miniapp_share_web.py: shares one card on a click.
"use strict";
document.getElementById("share").addEventListener("click", async () => {
  const out = document.getElementById("out");
  try {
    out.textContent = JSON.stringify(await Boxless.shareToChat({ title: "Latte", text: "Order 42 is ready" }));
  } catch (e) {
    out.textContent = "error " + (e && e.message);
  }
});
