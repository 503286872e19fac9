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
        print(w.logs())
        w.close()
