"""trio's TaskStatus, typed.

py-libp2p depends on ``trio-typing``, whose ``trio-stubs`` package shadows
trio's own inline types for mypy and lacks ``trio.TaskStatus``; at run time
trio has it. Import it from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trio_typing import TaskStatus
else:
    from trio import TaskStatus

__all__ = ["TaskStatus"]
