"""Store protocol client: one page, all pages, over a libp2p stream."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import multiaddr
import trio
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from boxless.errors import DecodeError, NetworkError, PeerError
from boxless.node.host import build_host
from boxless.node.libp2p_shims import DIAL_ERRORS
from boxless.node.peering import parse_peer
from boxless.node.streams import request
from boxless.waku import store
from boxless.waku.message import WakuMessage

# A page of 100 messages of 150 KiB each, plus framing: what a response can weigh.
MAX_RESPONSE_SIZE = store.MAX_PAGE_SIZE * (150 * 1024 + 256) + 4096


class StoreQueryError(PeerError):
    """The store node answered with an error status."""

    def __init__(self, status_code: int, status_desc: str) -> None:
        super().__init__(f"store node answered {status_code}: {status_desc}")
        self.status_code = status_code
        self.status_desc = status_desc


@dataclass(frozen=True)
class StoreQuerySpec:
    """What to ask a store node for (see 13/WAKU2-STORE)."""

    pubsub_topic: str | None = None
    content_topics: tuple[str, ...] = ()
    time_start: int | None = None
    time_end: int | None = None
    message_hashes: tuple[bytes, ...] = ()
    forward: bool = True
    page_size: int = 20
    include_data: bool = True
    cursor: bytes | None = field(default=None)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message from a store response."""

    message_hash: bytes
    pubsub_topic: str | None
    message: WakuMessage | None

    @property
    def content_topic(self) -> str:
        return self.message.content_topic if self.message else ""

    def time_text(self) -> str:
        if self.message is None or not self.message.timestamp:
            return "-"
        return datetime.fromtimestamp(self.message.timestamp / 1e9, UTC).isoformat(
            timespec="milliseconds"
        )

    def payload_text(self, width: int) -> str:
        if self.message is None:
            return ""
        text = self.message.payload.decode("utf-8", "replace")
        return text if len(text) <= width else text[: width - 1] + "…"

    def to_json(self) -> dict[str, Any]:
        m = self.message
        return {
            "hash": self.message_hash.hex(),
            "pubsub_topic": self.pubsub_topic,
            "content_topic": m.content_topic if m else None,
            "timestamp": m.timestamp if m else None,
            "payload": m.payload.decode("utf-8", "replace") if m else None,
        }


async def query_page(
    host: IHost, peer_id: ID, spec: StoreQuerySpec, cursor: bytes | None
) -> tuple[list[StoredMessage], bytes | None]:
    """Ask one page; return its messages (oldest first) and the next cursor.

    Raises :class:`StoreQueryError` on an error status, :class:`DecodeError` on
    a malformed answer, :class:`NetworkError` if the peer can't be reached.
    """
    payload = store.build_request(
        secrets.token_hex(8),
        include_data=spec.include_data,
        pubsub_topic=spec.pubsub_topic,
        content_topics=spec.content_topics,
        time_start=spec.time_start,
        time_end=spec.time_end,
        message_hashes=spec.message_hashes,
        cursor=cursor,
        forward=spec.forward,
        limit=spec.page_size,
    )
    reply = store.parse_response(
        await request(
            host,
            peer_id,
            [store.STORE_PROTOCOL_ID],
            payload,
            max_response=MAX_RESPONSE_SIZE,
        )
    )
    if not reply.ok:
        raise StoreQueryError(reply.status_code, reply.status_desc)
    out = []
    for entry in reply.messages:
        msg = WakuMessage.decode(entry.message) if entry.message is not None else None
        out.append(StoredMessage(entry.message_hash, entry.pubsub_topic, msg))
    return out, reply.cursor


BUSY_STATUSES = (429, 503)  # TOO_MANY_REQUESTS, SERVICE_UNAVAILABLE: ask again later
BUSY_RETRIES = 5
BUSY_FIRST_WAIT_S = 0.25


async def _query_page_patiently(
    host: IHost, peer_id: ID, spec: StoreQuerySpec, cursor: bytes | None
) -> tuple[list[StoredMessage], bytes | None]:
    """:func:`query_page`, waiting and asking again (0.25, 0.5, 1, 2, 4 s) while the
    node says it is busy: a node under a flood rate-limits honest catch-ups too, and
    a 429 mid-catch-up must not end it. Cancellation: stops at once."""
    wait = BUSY_FIRST_WAIT_S
    for _ in range(BUSY_RETRIES):
        try:
            return await query_page(host, peer_id, spec, cursor)
        except StoreQueryError as exc:
            if exc.status_code not in BUSY_STATUSES:
                raise
        await trio.sleep(wait)
        wait *= 2
    return await query_page(host, peer_id, spec, cursor)


async def iter_pages(
    host: IHost, peer_id: ID, spec: StoreQuerySpec, max_pages: int = 1_000_000
) -> AsyncIterator[list[StoredMessage]]:
    """Yield pages until the node says there are no more (or ``max_pages``)."""
    cursor = spec.cursor
    for _ in range(max_pages):
        page, cursor = await _query_page_patiently(host, peer_id, spec, cursor)
        if page:
            yield page
        if cursor is None:
            return


async def query_all(peer_addr: str, spec: StoreQuerySpec, max_pages: int) -> list[StoredMessage]:
    """Connect to ``peer_addr`` with a throwaway identity and collect every page."""
    peer = parse_peer(peer_addr)
    host = build_host(create_new_key_pair(), [multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")])
    out: list[StoredMessage] = []
    async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        try:
            with trio.fail_after(15):
                await host.connect(peer)
        except DIAL_ERRORS as exc:
            raise NetworkError(f"could not reach {peer_addr}: {exc or type(exc).__name__}") from exc
        try:
            async for page in iter_pages(host, peer.peer_id, spec, max_pages):
                out.extend(page)
        except DecodeError as exc:
            raise PeerError(f"{peer_addr} sent a malformed store response: {exc}") from exc
    return out
