"""The bot answers kept for app pages whose events socket was away
(boxless/miniapps/replies.py): bounds, expiry with ``now`` passed in, and the
bot (attacker-controlled) unable to add, replace or cross-answer — then the same
over the in-memory network and the local API route the page reads on reconnect."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.miniapps.replies import PendingReplies, RecentPushes
from tests.asgi_api import api_client
from tests.memnet_fixtures import befriend, memnet, settle, virtual_wall_clock, wait_for
from tests.unit.test_miniapps_client import bundle

__all__ = ["virtual_wall_clock"]

APP, OTHER = "org.example.shop", "org.example.poll"


def test_only_an_awaited_request_is_answered_once() -> None:
    p = PendingReplies(per_app=4, total=8, ttl_s=60)
    assert not p.offer(APP, "aa", {"forged": 1}, now=0)  # nobody asked: refused
    p.expect(APP, "r1", now=0)
    assert p.replies(APP, now=1) == []  # no answer yet: nothing to hand over
    assert not p.offer(OTHER, "r1", {"cross": 1}, now=1)  # another app's bot
    assert p.offer(APP, "r1", {"menu": 1}, now=2)
    assert not p.offer(APP, "r1", {"menu": "replaced"}, now=3)  # the first answer stays
    [r] = p.replies(APP, now=4)
    assert r.to_json() == {"request_id": "r1", "payload": {"menu": 1}}
    assert p.replies(APP, now=5) == [r]  # reading takes nothing: the page dedups
    assert p.replies(OTHER, now=5) == []
    p.forget(APP)  # uninstalled
    assert p.replies(APP, now=6) == [] and len(p) == 0


def test_slots_expire_with_the_time_passed_in() -> None:
    p = PendingReplies(ttl_s=60)
    p.expect(APP, "early", now=0)
    p.expect(APP, "late", now=30)
    assert p.offer(APP, "early", 1, now=59.9)
    assert p.offer(APP, "late", 2, now=59.9)
    assert [r.request_id for r in p.replies(APP, now=60)] == ["late"]
    assert not p.offer(APP, "early", 1, now=61)  # expired: a late answer is refused
    assert p.replies(APP, now=90) == [] and len(p) == 0


def test_bounded_per_app_and_in_all_the_oldest_gives_way() -> None:
    p = PendingReplies(per_app=3, total=5, ttl_s=60)
    for i in range(10):
        p.expect(APP, f"a{i}", now=i * 0.1)
    assert len(p) == 3
    assert not p.offer(APP, "a0", 0, now=1)  # pushed out by newer requests
    assert p.offer(APP, "a9", 9, now=1)
    for i in range(4):
        p.expect(OTHER, f"b{i}", now=2)
    assert len(p) == 5  # a7 gave way to b2 (all full), b0 to b3 (the app's own 3)
    assert [r.request_id for r in p.replies(APP, now=3)] == ["a9"]
    assert not p.offer(OTHER, "b0", 0, now=3) and p.offer(OTHER, "b3", 3, now=3)
    p.expect("org.example.x", "c0", now=4)  # the oldest in all: a8, then a9
    p.expect("org.example.x", "c1", now=4)
    assert p.replies(APP, now=5) == [] and len(p) == 5


def test_pushes_the_last_few_once_each_for_a_minute() -> None:
    p = RecentPushes(per_app=3, total=4, ttl_s=60)
    for i in range(5):
        p.add(APP, f"p{i}", {"n": i}, now=i)
    p.add(APP, "p4", {"n": "again"}, now=5)  # the same push id: kept once, as it was
    assert [(r.request_id, r.payload) for r in p.pushes(APP, now=6)] == [
        ("p2", {"n": 2}),
        ("p3", {"n": 3}),
        ("p4", {"n": 4}),
    ]
    p.add(OTHER, "q0", 0, now=7)
    p.add(OTHER, "q1", 1, now=7)  # all full: the oldest in all (p2) gives way
    assert [r.request_id for r in p.pushes(APP, now=8)] == ["p3", "p4"]
    assert [r.request_id for r in p.pushes(APP, now=63.5)] == ["p4"]  # p3 expired
    p.forget(APP)
    assert p.pushes(APP, now=64) == [] and len(p) == 2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["expect", "offer", "read"]),
            st.sampled_from([APP, OTHER, "org.example.x"]),
            st.integers(0, 40),
            st.floats(0, 5),
        ),
        max_size=200,
    )
)
def test_no_sequence_grows_it_past_its_bounds(ops: list[tuple[str, str, int, float]]) -> None:
    p = PendingReplies(per_app=4, total=6, ttl_s=10)
    now = 0.0
    answered: set[tuple[str, str]] = set()
    for op, app, n, dt in ops:
        now += dt
        rid = f"{n:032x}"
        if op == "expect":
            p.expect(app, rid, now)
        elif op == "offer":
            if p.offer(app, rid, n, now):
                assert (app, rid) not in answered  # never twice
                answered.add((app, rid))
        else:
            assert len({r.request_id for r in p.replies(app, now)}) == len(p.replies(app, now))
        assert len(p) <= 6
        assert all(len([r for r in p.replies(a, now)]) <= 4 for a in (APP, OTHER))


@pytest.mark.usefixtures("virtual_wall_clock")
async def test_the_page_reads_the_bots_answer_it_missed(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memnet(tmp_path, ("alice", "bot", "mallory")) as (_, (alice, bot, mallory)):
        await befriend(alice, bot)
        await befriend(alice, mallory)
        apps = alice.client.miniapps
        apps.install(bundle(bot.me))
        apps.decide(APP, "backend", True)
        rid = await apps.backend_request(apps.app(APP), {"menu": True})
        # mallory (a contact, not the bot) answers first; the bot answers a request
        # alice never made: neither is kept
        await mallory.client.miniapps.send_app_message(
            alice.me, APP, "response", bytes.fromhex(rid), b'{"pay":"mallory"}'
        )
        await bot.client.miniapps.send_app_message(
            alice.me, APP, "response", bytes(16), b'{"unasked":1}'
        )
        await mallory.client.miniapps.send_app_message(
            alice.me, APP, "push", bytes(16), b'{"order":"forged"}'
        )
        await settle(30)
        assert apps.replies(APP) == ([], [])
        await bot.client.miniapps.send_app_message(
            alice.me, APP, "response", bytes.fromhex(rid), b'{"coffee":3}'
        )
        await bot.client.miniapps.send_app_message(
            alice.me, APP, "push", bytes([7] * 16), b'{"order":"ready"}'
        )
        await wait_for(alice, lambda: all(apps.replies(APP)))
        async with api_client(alice.client) as api:
            r = await api.get(f"/miniapps/{APP}/replies")
            assert r.status_code == 200
            assert r.json() == {
                "replies": [{"request_id": rid, "payload": {"coffee": 3}}],
                "pushes": [{"request_id": "07" * 16, "payload": {"order": "ready"}}],
            }
            assert (await api.get("/miniapps/org.example.none/replies")).status_code == 404
            assert (await api.get("/miniapps/..%2Fx/replies")).status_code == 404
            await settle(61)  # the page gave up after 30 s; the answer is gone after 60
            assert (await api.get(f"/miniapps/{APP}/replies")).json() == {
                "replies": [],
                "pushes": [],
            }
