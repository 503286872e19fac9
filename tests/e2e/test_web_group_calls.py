"""A 4-person group video call in Chromium (fake camera and microphone), real processes.

A starts a call in a group of four; B, C and D join (D from the group chat's
banner, opened after the ring: the banner and the ring come back on page load);
each page holds three peer connections whose inbound audio and video bytes grow;
C leaves and the others keep two. Then the repairs: one side of the A-B pair sees
it fail and the offerer restarts ICE on the same connection (new ICE credentials
on both sides, the answerer keeps its connection); D's page is reloaded mid-call
and offers Rejoin, one click and new connections with A and B carry its media.
Screenshots: group-call-ring, group-call-grid, group-call-rejoin.
Members B, C, D are contacts of A only, so their pairs signal over member cards.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, WAIT_MS, open_ui, shot
from tests.e2e.test_web_calls import RECORD_PCS, media_browser
from tests.e2e.world import World, wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.slow
__all__ = ["media_browser"]  # a fixture (with RECORD_PCS: the 1:1 call tests' set-up)

# Inbound audio and video bytes of each open peer connection.
STATS = """
async () => {
  const out = [];
  for (const pc of window.__pcs) {
    if (pc.connectionState === "closed") continue;
    const r = {audio: 0, video: 0, state: pc.connectionState};
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp") r[s.kind] = s.bytesReceived || 0;
    });
    out.push(r);
  }
  return out;
}
"""


# Test-only hooks on the connection whose remote side has the DTLS fingerprint `fp`:
# its ICE credentials as each side uses them now; make the page see it fail (the app
# then repairs it for real: an ICE restart through the node).
PC_OF = """window.__pcs.find((p) => p.connectionState !== "closed" && p.remoteDescription
  && p.remoteDescription.sdp.includes(fp))"""
UFRAGS = f"""(fp) => {{
  const pc = {PC_OF};
  const ufrag = (d) => d && (d.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1];
  return pc ? {{local: ufrag(pc.localDescription), remote: ufrag(pc.remoteDescription),
               n: window.__pcs.length}} : null;
}}"""
FAIL_ICE = f"""(fp) => {{
  const pc = {PC_OF};
  Object.defineProperty(pc, "connectionState", {{get: () => "failed", configurable: true}});
  pc.dispatchEvent(new Event("connectionstatechange"));
  window.__failed = pc;
}}"""


def _page(browser: Any, user: Any, gid: str) -> Any:
    page = open_ui(browser, user, DESKTOP)
    page.add_init_script(RECORD_PCS)
    page.reload()
    page.evaluate(f"location.hash = '#/group/{gid}'")
    return page


def _flowing(page: Any, n: int) -> list[dict[str, Any]]:
    """``n`` open connections, each with inbound audio and video bytes growing."""
    first: list[dict[str, Any]] = []

    def grown() -> list[dict[str, Any]] | None:
        nonlocal first
        now = page.evaluate(STATS)
        if len(now) != n:
            first = []
            return None
        if not first:
            first = now
            return None
        ok = all(
            b["audio"] > a["audio"] > 0 and b["video"] > a["video"] > 0
            for a, b in zip(first, now, strict=True)
        )
        if not ok:
            first = now  # compare against the newest sample next time
        return now if ok else None

    return wait_for(f"{n} flowing connections", grown, timeout=WAIT_MS / 1000)


def _pair(user: Any, peer: Any) -> dict[str, Any]:
    """``user``'s node's view of its pair with ``peer`` (and the peer's DTLS fingerprint)."""
    call = user.call("GET", "/group-calls/current")["call"]
    assert call is not None
    [x] = [x for x in call["participants"] if x["key"] == World.key(peer)]
    found = re.search(r"a=fingerprint:sha-256 (\S+)", x["remote_sdp"] or "")
    return {**x, "fp": found.group(1) if found else ""}


def _restart_ice(world: Any, people: dict[str, tuple[Any, Any]], x: str, y: str) -> None:
    """The offerer of the x-y pair sees it fail: an ICE restart on the same connection."""
    (ux, px), (uy, py) = people[x], people[y]
    (uo, po), (ua, pa) = (
        ((ux, px), (uy, py)) if world.key(ux) < world.key(uy) else ((uy, py), (ux, px))
    )
    fo, fa = _pair(uo, ua)["fp"], _pair(ua, uo)["fp"]
    before_o, before_a = po.evaluate(UFRAGS, fo), pa.evaluate(UFRAGS, fa)
    po.evaluate(FAIL_ICE, fo)
    wait_for(
        "the restart offer", lambda: po.evaluate(UFRAGS, fo)["local"] != before_o["local"] or None
    )
    po.evaluate("() => delete window.__failed.connectionState")  # the real state again

    def restarted() -> bool | None:
        o, a = po.evaluate(UFRAGS, fo), pa.evaluate(UFRAGS, fa)
        return (
            o and a and o["remote"] != before_o["remote"] and a["local"] != before_a["local"]
        ) or None

    wait_for("new ICE credentials on both sides", restarted)
    assert pa.evaluate(UFRAGS, fa)["n"] == before_a["n"]  # the answerer kept its connection
    assert _pair(uo, ua)["gen"] > 0 and _pair(ua, uo)["gen"] > 0


def test_a_four_person_group_video_call(world: Any, media_browser: Any) -> None:
    t0 = time.monotonic()
    a, b, c, d = world.persons("Gina", "Hugo", "Ines", "Jonas")
    for m in (b, c, d):
        world.befriend(a, m)
    gid = world.group(a, [b, c, d], "Call club")
    print(f"people and group ready: {time.monotonic() - t0:.1f} s")
    pa, pb, pc_ = (_page(media_browser, u, gid) for u in (a, b, c))
    for p in (pa, pb, pc_):
        expect(p.locator("#group-call-video")).to_be_visible()

    started = time.monotonic()
    pa.click("#group-call-video")
    expect(pa.locator("#group-call-screen[data-phase=in-call]")).to_be_attached()
    for p in (pb, pc_):
        expect(p.locator("#gc-join")).to_be_visible()
    print(f"rang B and C: {time.monotonic() - started:.1f} s")
    shot(pb, "group-call-ring")
    # D opens its UI mid-ring: the ring and the chat's banner come back from the API
    pd = _page(media_browser, d, gid)
    expect(pd.locator("#gc-join")).to_be_visible()
    expect(pd.locator(".gc-banner-join")).to_be_attached()
    for p in (pb, pc_, pd):
        p.click("#gc-join")
    pages = {"A": pa, "B": pb, "C": pc_, "D": pd}
    for name, p in pages.items():
        expect(p.locator("#gc-grid .gc-tile:not(.me)")).to_have_count(3)
        _flowing(p, 3)
        print(f"{name}: 3 remote streams flowing at {time.monotonic() - started:.1f} s")
    expect(pa.locator("#gc-grid .gc-tile.connected")).to_have_count(3)
    names = pa.locator("#gc-grid .gc-name").all_inner_texts()
    assert set(names) >= {"You", "Hugo", "Ines", "Jonas"}, names
    expect(pa.locator("#gc-grid .gc-tile.speaking").first).to_be_attached()  # fake mic beeps
    # B mutes: A's tile of B shows it (B's audio bytes stop)
    tile_b = pa.locator(f'.gc-tile[data-key="{world.key(b)}"]')
    pb.click("#gc-mute")
    expect(tile_b).to_have_class(re.compile(r"\bmuted\b"))
    shot(pa, "group-call-grid")
    pb.click("#gc-mute")  # unmuted: its audio flows again
    expect(tile_b).not_to_have_class(re.compile(r"\bmuted\b"))
    # each pair shows one code on both sides
    code_ab = pa.locator(f'.gc-tile[data-key="{world.key(b)}"] .gc-code').inner_text()
    code_ba = pb.locator(f'.gc-tile[data-key="{world.key(a)}"] .gc-code').inner_text()
    assert code_ab == code_ba and len(code_ab) >= 6

    # C leaves: the others see two remote tiles and keep two connections
    pc_.click("#gc-leave")
    expect(pc_.locator("#group-call-screen")).to_have_count(0)
    for name in ("A", "B", "D"):
        p = pages[name]
        expect(p.locator("#gc-grid .gc-tile:not(.me)")).to_have_count(2)
        _flowing(p, 2)
    print(f"C left: {time.monotonic() - started:.1f} s")

    # repairs. (1) A-B fails on the offerer's side: an ICE restart, the same connections
    people = {"A": (a, pa), "B": (b, pb), "D": (d, pd)}
    _restart_ice(world, people, "A", "B")
    for p in (pa, pb):
        _flowing(p, 2)
    print(f"A-B restarted its ICE: {time.monotonic() - started:.1f} s")
    # (2) D reloads mid-call: the group chat offers Rejoin; one click and new
    # connections with A and B replace the old ones (a new epoch on every side)
    epochs = (_pair(a, d)["epoch"], _pair(b, d)["epoch"])
    pd.reload()
    wait_for(  # the page that went away told its node (pagehide)
        "D detached", lambda: d.call("GET", "/group-calls/current")["call"]["detached"] or None
    )
    expect(pd.locator("#gc-rejoin")).to_be_visible()
    expect(pd.locator(".gc-banner")).to_contain_text("its page was closed or reloaded")
    shot(pd, "group-call-rejoin")
    pd.click("#gc-rejoin")
    for name in ("A", "B", "D"):
        _flowing(pages[name], 2)
        expect(pages[name].locator("#gc-grid .gc-tile.connected")).to_have_count(2)
    assert _pair(a, d)["epoch"] > epochs[0] and _pair(b, d)["epoch"] > epochs[1]
    print(f"D rejoined: {time.monotonic() - started:.1f} s")
    # the ones who stayed leave; the group's call history has the call
    for name in ("A", "B", "D"):
        # (the grid re-renders while pairs to the one who just left close: C's leave
        # above clicked for real; these only end the call)
        pages[name].locator("#gc-leave").dispatch_event("click")
    rows = wait_for(
        "a group call row",
        lambda: [r for r in b.call("GET", f"/calls?chat=group:{gid}")["calls"]] or None,
    )
    assert rows[0]["started_by"] == world.key(a) and rows[0]["connected_at_ms"]
    print(f"whole test: {time.monotonic() - t0:.1f} s")
