"""The timer loop of a plug-in whose sans-IO core has ``get_timer``/``handle_timer``
(calls, group calls): sleep until the core's next deadline or a wake-up, then step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

__all__ = ["TimerLoop"]

IDLE_S = 3600.0  # no deadline: look again after this long (or when woken)


class TimerLoop:
    """``wake()`` after anything that may move the core's deadline."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._event = trio.Event()

    def wake(self) -> None:
        self._event.set()

    async def run(
        self, deadline: Callable[[], float | None], step: Callable[[float], Awaitable[None]]
    ) -> None:
        """Until cancelled: wait for ``deadline()`` (or a wake-up), then ``step(now)``.
        Cancellation stops it between steps or inside one (the step's own rules apply)."""
        while True:
            timer = deadline()
            delay = IDLE_S if timer is None else max(0.0, timer - self._clock())
            with trio.move_on_after(delay):
                await self._event.wait()
            self._event = trio.Event()
            await step(self._clock())
