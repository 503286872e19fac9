"""Calls in the browser: Chromium's fake camera and microphone, two real `boxless up`.

Alice video-calls Bob, Bob answers; both sides' getStats() show inbound audio
and video packets and decoded frames rising; Alice's mute stops her outbound
audio; hang-up ends both screens; a declined call and a call Alice gave up
before Bob answered (missed for Bob) leave call rows in Bob's chat.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_web import CHROMIUM_ARGS, DESKTOP, chromium_path, open_ui, shot
from tests.e2e.world import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.slow

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

# Test-only: keep each page's peer connections reachable for getStats().
RECORD_PCS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""

STATS = """
async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const r = {in_audio: 0, in_video: 0, frames: 0, out_audio: 0};
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") {
      r["in_" + s.kind] = s.packetsReceived || 0;
      if (s.kind === "video") r.frames = s.framesDecoded || 0;
    }
    if (s.type === "outbound-rtp" && s.kind === "audio") r.out_audio = s.packetsSent || 0;
  });
  return r;
}
"""


@pytest.fixture
def media_browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS + FAKE_MEDIA)
        try:
            yield b
        finally:
            b.close()


def _page(browser: Any, user: Any) -> Any:
    page = open_ui(browser, user, DESKTOP)
    page.add_init_script(RECORD_PCS)
    page.reload()
    return page


def _rising(page: Any, keys: tuple[str, ...]) -> dict[str, int]:
    first = page.evaluate(STATS)

    def grown() -> dict[str, int] | None:
        now = page.evaluate(STATS)
        return now if all(now[k] > first[k] > 0 for k in keys) else None

    return wait_for("stats rising", grown, timeout=15)


def test_a_video_call_end_to_end(world: Any, media_browser: Any) -> None:
    t0 = time.monotonic()
    alice, bob = world.persons("Carla", "Dario")
    world.befriend(alice, bob)
    ka, kb = world.key(alice), world.key(bob)
    print(f"people ready and befriended: {time.monotonic() - t0:.1f} s")
    pa, pb = _page(media_browser, alice), _page(media_browser, bob)
    pa.evaluate(f"location.hash = '#/chat/{kb}'")
    pb.evaluate(f"location.hash = '#/chat/{ka}'")

    started = time.monotonic()
    pa.click("#call-video")
    expect(pb.locator("#call-accept")).to_be_visible()
    rang = time.monotonic() - started
    expect(pa.locator("#call-status")).to_have_text("Ringing…")
    shot(pb, "ringing")
    answered = time.monotonic()
    pb.click("#call-accept")
    expect(pa.locator("#call-screen[data-phase=connected]")).to_be_attached()
    expect(pb.locator("#call-screen[data-phase=connected]")).to_be_attached()
    connect_s = time.monotonic() - answered
    code_a = pa.locator("#call-code").inner_text()
    assert code_a == pb.locator("#call-code").inner_text() and code_a.startswith("Call code ")

    keys = ("in_audio", "in_video", "frames")
    _rising(pa, keys)
    _rising(pb, keys)
    shot(pa, "in-call")
    print(f"media flowing both ways: {time.monotonic() - t0:.1f} s")
    sent = [u.call("GET", "/calls/current")["call"]["signal_bytes_sent"] for u in (alice, bob)]
    print(f"signalling bytes (plaintext, before Olm): caller {sent[0]}, callee {sent[1]}")
    assert all(n > 0 for n in sent)

    # Mute: Alice's outbound audio stops, then comes back on unmute.
    pa.click("#call-mute")
    expect(pa.locator("#call-mute")).to_have_attribute("aria-pressed", "true")
    time.sleep(0.5)  # packets already in flight
    before = pa.evaluate(STATS)["out_audio"]
    time.sleep(1.5)
    assert pa.evaluate(STATS)["out_audio"] - before <= 2
    pa.click("#call-mute")
    _rising(pa, ("out_audio",))

    pa.click("#call-hangup")
    expect(pa.locator("#call-screen")).to_have_count(0)
    expect(pb.locator("#call-screen")).to_have_count(0)
    print(f"hung up: {time.monotonic() - t0:.1f} s")

    # Declined by Bob; then Alice gives up before Bob answers (missed, for Bob).
    pa.click("#call-audio")
    pb.click("#call-decline")
    expect(pa.locator("#call-screen")).to_have_count(0)
    pa.click("#call-audio")
    expect(pb.locator("#call-accept")).to_be_visible()
    pa.click("#call-hangup")
    expect(pb.locator("#call-screen")).to_have_count(0)
    rows = pb.locator(".call-log .call-row")
    expect(rows).to_have_count(3)
    expect(pb.locator(".call-row[data-reason=missed]")).to_have_count(1)
    expect(pb.locator(".call-row[data-reason=declined]")).to_have_count(1)
    history = bob.call("GET", f"/calls?chat=contact:{ka}")["calls"]
    assert [c["reason"] for c in history] == ["missed", "declined", "hung_up"]
    assert history[2]["duration_s"] >= 1 and history[2]["video"]
    # Bad input from a (buggy or hostile) page: clear errors, nothing rings.
    bad = alice.request("POST", "/calls", {"chat": f"contact:{kb}", "sdp": "v=0\r\nm=audio"})
    assert bad.status_code == 422 and "SDP" in bad.text
    group = alice.request("POST", "/calls", {"chat": "group:" + "00" * 32, "sdp": "v=0"})
    assert group.status_code == 422
    assert alice.request("POST", f"/calls/{'00' * 16}/hangup").status_code == 400
    assert bob.call("GET", "/calls/current")["call"] is None
    print(f"call set-up: click -> ringing {rang:.2f} s, answer -> connected {connect_s:.2f} s")
