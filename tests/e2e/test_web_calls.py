"""Calls in the browser: Chromium's fake camera and microphone, two real `boxless up`.

Alice video-calls Bob, Bob answers; both sides' getStats() show inbound audio
and video packets and decoded frames rising; Alice's mute stops her outbound
audio; hang-up ends both screens; a declined call and a call Alice gave up
before Bob answered (missed for Bob) leave call rows in Bob's chat.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.eventgate import EventGate
from tests.e2e.test_web import CHROMIUM_ARGS, DESKTOP, WAIT_MS, chromium_path, open_ui, shot
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


def _page(browser: Any, user: Any, gate: EventGate | None = None) -> Any:
    page = open_ui(browser, user, DESKTOP)
    page.add_init_script(RECORD_PCS)
    if gate:
        gate.attach(page)
    page.reload()
    return page


def _rising(page: Any, keys: tuple[str, ...]) -> dict[str, int]:
    first = page.evaluate(STATS)

    def grown() -> dict[str, int] | None:
        now = page.evaluate(STATS)
        return now if all(now[k] > first[k] > 0 for k in keys) else None

    return wait_for("stats rising", grown, timeout=WAIT_MS / 1000)


def _settled(page: Any, key: str) -> int:
    """The counter ``key`` once it stopped moving for 0.5 s (bounded): a muted
    sender's last packets may take a while to be counted on a loaded machine."""
    last = page.evaluate(STATS)[key]

    def still() -> int | None:
        nonlocal last
        page.wait_for_timeout(500)
        now = int(page.evaluate(STATS)[key])
        if now == last:
            return now if now else None
        last = now
        return None

    return int(wait_for(f"{key} to stop rising", still, timeout=WAIT_MS / 1000))


def test_a_video_call_end_to_end(world: Any, media_browser: Any) -> None:
    t0 = time.monotonic()
    alice, bob = world.persons("Carla", "Dario")
    world.befriend(alice, bob)
    ka, kb = world.key(alice), world.key(bob)
    print(f"people ready and befriended: {time.monotonic() - t0:.1f} s")
    gate = EventGate()
    pa, pb = _page(media_browser, alice), _page(media_browser, bob, gate)
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
    assert code_a.startswith("Call code ")
    expect(pb.locator("#call-code")).to_have_text(code_a)

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
    before = _settled(pa, "out_audio")  # packets already in flight counted
    time.sleep(1.5)  # a window in which nothing may be sent
    assert pa.evaluate(STATS)["out_audio"] - before <= 2
    pa.click("#call-mute")
    _rising(pa, ("out_audio",))

    # Alice hangs up while Bob's page is away: its next socket shows the call ended
    # (the end's event reached nobody; the state comes from the API).
    gate.reconnect(pb, deaf=True)
    pa.click("#call-hangup")
    expect(pa.locator("#call-screen")).to_have_count(0)
    wait_for("Bob's node to end the call", lambda: not bob.call("GET", "/calls/current")["call"])
    expect(pb.locator("#call-screen")).to_have_count(1)  # nothing told the page yet
    gate.reconnect(pb, deaf=False)
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


# Test-only: force every peer connection through TURN (iceTransportPolicy "relay").
FORCE_RELAY = """
(() => {
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = function (config, ...rest) {
    return new Original({ ...(config || {}), iceTransportPolicy: "relay" }, ...rest);
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""

PAIR = """
async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
  return { local: local.candidateType, remote: remote.candidateType, state: pair.state };
}
"""


@pytest.fixture
def turn_node(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`boxless node --turn` on loopback: (turn URL, its secret file); stopped after."""
    import shutil

    if shutil.which("turnserver") is None:
        if os.environ.get("CI"):  # the test command installs it: CI must run this test
            pytest.fail("CI is set but coturn is not installed (scripts/install_coturn.sh)")
        pytest.skip("coturn is not installed (scripts/install_coturn.sh)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lo = 20000 + (port * 7) % 40000  # a relay range of its own (parallel runs)
    info = tmp_path / "node.json"
    cmd = [
        sys.executable, "-m", "boxless", "node", "--no-peer-exchange",
        "--data-dir", str(tmp_path / "node"), "--listen", "/ip4/127.0.0.1/tcp/0",
        "--info-file", str(info), "--turn", "--turn-listen", f"127.0.0.1:{port}",
        "--turn-relay-ports", f"{lo}-{lo + 63}", "--turn-allow-loopback",
    ]  # fmt: skip
    log = (tmp_path / "node.log").open("wb")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        got = wait_for("turn node", lambda: info.exists() and json.loads(info.read_text()), 30)
        turn = got["turn"]
        yield turn["url"], Path(turn["secret_file"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    pid_file = tmp_path / "node" / "turnserver.pid"
    if pid_file.exists():  # coturn stopped with the node
        pid = int(pid_file.read_text().strip() or 0)
        assert pid == 0 or not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_a_call_relayed_by_the_nodes_turn(world: Any, media_browser: Any, turn_node: Any) -> None:
    """Both browsers may use relay candidates only: the call connects through coturn
    (`boxless node --turn`) with credentials the client minted, and media flows."""
    url, secret = turn_node
    args = ["--ice-server", url, "--turn-secret-file", str(secret)]
    alice, bob = world.persons("Reta", "Remo", extra_args=args)
    world.befriend(alice, bob)
    servers = alice.call("GET", "/calls/current")["ice_servers"]
    assert servers[0]["urls"] == url and servers[0]["username"].split(":")[0].isdigit()
    assert int(servers[0]["username"].split(":")[0]) > time.time() + 600  # not yet expired

    def relay_page(user: Any) -> Any:
        page = open_ui(media_browser, user, DESKTOP)
        page.add_init_script(RECORD_PCS)
        page.add_init_script(FORCE_RELAY)
        page.reload()
        return page

    pa = relay_page(alice)
    pa.evaluate(f"location.hash = '#/chat/{world.key(bob)}'")
    pa.click("#call-audio")

    def ringing() -> bool:
        got = bob.call("GET", "/calls/current")["call"]
        return bool(got and got["phase"] == "incoming")

    wait_for("Bob's node rings", ringing, WAIT_MS / 1000)
    pb = relay_page(bob)  # a UI opened mid-ring shows the incoming call (state from the API)
    expect(pb.locator("#call-accept")).to_be_visible()
    pb.click("#call-accept")
    pages = [pa, pb]
    expect(pa.locator("#call-screen[data-phase=connected]")).to_be_attached()
    for page in pages:
        pair = wait_for("a selected pair", lambda p=page: p.evaluate(PAIR), WAIT_MS / 1000)
        assert pair["local"] == "relay", pair
        _rising(page, ("in_audio",))
    pa.click("#call-hangup")
    expect(pb.locator("#call-screen")).to_have_count(0)
