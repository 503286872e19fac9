"""Length-prefixed request/response over libp2p streams.

Waku's request/response protocols (store, metadata, light push, filter, peer
exchange) all send one unsigned-varint length-prefixed protobuf per direction on
a fresh stream: the client writes its request and closes its write side, the
server writes one response and closes. These helpers move frames between a
:class:`~boxless.wire.framing.FrameDecoder` and a py-libp2p stream, with a size
limit enforced before a body is buffered and a deadline on every read.

py-libp2p detail: ``INetStream.read()`` without a size reads *until EOF* on
yamux, and EOF is signalled by raising ``StreamEOF`` rather than returning
``b""``; we always read in bounded chunks and treat both as end of stream.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF, StreamError
from libp2p.peer.id import ID

from boxless.errors import DecodeError, NetworkError
from boxless.node.libp2p_shims import DIAL_ERRORS
from boxless.wire.framing import FrameDecoder, encode_frame

logger = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
DEFAULT_TIMEOUT = 10.0
# How long a service waits for the request on an inbound stream. js-waku opens
# one stream per protocol right after identify and may use it much later, so
# an idle stream is honest; it is closed after this, and not held against the peer.
SERVICE_IDLE_TIMEOUT = 120.0


class StreamClosedEarly(NetworkError):
    """The peer closed the stream before sending anything: not malformed, just unused."""


async def read_frame(stream: INetStream, max_size: int, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Read exactly one length-prefixed frame from ``stream``.

    Raises :class:`DecodeError` if the peer sends a bad prefix, an oversized
    frame, or closes mid-frame (protocol violations); :class:`NetworkError` on
    timeout, a broken stream, or :class:`StreamClosedEarly` if the peer closed
    without sending a byte (not a violation). Cancellation leaves the stream
    half-read; callers reset it.
    """
    decoder = FrameDecoder(max_size)
    with trio.move_on_after(timeout) as scope:
        while True:
            frame = decoder.next_frame()
            if frame is not None:
                return frame
            try:
                chunk = await stream.read(READ_CHUNK)
            except StreamEOF:
                chunk = b""
            except StreamError as exc:
                raise NetworkError(f"stream broke while reading: {exc}") from exc
            if not chunk:
                if not decoder.buffered:
                    raise StreamClosedEarly("stream closed before any byte arrived")
                decoder.eof()
                raise DecodeError("stream closed before a complete frame arrived")
            decoder.feed(chunk)
    assert scope.cancelled_caught
    raise NetworkError(f"no complete frame within {timeout:.1f}s")


async def write_frame(stream: INetStream, payload: bytes) -> None:
    """Write one length-prefixed frame; :class:`NetworkError` if the stream broke."""
    try:
        await stream.write(encode_frame(payload))
    except StreamError as exc:
        raise NetworkError(f"stream broke while writing: {exc}") from exc


async def close_quietly(stream: INetStream) -> None:
    """Close our side of ``stream``; a peer that already vanished is not an error."""
    try:
        await stream.close()
    except StreamError:
        logger.debug("stream already gone when closing")


async def reset_quietly(stream: INetStream) -> None:
    """Reset ``stream`` (used after protocol violations)."""
    try:
        await stream.reset()
    except StreamError:
        logger.debug("stream already gone when resetting")


async def request(
    host: IHost,
    peer_id: ID,
    protocols: Sequence[str],
    payload: bytes,
    *,
    max_response: int,
    timeout: float = DEFAULT_TIMEOUT,
) -> bytes:
    """Open a stream to ``peer_id``, send ``payload`` as one frame, return the reply frame.

    Raises :class:`NetworkError` if the peer can't be reached, doesn't speak any
    of ``protocols``, or doesn't answer within ``timeout``; :class:`DecodeError`
    if its answer isn't a valid frame. Cancellation resets the stream.
    """
    with trio.move_on_after(timeout) as scope:
        try:
            stream = await host.new_stream(peer_id, [TProtocol(p) for p in protocols])
        except DIAL_ERRORS as exc:
            raise NetworkError(
                f"could not open {protocols[0]} to {peer_id}: {exc or type(exc).__name__}"
            ) from exc
    if scope.cancelled_caught:
        raise NetworkError(f"opening {protocols[0]} to {peer_id} timed out")
    try:
        await write_frame(stream, payload)
        await close_quietly(stream)
        return await read_frame(stream, max_response, timeout)
    except BaseException:
        await reset_quietly(stream)
        raise


async def read_request(
    stream: INetStream,
    max_size: int,
    protocol: str,
    on_violation: Callable[[ID, str], Awaitable[None]] | None,
) -> bytes | None:
    """A service's read of the one request on an inbound stream.

    Returns the request frame, or None after resetting the stream. A peer that
    sent nothing (idle past :data:`SERVICE_IDLE_TIMEOUT`, closed unused, or
    gone) is honest — js-waku pre-opens streams — and only logged; malformed
    input is reported to ``on_violation`` (the node's penalty box).
    """
    peer = stream.muxed_conn.peer_id
    try:
        return await read_frame(stream, max_size, timeout=SERVICE_IDLE_TIMEOUT)
    except NetworkError as exc:
        logger.debug("no %s request from %s: %s", protocol, peer, exc)
        await reset_quietly(stream)
    except DecodeError as exc:
        logger.info("malformed %s request from %s: %s", protocol, peer, exc)
        await reset_quietly(stream)
        if on_violation is not None:
            await on_violation(peer, protocol)
    return None


async def reply_and_close(stream: INetStream, payload: bytes, protocol: str) -> None:
    """Write a service's one response and close; a requester that left is not an error."""
    try:
        await write_frame(stream, payload)
    except NetworkError:
        logger.debug("%s requester %s left before the answer", protocol, stream.muxed_conn.peer_id)
    await close_quietly(stream)
