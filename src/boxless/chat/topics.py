"""Content topics for Boxless traffic, and what each one tells an observer.

Every Boxless topic has the 23/WAKU2-TOPICS shape ``/boxless/1/{name}/proto``.
Autosharding maps a content topic to a shard from its application and version
only, so **all Boxless traffic shares one shard**: the shard says "Boxless" and
nothing more, and every user is in the same crowd.

Topics (``{name}``)
-------------------
``chat-{32 hex}`` -- one per conversation (pair of users):
    ``HKDF-SHA256(shared_secret, salt=none, info="boxless conversation topic v1")``,
    16 bytes, in hex. The secret is known to the two users only (the
    ``conversation_secret`` of the accepted contact request), so relays, store
    and filter nodes cannot link the topic to identity keys, and neither can
    someone who knows both keys. What they *can* see: that messages belong to
    the same conversation (the topic is stable), their timing and size bucket,
    and -- a service node serving a light client -- which peer subscribes to,
    publishes on or queries the topic. A filter node serving both ends sees two
    peers using the same topic and may guess they talk to each other (it still
    learns no identity). Use different service nodes, or a relay node, if that
    matters; topic rotation per epoch is possible later without changing this API.

``contact-{n}`` -- contact-request partitions, ``n`` in ``0..N_PARTITIONS-1``:
    ``n = int(sha256(recipient identity key)) mod N_PARTITIONS`` (4096). A
    stranger knows only our public key, so the topic must be computable from
    it; the partition hides the recipient among the users who share it
    (about users/4096 of them). That is real cover on a large network and
    little on a small one: with a few thousand users a partition often holds
    one person, and a node that sees a peer subscribe to partition ``n`` learns
    12 bits of its identity key. Request contents and senders stay sealed.

``bundle-{32 hex}`` -- where a user's devices publish signed device bundles:
    ``sha256("boxless device bundle topic v1" ‖ identity key)[:16]`` in hex.
    Anyone who knows an identity key can compute it (that is the point: it is
    how contacts find fresh bundles) and can therefore watch when that identity
    publishes bundles (a new device, a key refresh). Without the key the topic
    is an opaque hash. Payloads are signed bundles sealed under a key derived
    from the identity key (see boxless.client.bundles), opaque without it.

``group-{64 hex}`` -- one per group: the group id (the SHA-256 id of its signed
    Create op) in hex. Only members learn the id (it travels inside Olm and
    Megolm), but anyone who has seen it -- a removed member, a service node
    that was told it -- can link the topic to the group and watch its timing
    and sizes. Contents are Megolm-encrypted; senders are inside the ciphertext.

Everything here is pure; strings from peers are judged by :func:`classify`.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from boxless.errors import UsageError
from boxless.waku.sharding import DEFAULT_NUM_SHARDS, ContentTopic

__all__ = [
    "APPLICATION",
    "ENCODING",
    "N_PARTITIONS",
    "TOPIC_VERSION",
    "TopicKind",
    "TopicRef",
    "boxless_shard",
    "bundle_topic",
    "classify",
    "contact_partition",
    "contact_topic",
    "conversation_topic",
    "group_topic",
]

APPLICATION: Final = "boxless"
TOPIC_VERSION: Final = "1"
ENCODING: Final = "proto"
N_PARTITIONS: Final = 4096
MIN_SECRET_BYTES: Final = 16
IDENTITY_KEY_BYTES: Final = 32

_CONVERSATION_INFO: Final = b"boxless conversation topic v1"
_BUNDLE_DOMAIN: Final = b"boxless device bundle topic v1"
_TOPIC_ID_BYTES: Final = 16
_NAME = re.compile(
    r"(chat|bundle)-([0-9a-f]{32})|contact-(0|[1-9][0-9]{0,3})|(group)-([0-9a-f]{64})", re.ASCII
)
GROUP_ID_BYTES: Final = 32


class TopicKind(enum.Enum):
    CONVERSATION = "chat"
    CONTACT_REQUESTS = "contact"
    DEVICE_BUNDLES = "bundle"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class TopicRef:
    """A classified Boxless topic: its kind and its tag (hex id or partition number)."""

    kind: TopicKind
    tag: str


def _topic(name: str) -> str:
    return str(ContentTopic(APPLICATION, TOPIC_VERSION, name, ENCODING))


def _check_identity_key(key: bytes) -> None:
    if len(key) != IDENTITY_KEY_BYTES:
        raise UsageError(f"an identity key is {IDENTITY_KEY_BYTES} bytes, not {len(key)}")


def conversation_topic(shared_secret: bytes) -> str:
    """Return the conversation topic two users derive from their shared secret."""
    if len(shared_secret) < MIN_SECRET_BYTES:
        raise UsageError(f"a conversation secret must be at least {MIN_SECRET_BYTES} bytes")
    hkdf = HKDF(algorithm=SHA256(), length=_TOPIC_ID_BYTES, salt=None, info=_CONVERSATION_INFO)
    return _topic("chat-" + hkdf.derive(shared_secret).hex())


def contact_partition(recipient_identity_key: bytes) -> int:
    """Return the contact-request partition of an identity key."""
    _check_identity_key(recipient_identity_key)
    digest = hashlib.sha256(recipient_identity_key).digest()
    return int.from_bytes(digest, "big") % N_PARTITIONS


def contact_topic(recipient_identity_key: bytes) -> str:
    """Return the topic strangers send contact requests for this identity on."""
    return _topic(f"contact-{contact_partition(recipient_identity_key)}")


def bundle_topic(identity_key: bytes) -> str:
    """Return the topic an identity's devices publish their signed bundles on."""
    _check_identity_key(identity_key)
    digest = hashlib.sha256(_BUNDLE_DOMAIN + identity_key).digest()
    return _topic("bundle-" + digest[:_TOPIC_ID_BYTES].hex())


def group_topic(group_id: bytes) -> str:
    """Return a group's content topic (``/boxless/1/group-<64 hex>/proto``)."""
    if len(group_id) != GROUP_ID_BYTES:
        raise UsageError(f"a group id is {GROUP_ID_BYTES} bytes, not {len(group_id)}")
    return _topic("group-" + group_id.hex())


def boxless_shard(num_shards: int = DEFAULT_NUM_SHARDS) -> int:
    """Return the autosharding shard every Boxless topic maps to."""
    return ContentTopic(APPLICATION, TOPIC_VERSION, "any", ENCODING).shard(num_shards)


def classify(content_topic: str) -> TopicRef | None:
    """Return what a Boxless topic is, or ``None`` for anything else (including malformed)."""
    prefix = f"/{APPLICATION}/{TOPIC_VERSION}/"
    suffix = f"/{ENCODING}"
    if not (content_topic.startswith(prefix) and content_topic.endswith(suffix)):
        return None
    name = content_topic[len(prefix) : len(content_topic) - len(suffix)]
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    if match.group(3) is not None:
        if int(match.group(3)) >= N_PARTITIONS:
            return None
        return TopicRef(TopicKind.CONTACT_REQUESTS, match.group(3))
    if match.group(4) is not None:
        return TopicRef(TopicKind.GROUP, match.group(5))
    return TopicRef(TopicKind(match.group(1)), match.group(2))
