"""Fault scenarios on real processes: `boxless up` clients and `boxless node` service nodes.

Used by the quick cases (tests/integration/test_faults.py) and the long runner
(bench/fault_runner.py); both call the same scenario functions with other counts.

Theory of operation
-------------------
:class:`World` starts two service nodes (s2 peers s1) and Alice and Bob as
`boxless up` processes (Alice prefers s1, Bob s2), makes them contacts through
the local API and talks to them only through it (:class:`Api`, async httpx on
trio). Waiting is :func:`wait_until`: the condition is re-checked on each
event of the users' WebSocket event streams (``/api/v1/events``), at least
once a second while a process restarts (its stream is gone), with a deadline;
a timeout says what each side shows.

*Client kill -9* (:func:`client_kills`): each iteration Alice sends ``k``
texts to Bob and Bob one to Alice, through the API, while a killer SIGKILLs
Alice or Bob (random) at a moment drawn uniformly over the send/receive window
(measured by a first iteration without a kill), then restarts it. A POST cut
by the kill is in doubt: once the sender is back, its own history says whether
the text was stored; if not, it is posted again (what a user would do). After
each iteration, every text ever sent must be in both histories exactly once,
in send order; at the end every outgoing text is ``delivered`` and a final
text each way arrives (the Olm ratchets survived every kill).

*Service node kill -9* (:func:`service_kill_burst`): Alice sends ``n`` texts
in a burst; after a third of them s1 (Alice's preferred node) is SIGKILLed,
and restarted on its old port when two thirds were posted; Bob must end with
each text exactly once, in order, all delivered.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
import trio_websocket

from tests.chat_fixtures import make_account
from tests.nodeproc import NodeProcess
from tests.userproc import UserProcess

SERVICE = ["--store", "--filter", "--lightpush"]
HISTORY_LIMIT = 500  # the API's page size; a conversation here stays below it
RECHECK_S = 1.0  # re-check a condition at least this often (a restarting process sends no events)
CUT_BY_KILL = (httpx.TransportError, httpx.TimeoutException)


class Api:
    """Async calls to one user's local API (its address changes on each restart)."""

    def __init__(self, user: UserProcess) -> None:
        self.user = user
        self.back = trio.Event()  # set when the process (re)started
        self.back.set()

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.request(
                method,
                self.user.url + "/api/v1" + path,
                json=body,
                headers={"Authorization": f"Bearer {self.user.token}"},
            )
        assert r.status_code < 400, f"{self.user.name} {method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    async def history(self, contact: str) -> list[dict[str, Any]]:
        """The whole 1:1 history with ``contact``, oldest first (paged by Lamport time;
        the two sides' messages may share one, so each page overlaps the last by one
        tick and rows are merged by id)."""
        path = f"/contacts/{contact}/messages?limit={HISTORY_LIMIT}"
        rows: dict[str, dict[str, Any]] = {}
        page = list(await self.call("GET", path))
        while True:
            new = [m for m in page if m["id"] not in rows]
            rows.update((m["id"], m) for m in page)
            if len(page) < HISTORY_LIMIT or not new:
                break
            oldest = min(m["lamport"] for m in page)
            page = list(await self.call("GET", f"{path}&before={oldest + 1}"))
        return sorted(rows.values(), key=lambda m: (m["lamport"], m["sent_at_ms"], m["id"]))

    async def kill_and_restart(self) -> float:
        """SIGKILL the process, start it again; return the seconds it was away."""
        self.back = trio.Event()
        t0 = time.monotonic()
        self.user.kill()
        await trio.to_thread.run_sync(start_user, self.user.launch(), 90)
        self.back.set()
        return time.monotonic() - t0


def start_user(user: UserProcess, timeout: float) -> UserProcess:
    """``user.wait_ready``, tolerating an api.json caught half-written (`boxless up`
    creates it, then writes it: not atomic)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return user.wait_ready(max(1.0, deadline - time.monotonic()))
        except json.JSONDecodeError:
            time.sleep(0.05)  # the writer is between open() and write()


async def _forward_events(api: Api, send: trio.MemorySendChannel[str | bytes]) -> None:
    """Every event of ``api``'s stream into ``send``; ends quietly when the process dies."""
    url = api.user.url.replace("http://", "ws://") + f"/api/v1/events?token={api.user.token}"
    try:
        async with trio_websocket.open_websocket_url(url) as ws:
            while True:
                await send.send(await ws.get_message())
    except (trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, OSError):
        return


async def wait_until(
    what: str,
    apis: list[Api],
    check: Callable[[], Awaitable[bool]],
    show: Callable[[], Awaitable[str]],
    timeout: float,
) -> None:
    """Until ``await check()``: re-checked on each event of the users' streams (or
    every :data:`RECHECK_S`); past ``timeout`` fail with what ``show`` says."""
    send, recv = trio.open_memory_channel[str | bytes](256)
    async with trio.open_nursery() as nursery:
        streams: dict[int, trio.Event] = {}
        deadline = trio.current_time() + timeout
        while True:
            for api in apis:  # (re)open the stream of each process that is up
                if api.back.is_set() and streams.get(id(api)) is not api.back:
                    streams[id(api)] = api.back
                    nursery.start_soon(_forward_events, api, send.clone())
            try:
                if await check():
                    break
            except CUT_BY_KILL:
                pass  # a process went down under us: look again when it is back
            if trio.current_time() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what}:\n" + await show()
                )
            with trio.move_on_after(RECHECK_S):
                await recv.receive()
                while True:  # a burst of events: one re-check
                    try:
                        recv.receive_nowait()
                    except trio.WouldBlock:
                        break
        nursery.cancel_scope.cancel()


@dataclass
class World:
    root: Path
    s1: NodeProcess
    s2: NodeProcess
    alice: Api
    bob: Api
    carol: Api | None = None  # a third member of the group (never killed)
    keys: dict[str, str] = field(default_factory=dict)  # name -> identity key
    gid: str = ""  # the group of Alice, Bob and (now and then) Carol

    def of(self, api: Api) -> str:
        """The identity key of the other side."""
        return self.keys["bob" if api is self.alice else "alice"]

    def stop(self) -> None:
        """Kill every process of the world."""
        for api in (self.alice, self.bob, self.carol):
            if api is not None:
                api.user.kill()
        for node in (self.s1, self.s2):
            node.kill()


async def open_world(root: Path, carol: bool = False) -> World:
    """Two service nodes, Alice and Bob up and contacts of each other; with ``carol``,
    Carol too (Alice's contact) and a group of the three (:func:`make_group`).
    :meth:`World.stop` kills them all (so does a failure here)."""
    started: list[NodeProcess | UserProcess] = []
    try:
        s1 = NodeProcess("s1", root / "s1", SERVICE).start()
        started.append(s1)
        s2 = NodeProcess("s2", root / "s2", [*SERVICE, "--peer", s1.addr]).start()
        started.append(s2)
        users = {}
        names = [("alice", [s1.addr, s2.addr]), ("bob", [s2.addr, s1.addr])]
        if carol:
            names.append(("carol", [s1.addr, s2.addr]))
        for name, peers in names:
            make_account(root / name, name.title()).close()  # a fast KDF: restarts in ~2.5 s
            users[name] = UserProcess(name, root / name, peers).launch()
            started.append(users[name])
        for user in users.values():
            await trio.to_thread.run_sync(start_user, user, 90)
        w = World(root, s1, s2, Api(users["alice"]), Api(users["bob"]))
        w.carol = Api(users["carol"]) if carol else None
        await _befriend(w)
        if w.carol is not None:
            await make_group(w)
        return w
    except BaseException:
        for p in started:
            p.kill()
        raise


@asynccontextmanager
async def world(root: Path, carol: bool = False) -> AsyncIterator[World]:
    """:func:`open_world`, stopped on the way out."""
    w = await open_world(root, carol)
    try:
        yield w
    finally:
        w.stop()


async def _befriend(w: World) -> None:
    """Alice and each other user add each other's link: crossed requests accept."""
    apis = {"alice": w.alice, "bob": w.bob} | ({"carol": w.carol} if w.carol else {})
    me = {name: await api.call("GET", "/me") for name, api in apis.items()}
    w.keys = {name: m["identity_key"] for name, m in me.items()}
    for name, api in apis.items():
        if name != "alice":
            await w.alice.call("POST", "/contacts", {"link": me[name]["link"]})
            await api.call("POST", "/contacts", {"link": me["alice"]["link"]})

    async def states() -> list[str]:
        return [c["state"] for api in apis.values() for c in await api.call("GET", "/contacts")]

    async def accepted() -> bool:
        return await states() == ["accepted"] * (2 * len(apis) - 2)

    async def show() -> str:
        return f"contact states: {await states()}"

    await wait_until("Alice and the others to accept", list(apis.values()), accepted, show, 90)


# -- the group -------------------------------------------------------------------------------


async def make_group(w: World) -> None:
    """Alice creates a group and invites Bob and Carol; every device shows the three."""
    w.gid = (await w.alice.call("POST", "/groups", {"name": "Faults"}))["id"]
    for name in ("bob", "carol"):
        await w.alice.call("POST", f"/groups/{w.gid}/members", {"identity_key": w.keys[name]})
    everyone = {w.keys[n] for n in ("alice", "bob", "carol")}
    apis = [w.alice, w.bob, *([w.carol] if w.carol else [])]

    async def all_three() -> bool:
        return all([await members(a, w.gid) == everyone for a in apis])

    async def show() -> str:
        return "\n".join([f"{a.user.name}: {await members(a, w.gid)}" for a in apis])

    await wait_until("the group of three on every device", apis, all_three, show, 90)


async def members(api: Api, gid: str) -> set[str] | None:
    """The member keys this device shows (None: it does not know the group)."""
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(
            f"{api.user.url}/api/v1/groups/{gid}",
            headers={"Authorization": f"Bearer {api.user.token}"},
        )
    if r.status_code in (400, 404):
        return None
    assert r.status_code == 200, f"{api.user.name}: {r.status_code} {r.text}"
    return {m["identity_key"] for m in r.json()["members"]}


async def group_texts(api: Api, gid: str) -> list[dict[str, Any]]:
    """This device's group texts (no membership events), oldest first."""
    out: list[dict[str, Any]] = []
    before = ""
    while True:
        page = list(await api.call("GET", f"/groups/{gid}/messages?limit=500{before}"))
        out[:0] = page
        if len(page) < 500:
            return [m for m in out if m.get("kind", "text") == "text"]
        before = f"&before={page[0]['seq']}"


async def post_group_text(w: World, api: Api, text: str, log: list[str], stats: SendStats) -> None:
    """:func:`send_texts` for a group text."""
    while True:
        try:
            await api.call("POST", f"/groups/{w.gid}/messages", {"text": text})
            stats.posted += 1
            break
        except CUT_BY_KILL:
            stats.cut += 1
            await api.back.wait()
            if text in {m["text"] for m in await group_texts(api, w.gid)}:
                stats.cut_but_stored += 1
                break
    log.append(text)


async def toggle_carol(w: World, stats: SendStats) -> bool:
    """Alice removes Carol if she is a member, else invites her back; returns whether
    Carol is a member after. A call cut by a kill is looked up once Alice is back."""
    carol = w.keys["carol"]
    while True:
        try:
            before = await members(w.alice, w.gid)
            break
        except CUT_BY_KILL:
            await w.alice.back.wait()
    assert before is not None
    want = carol not in before
    while True:
        try:
            if want:
                await w.alice.call("POST", f"/groups/{w.gid}/members", {"identity_key": carol})
            else:
                await w.alice.call("DELETE", f"/groups/{w.gid}/members/{carol}")
            return want
        except CUT_BY_KILL:
            stats.cut += 1
            await w.alice.back.wait()
            now = await members(w.alice, w.gid)
            if now is not None and (carol in now) == want:
                stats.cut_but_stored += 1
                return want


# -- checks ----------------------------------------------------------------------------------


async def check_conversation(w: World, sent: dict[str, list[str]], delivered: bool) -> None:
    """Each side's history holds exactly the texts sent each way, once each, in send
    order (``sent``: name -> texts in the order posted); ``delivered``: and every
    outgoing one is delivered (or read)."""
    for name, api, other in (("alice", w.alice, "bob"), ("bob", w.bob, "alice")):
        rows = await api.history(w.of(api))
        mine = [m["text"] for m in rows if m["outgoing"]]
        theirs = [m["text"] for m in rows if not m["outgoing"]]
        assert mine == sent[name], f"{name}'s own texts: {_diff(sent[name], mine)}"
        assert theirs == sent[other], f"{name} got from {other}: {_diff(sent[other], theirs)}"
        if delivered:
            stuck = [m["text"] for m in rows if m["outgoing"] and m["state"] not in _DONE]
            assert not stuck, f"{name}'s texts not delivered: {stuck[:10]}"


_DONE = ("delivered", "read")


def _diff(want: list[str], got: list[str]) -> str:
    dup = sorted({t for t in got if got.count(t) > 1})
    missing = [t for t in want if t not in got]
    extra = [t for t in got if t not in want]
    order = "in order" if [t for t in got if t in want] == want else "OUT OF ORDER"
    return (
        f"{len(got)} of {len(want)}; missing {missing[:8]}; twice {dup[:8]}; "
        f"unexpected {extra[:8]}; {order}"
    )


async def has_all(w: World, sent: dict[str, list[str]], delivered: bool = False) -> bool:
    """Both sides have (at least) every text sent to them (and, if asked, delivered)."""
    for api, other in ((w.alice, "bob"), (w.bob, "alice")):
        rows = await api.history(w.of(api))
        if not set(sent[other]) <= {m["text"] for m in rows if not m["outgoing"]}:
            return False
        if delivered and any(m["outgoing"] and m["state"] not in _DONE for m in rows):
            return False
    return True


def shower(
    w: World, sent: dict[str, list[str]], gsent: dict[str, list[str]] | None = None
) -> Callable[[], Awaitable[str]]:
    async def show() -> str:
        lines = []
        if w.gid and gsent is not None:
            want = [t for texts in gsent.values() for t in texts]
            for api in (w.alice, w.bob):
                try:
                    got = [m["text"] for m in await group_texts(api, w.gid)]
                    who = await members(api, w.gid)
                except CUT_BY_KILL as exc:
                    lines.append(f"{api.user.name}: API unreachable ({exc!r})")
                    continue
                names = sorted(n for n, key in w.keys.items() if who and key in who)
                lines.append(f"{api.user.name} group {names}: {_diff(want, got)}")
        for name, api, other in (("alice", w.alice, "bob"), ("bob", w.bob, "alice")):
            try:
                rows = await api.history(w.of(api))
            except CUT_BY_KILL as exc:
                lines.append(f"{name}: API unreachable ({exc!r})")
                continue
            got = [m["text"] for m in rows if not m["outgoing"]]
            states: dict[str, int] = {}
            for m in rows:
                if m["outgoing"]:
                    states[m["state"]] = states.get(m["state"], 0) + 1
            lines.append(f"{name} from {other}: {_diff(sent[other], got)}; own states {states}")
            lines.append(f"--- {name}'s log ---\n{api.user.logs(15)}")
        return "\n".join(lines)

    return show


async def own_texts(w: World) -> dict[str, list[str]]:
    """Each side's own texts in the conversation so far (a case's baseline)."""
    return {
        "alice": [m["text"] for m in await w.alice.history(w.keys["bob"]) if m["outgoing"]],
        "bob": [m["text"] for m in await w.bob.history(w.keys["alice"]) if m["outgoing"]],
    }


# -- sending through a kill ---------------------------------------------------------------


@dataclass
class SendStats:
    posted: int = 0
    cut: int = 0  # POSTs cut by a kill
    cut_but_stored: int = 0  # ... whose text the sender had stored anyway


async def send_texts(
    w: World, api: Api, texts: list[str], log: list[str], stats: SendStats
) -> None:
    """POST each text to the other side, in order; append it to ``log`` once it is
    stored. A POST cut by a kill: once the sender is back, its own history says
    whether the text was stored; if not, post it again."""
    path = f"/contacts/{w.of(api)}/messages"
    for text in texts:
        while True:
            try:
                await api.call("POST", path, {"text": text})
                stats.posted += 1
                break
            except CUT_BY_KILL:
                stats.cut += 1
                await api.back.wait()
                mine = {m["text"] for m in await api.history(w.of(api)) if m["outgoing"]}
                if text in mine:
                    stats.cut_but_stored += 1
                    break
        log.append(text)


@dataclass
class KillStats:
    iterations: int = 0
    kills: dict[str, int] = field(default_factory=lambda: {"alice": 0, "bob": 0})
    kills_in_window: int = 0  # the kill landed before the iteration's texts had all arrived
    texts: int = 0
    window_s: float = 0.0
    restart_s: list[float] = field(default_factory=list)
    iteration_s: list[float] = field(default_factory=list)
    settle_s: float = 0.0
    group_changes: int = 0  # Carol removed or invited back
    send: SendStats = field(default_factory=SendStats)


async def client_kills(
    w: World,
    iterations: int,
    *,
    k: int = 3,
    seed: int = 0,
    timeout: float = 120,
    settle: bool = True,
    group_every: int = 0,
    progress: Callable[[int, KillStats], None] | None = None,
) -> KillStats:
    """The client kill -9 campaign (see the module docstring); returns its figures.

    ``settle=False`` skips waiting for every text to be *delivered*: a receipt lost
    to a kill comes back only with the sender's re-send 30 s later (the quick test
    stays short; the runner waits). ``group_every`` (with a world made with
    ``carol``): every so many iterations Alice and Bob also post a group text each
    and Alice removes Carol or invites her back, all within the kill window."""
    rng = random.Random(seed)
    stats = KillStats()
    sent = await own_texts(w)  # what earlier cases left in the conversation
    earlier = len(sent["alice"]) + len(sent["bob"])
    gsent: dict[str, list[str]] = {"alice": [], "bob": []}
    roster = {w.keys[n] for n in ("alice", "bob", "carol") if n in w.keys} if w.gid else set()
    show = shower(w, sent, gsent)
    both = [w.alice, w.bob]

    async def arrived(want: dict[str, list[str]], gwant: set[str]) -> bool:
        if not await has_all(w, want):
            return False
        if not gwant:
            return True
        for api in both:
            if await members(api, w.gid) != roster:
                return False
            if not gwant <= {m["text"] for m in await group_texts(api, w.gid)}:
                return False
        return True

    async def toggle() -> None:
        assert w.carol is not None
        if await toggle_carol(w, stats.send):
            roster.add(w.keys["carol"])
        else:
            roster.discard(w.keys["carol"])
        stats.group_changes += 1

    async def one(i: int, victim: Api | None, at: float) -> bool:
        texts = {"alice": [f"a{i:03d}.{j}" for j in range(k)], "bob": [f"b{i:03d}"]}
        want = {n: sent[n] + t for n, t in texts.items()}
        grouped = bool(group_every and w.gid and i % group_every == 0)
        gwant = {f"g{n[0]}{i:03d}" for n in ("alice", "bob")} if grouped else set()
        done = trio.Event()
        landed_in_window = False

        async def killer() -> None:
            nonlocal landed_in_window
            assert victim is not None
            await trio.sleep(at)  # the fault's moment, drawn at random: not a wait
            landed_in_window = not done.is_set()
            stats.restart_s.append(await victim.kill_and_restart())

        async with trio.open_nursery() as nursery:
            if victim is not None:
                nursery.start_soon(killer)
            async with trio.open_nursery() as senders:
                senders.start_soon(
                    send_texts, w, w.alice, texts["alice"], sent["alice"], stats.send
                )
                senders.start_soon(send_texts, w, w.bob, texts["bob"], sent["bob"], stats.send)
                if grouped:
                    for n, api in (("alice", w.alice), ("bob", w.bob)):
                        text = f"g{n[0]}{i:03d}"
                        senders.start_soon(post_group_text, w, api, text, gsent[n], stats.send)
                    senders.start_soon(toggle)
            await wait_until(
                f"iteration {i}'s texts", both, lambda: arrived(want, gwant), show, timeout
            )
            done.set()
        await check_conversation(w, sent, delivered=False)
        if grouped:
            await check_group(w, gsent)
        return landed_in_window

    t0 = time.monotonic()
    await one(0, None, 0.0)  # no kill: measures the window
    stats.window_s = max(0.2, time.monotonic() - t0)
    stats.iteration_s.append(stats.window_s)
    for i in range(1, iterations + 1):
        t0 = time.monotonic()
        name = rng.choice(["alice", "bob"])
        victim = w.alice if name == "alice" else w.bob
        if await one(i, victim, rng.uniform(0, stats.window_s)):
            stats.kills_in_window += 1
        stats.kills[name] += 1
        stats.iterations = i
        stats.iteration_s.append(time.monotonic() - t0)
        if progress is not None:
            progress(i, stats)
    stats.texts = len(sent["alice"]) + len(sent["bob"]) - earlier

    # Everything delivered (a receipt lost to a kill comes back with a re-send,
    # 30 s later), then one more text each way: the ratchets are in step.
    t0 = time.monotonic()
    if settle:
        await wait_until(
            "every text delivered", both, lambda: has_all(w, sent, True), show, timeout
        )
    stats.settle_s = time.monotonic() - t0
    await send_texts(w, w.alice, ["final from Alice"], sent["alice"], stats.send)
    await send_texts(w, w.bob, ["final from Bob"], sent["bob"], stats.send)
    await wait_until(
        "the final texts, both ways", both, lambda: has_all(w, sent, settle), show, timeout
    )
    await check_conversation(w, sent, delivered=settle)
    if w.gid:  # Megolm intact: a last group text from Bob reaches the other members
        await post_group_text(w, w.bob, "group final from Bob", gsent["bob"], stats.send)
        others = [w.alice] + ([w.carol] if w.carol and w.keys["carol"] in roster else [])

        async def final_arrived() -> bool:
            return all(
                [
                    "group final from Bob" in {m["text"] for m in await group_texts(a, w.gid)}
                    for a in others
                ]
            )

        await wait_until("the final group text", others, final_arrived, show, timeout)
        await check_group(w, gsent)
    return stats


async def check_group(w: World, gsent: dict[str, list[str]]) -> None:
    """On Alice's and Bob's devices (members throughout), every group text sent is
    there exactly once, and each sender's texts are in the order they were posted."""
    for api in (w.alice, w.bob):
        got = [m["text"] for m in await group_texts(api, w.gid)]
        for sender, texts in gsent.items():
            mine = [t for t in got if t in set(texts)]
            assert mine == texts, (
                f"{api.user.name}'s group texts from {sender}: {_diff(texts, mine)}"
            )


# -- a service node killed mid-burst ---------------------------------------------------------


@dataclass
class BurstStats:
    messages: int = 0
    killed_after: int = 0
    restarted_after: int = 0
    post_s: float = 0.0
    all_received_s: float = 0.0
    all_delivered_s: float = 0.0


async def service_kill_burst(w: World, n: int, *, timeout: float = 180) -> BurstStats:
    """Alice posts ``n`` texts; s1 (her preferred node) is SIGKILLed after a third and
    restarted on its old address after two thirds; Bob ends with each exactly once,
    in order, all delivered. Texts sent before are taken as the baseline."""
    stats = BurstStats(messages=n)
    sent = await own_texts(w)
    texts = [f"burst {i:03d}" for i in range(n)]
    port = w.s1.addr.split("/tcp/")[1].split("/")[0]
    t0 = time.monotonic()
    for i, text in enumerate(texts):
        if i == n // 3:
            w.s1.kill()
            stats.killed_after = i
        if i == 2 * n // 3:
            await trio.to_thread.run_sync(w.s1.start, ["--listen", f"/ip4/127.0.0.1/tcp/{port}"])
            stats.restarted_after = i
        await w.alice.call("POST", f"/contacts/{w.keys['bob']}/messages", {"text": text})
        sent["alice"].append(text)
    stats.post_s = time.monotonic() - t0
    show = shower(w, sent)
    both = [w.alice, w.bob]
    await wait_until("Bob to get the burst", both, lambda: has_all(w, sent), show, timeout)
    stats.all_received_s = time.monotonic() - t0
    await wait_until("the burst delivered", both, lambda: has_all(w, sent, True), show, timeout)
    stats.all_delivered_s = time.monotonic() - t0
    await check_conversation(w, sent, delivered=True)
    return stats
