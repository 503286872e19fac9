"""Shared pytest configuration."""

from __future__ import annotations

import os

from hypothesis import settings

pytest_plugins = ["tests.archive_fixtures", "tests.anvil"]

# The CLI's rich consoles wrap at the terminal width, 80 columns when there is no
# terminal; under pytest-xdist the temporary paths in messages are long enough to
# wrap mid-sentence. Every test and every process it starts sees a wide terminal.
os.environ["COLUMNS"] = "200"

settings.register_profile("ci", max_examples=150, deadline=None)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
