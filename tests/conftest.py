"""Shared pytest configuration."""

from __future__ import annotations

import os

from hypothesis import settings

pytest_plugins = ["tests.archive_fixtures"]

settings.register_profile("ci", max_examples=150, deadline=None)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
