"""Shared pytest configuration."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import settings

pytest_plugins = ["tests.archive_fixtures", "tests.anvil"]

# The CLI's rich consoles wrap at the terminal width, 80 columns when there is no
# terminal; under pytest-xdist the temporary paths in messages are long enough to
# wrap mid-sentence. Every test and every process it starts sees a wide terminal.
os.environ["COLUMNS"] = "200"

settings.register_profile("ci", max_examples=150, deadline=None)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


# Per-file cost, opt-in: BOXLESS_TEST_PROFILE=DIR writes one JSON line per test file
# (wall seconds, CPU seconds of this process and of the processes it started and
# reaped) to DIR/<worker>.jsonl; `python -m tests.timing DIR` sums them up and replays
# xdist's hand-out (docs/testing.md, "The test command's time budget").
_PROFILE_DIR = os.environ.get("BOXLESS_TEST_PROFILE")
if _PROFILE_DIR:
    from tests.timing import FileClock

    _clock = FileClock(_PROFILE_DIR)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        with _clock.measure(item.nodeid.split("::", 1)[0]):
            yield

    def pytest_sessionfinish(session: pytest.Session) -> None:
        _clock.write(os.environ.get("PYTEST_XDIST_WORKER", "main"))
