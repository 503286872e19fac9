"""Session fixture: one real anvil (local EVM chain) for every payments test.

The root conftest registers this module as a plugin, so a test just asks for
``anvil`` and the session (one per pytest-xdist worker) starts a single process;
importing the fixture into a test module would start one per module. Skips when anvil is not installed
(``bash scripts/install_chain.sh``), unless CI is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from boxless.errors import ConfigError
from boxless.payments.devnet import Anvil, find_anvil


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    try:
        find_anvil()
    except ConfigError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    with Anvil() as chain:
        yield chain
