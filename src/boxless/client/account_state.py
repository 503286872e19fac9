"""Recovery from the phrase alone: an encrypted, self-addressed account state on the network.

Theory of operation
-------------------
Each running device publishes its account's state — contacts, groups (with
membership, roles and Megolm inbound sessions), settings, profile, rosters;
**not** history — as a backup file (:mod:`boxless.client.backup_format`:
a key from the phrase's seed, a fresh salt each time) cut into Waku messages
on a content topic derived from the seed (HKDF, its own label): only a
holder of the phrase can compute the topic, so store nodes cannot link it to
the identity, and only a holder of the phrase can read it.

    payload = b"BXST" || version (1) || state id (16) || index (2) || count (2) || piece

:class:`StatePublisher` (run by ``boxless up``) rebuilds the state every
:data:`CHECK_EVERY_S`, publishes it when its digest changed and the last
publication is at least :data:`DEBOUNCE_S` old (debounced: a burst of changes
makes one publication), and again every :data:`REFRESH_S` so store nodes'
retention keeps a copy. :func:`fetch_state` reads the topic's history and
returns the newest complete state (pieces are grouped by state id; a forged
piece cannot pass the STREAM tags, and a state is only taken once
:func:`boxless.client.backup.restore_backup` authenticated all of it).
:func:`recover` restores it into a fresh home as a new device.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from boxless.chat.topics import APPLICATION, ENCODING, TOPIC_VERSION
from boxless.client.backup import BackupStats, restore_backup, write_backup
from boxless.client.transport import Transport
from boxless.errors import BoxlessError, NetworkError, UsageError
from boxless.identity.keys import Identity
from boxless.identity.keystore import Keystore
from boxless.storage.userdb import DEFAULT_KDF, KdfParams, UserDB
from boxless.waku.message import WakuMessage
from boxless.waku.sharding import ContentTopic

__all__ = [
    "STATE_TABLES",
    "NoAccountState",
    "StatePublisher",
    "fetch_state",
    "recover",
    "split_state",
    "state_bytes",
    "state_topic",
]

log = logging.getLogger(__name__)

MAGIC = b"BXST"
VERSION = 1
HEAD = struct.Struct(">4sB16sHH")
PIECE = 96 * 1024  # under Waku's 150 KiB message limit with room for the envelope
MAX_STATE = 8 * 1024 * 1024
MAX_PIECES = MAX_STATE // PIECE + 1
MAX_SEEN_STATES = 64  # distinct state ids kept while reading the topic's history
TOPIC_INFO = b"boxless account state topic v1"
CHECK_EVERY_S = 60.0
DEBOUNCE_S = 300.0
REFRESH_S = 86_400.0
LOOKBACK_S = 90 * 86_400

#: The tables whose rows make the account state: who and which groups, settings.
STATE_TABLES = frozenset(
    {
        "local_secret",  # the pickle key of the Megolm sessions below
        "profile",
        "client_contacts",
        "client_bundles",
        "client_groups",
        "client_group_ops",
        "client_group_cards",
        "client_group_joins",
        "crypto_megolm_inbound",
        "crypto_megolm_outbound",  # retired on restore; keeps our own sessions' origin
        "client_chat_settings",
        "client_profile_details",
        "client_contact_notes",
        "client_contact_tags",
        "client_broadcast_lists",
        "client_broadcast_members",
        "client_attachment_settings",
        "moment_settings",
        "moment_audience_sets",
        "moment_audience",
        "payment_peer_address",
        "devices_rosters",
        "devices_bundles",
        "backup_schedule",
    }
)


class NoAccountState(UsageError):
    """No published account state was found for this recovery phrase."""


def state_topic(seed: bytes) -> str:
    """The content topic of the account state: from the seed, so only the phrase finds it."""
    key = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=TOPIC_INFO).derive(seed)
    return str(ContentTopic(APPLICATION, TOPIC_VERSION, "acct-" + key.hex(), ENCODING))


def state_bytes(db: UserDB, now: float) -> tuple[bytes, bytes]:
    """The account state as a backup file's bytes, and the digest of its contents."""
    buf = io.BytesIO()
    writer, _, _ = write_backup(
        db, buf, rows_of=lambda name: name in STATE_TABLES, now=now, kind="boxless-account-state"
    )
    return buf.getvalue(), writer.digest.digest()


def split_state(data: bytes, topic: str, now: float) -> list[WakuMessage]:
    """The Waku messages that carry ``data`` (refused over :data:`MAX_STATE`)."""
    if len(data) > MAX_STATE:
        raise UsageError(f"the account state is {len(data)} bytes, over {MAX_STATE}")
    state_id = os.urandom(16)
    pieces = [data[i : i + PIECE] for i in range(0, len(data), PIECE)] or [b""]
    ts = int(now * 1e9)
    return [
        WakuMessage(
            payload=HEAD.pack(MAGIC, VERSION, state_id, i, len(pieces)) + piece,
            content_topic=topic,
            timestamp=ts,
        )
        for i, piece in enumerate(pieces)
    ]


@dataclass
class _Partial:
    count: int
    timestamp: int
    pieces: dict[int, bytes]


def assemble(messages: list[WakuMessage]) -> list[bytes]:
    """Complete states among ``messages``, newest first (malformed pieces skipped;
    at most :data:`MAX_SEEN_STATES` state ids and :data:`MAX_PIECES` pieces each)."""
    partial: dict[bytes, _Partial] = {}
    for msg in messages:
        if len(msg.payload) < HEAD.size:
            continue
        magic, version, sid, index, count = HEAD.unpack_from(msg.payload)
        if magic != MAGIC or version != VERSION or not 0 <= index < count <= MAX_PIECES:
            continue
        got = partial.get(sid)
        if got is None:
            if len(partial) >= MAX_SEEN_STATES:
                oldest = min(partial, key=lambda k: partial[k].timestamp)
                del partial[oldest]
            got = partial[sid] = _Partial(count, msg.timestamp or 0, {})
        if got.count != count:
            continue
        got.pieces.setdefault(index, msg.payload[HEAD.size :])
    done = [p for p in partial.values() if len(p.pieces) == p.count]
    done.sort(key=lambda p: p.timestamp, reverse=True)
    return [b"".join(p.pieces[i] for i in range(p.count)) for p in done]


async def fetch_state(transport: Transport, seed: bytes, now: float) -> list[bytes]:
    """Every complete state on the network for ``seed``, newest first (bounded)."""
    messages: list[WakuMessage] = []
    async for item in transport.history([state_topic(seed)], int((now - LOOKBACK_S) * 1e9)):
        messages.append(item.message)
        if len(messages) >= MAX_SEEN_STATES * 4:
            break
    return assemble(messages)


async def recover(
    transport: Transport,
    identity: Identity,
    home: Path,
    passphrase: str,
    *,
    now: float,
    kdf: KdfParams = DEFAULT_KDF,
) -> BackupStats:
    """Restore the newest published account state of ``identity`` (from its phrase)
    into ``home``; a state that does not authenticate is skipped for the next newest.
    Raises NoAccountState when none is found."""
    seed = identity.wallet_seed()
    if seed is None:
        raise UsageError("recovery needs the identity made from its recovery phrase")
    states = await fetch_state(transport, seed, now)
    last: BoxlessError | None = None
    for data in states:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "state.bxbk"
            path.write_bytes(data)
            try:
                return restore_backup(
                    path, home, identity, passphrase, kdf=kdf, max_total=MAX_STATE * 4
                )
            except BoxlessError as exc:
                last = exc
                log.info("a published account state did not restore: %s", exc)
    raise NoAccountState(
        "no account state of this recovery phrase was found on the network (it is published "
        "by a device running `boxless up`; store nodes keep it for a limited time)"
        + (f"; the newest one failed: {last}" if last else "")
    )


class StatePublisher:
    """Publishes our account state when it changed (debounced) and once a day."""

    def __init__(
        self, db: UserDB, transport: Transport, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.db, self.transport, self.clock = db, transport, clock
        self._digest: bytes | None = None
        self._published_at = float("-inf")

    def due(self, digest: bytes, now: float) -> bool:
        """Publish now? On a change once :data:`DEBOUNCE_S` passed since the last one,
        and every :data:`REFRESH_S` regardless."""
        since = now - self._published_at
        return since >= REFRESH_S or (digest != self._digest and since >= DEBOUNCE_S)

    async def publish_if_due(self) -> bool:
        now = self.clock()
        data, digest = state_bytes(self.db, now)
        if not self.due(digest, now):
            return False
        seed = Keystore(self.db).load_wallet_seed()
        for msg in split_state(data, state_topic(seed), now):
            try:
                await self.transport.send(msg)
            except NetworkError as exc:
                log.info("publishing the account state failed: %s", exc)
                return False
        self._digest, self._published_at = digest, now
        return True

    async def run(self) -> None:
        """Forever, every :data:`CHECK_EVERY_S` (cancel to stop)."""
        while True:
            try:
                await self.publish_if_due()
            except UsageError as exc:  # no stored seed (an old account), a state too big
                log.warning("the account state is not published: %s", exc)
                return
            await trio.sleep(CHECK_EVERY_S)
