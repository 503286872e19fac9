"""One producer, many local listeners: a non-blocking fan-out over trio channels.

Used wherever a component hands every event to whoever is listening right now
(client events, relay deliveries, light-node deliveries). A slow listener misses
events (it is told so in the log) rather than stalling the producer.

A listener is unregistered *before* its channel closes: closing a trio receive
channel checkpoints, and an event published in that window used to hit a closed
channel and crash the producer (``BrokenResourceError``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Fanout(Generic[T]):
    def __init__(self, logger: logging.Logger, what: str = "event") -> None:
        self._listeners: list[trio.MemorySendChannel[T]] = []
        self._logger = logger
        self._what = what

    def __len__(self) -> int:
        return len(self._listeners)

    @asynccontextmanager
    async def listen(self, buffer: int = 1024) -> AsyncIterator[trio.MemoryReceiveChannel[T]]:
        """Every item published while the context is open."""
        send, recv = trio.open_memory_channel[T](buffer)
        self._listeners.append(send)
        try:
            yield recv
        finally:
            self._discard(send)
            send.close()
            recv.close()

    def publish(self, item: T) -> None:
        for listener in list(self._listeners):
            try:
                listener.send_nowait(item)
            except trio.WouldBlock:
                self._logger.warning("a listener is too slow; it missed one %s", self._what)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._discard(listener)

    def _discard(self, listener: trio.MemorySendChannel[T]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
