"""Session fixture: one real anvil (local EVM chain) for every payments test.

Import the fixture into ONE test module (``from tests.anvil import anvil``) so
the session starts a single process. Skips when anvil is not installed
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
