"""Shared browser-test fixtures: one Chromium per test (Debian's, via Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_web import CHROMIUM_ARGS, chromium_path, sync_api


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


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
