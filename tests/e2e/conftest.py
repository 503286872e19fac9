"""Shared browser-test fixtures: one Chromium per pytest worker (Debian's, via
Playwright), a fresh set of browser contexts per test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_web import CHROMIUM_ARGS, chromium_path, sync_api


class _Chromium:
    """The worker's Playwright driver and Chromium, started by the first test that
    asks for ``browser`` and started again if a test left it dead."""

    def __init__(self) -> None:
        self.pw: Any = None
        self.browser: Any = None

    def get(self) -> Any:
        if self.pw is None or self.pw._dispatcher_fiber.dead:  # none yet, or its driver died
            self.pw = sync_api.sync_playwright().start()
            self.browser = None
        # Playwright's sync API drives its asyncio loop from a greenlet and marks the
        # loop as running in this thread between calls; the browser tests run with it
        # marked, the other tests of this worker without (see the `browser` fixture).
        asyncio._set_running_loop(self.pw._loop)
        if self.browser is None or not self.browser.is_connected():
            self.browser = self.pw.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS
            )
        return self.browser

    def close(self) -> None:
        if self.pw is None:
            return
        asyncio._set_running_loop(self.pw._loop)
        try:
            if self.browser is not None and self.browser.is_connected():
                self.browser.close()
        finally:
            self.pw.stop()
            asyncio._set_running_loop(None)


@pytest.fixture(scope="session")
def _chromium() -> Iterator[_Chromium]:
    holder = _Chromium()
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture
def browser(_chromium: _Chromium) -> Iterator[Any]:
    """The worker's Chromium (starting one costs ~1.5-3 s of driver and browser per
    test); each test opens its own contexts (``open_ui``), which share nothing, and
    those it leaves open are closed after it."""
    b = _chromium.get()
    before = set(b.contexts)
    try:
        yield b
    finally:
        try:
            if b.is_connected():
                for context in b.contexts:
                    if context not in before:
                        context.close()
        finally:
            # Another test of this worker may start a Playwright of its own (a
            # browser with a fake camera), which refuses to start inside a running
            # loop, or use asyncio itself: it must not find ours marked as running.
            asyncio._set_running_loop(None)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two service nodes for the whole session; people made on demand (tests/e2e/world.py)."""
    from tests.e2e.world import World

    w = World(tmp_path_factory.mktemp("world"))
    try:
        yield w
    finally:
        w.close()


@pytest.fixture(autouse=True)
def _world_people_end_with_their_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """The people a test made in the session's world stop when the test ends (their
    logs are printed, shown if it failed): the next tests do not share the machine and
    the service nodes with a growing crowd of idle `boxless up` processes."""
    from tests.e2e.world import World

    w = request.getfixturevalue("world") if "world" in request.fixturenames else None
    if not isinstance(w, World):  # test_web.py has a `world` of its own
        yield
        return
    before = len(w.people)
    yield
    mine = w.people[before:]
    for user in mine:
        user.kill()
    if mine:
        print(w.logs(mine))
