"""Verification: safety numbers, the SAS emoji flow, and flagging changed identity keys.

Theory of operation
-------------------
**Safety number** (Signal's displayable fingerprint, same derivation): for
each party, ``h = version (2 bytes, 0) || identity key || stable id``, then
5200 times ``h = SHA-512(h || identity key)``; the first 30 bytes, read as six
big-endian 5-byte integers each taken mod 100000, give 30 digits. The two
30-digit halves are sorted and concatenated, so both people see the same 60
digits, shown as 12 groups of 5. Boxless accounts have no phone number: an
account is addressed by its Ed25519 identity key, so the stable id is that key.

**SAS** (:class:`SasFlow`, sans-IO): the two devices run an X25519 exchange
(vodozemac ``Sas``) and each person compares 7 emoji (or 3 four-digit
numbers) derived from the shared secret. A man in the middle has a different
secret with each side, so the emoji differ. Steps, one state table below::

    initiator                               responder
    start() -> commitment  ---------------> receive_commitment(c) -> key_R
    receive_key(key_R) -> key_I  <--------- (key_R)
    (key_I) -------------------------------> receive_key(key_I)   [checks c]
    emoji() / decimals()                     emoji() / decimals()
    confirm() -> mac  <--------------------> confirm() -> mac
    receive_mac(mac) -> verified             receive_mac(mac) -> verified

The initiator commits to its key (``SHA-256`` over it and the transcript)
before seeing the responder's, and the responder reveals its key before
seeing the initiator's: neither can choose a key after seeing the other's,
so a MITM cannot grind for colliding emoji (as the Matrix spec's
commitment). The commitment also covers both parties' keys as each side
believes them, so two devices told different keys fail before any emoji
are shown. The SAS info string binds the flow id, both parties' identity
keys and device keys (as each side *believes* them) and both SAS keys; the
MACs each side sends over its own keys bind the same, so a MITM who
substitutes a key, or replays a MAC from another flow, is caught even if the
users wave the emoji through.

**Key changes** (:func:`observe_identity_key`): pure functions on the stored
trust record. A verified contact whose identity key changes becomes
``VERIFICATION_BROKEN`` and stays so until verified again (or until the key
returns to the one that was verified).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Final

import vodozemac

from boxless.crypto.errors import CryptoUsageError, SasMismatch
from boxless.crypto.interfaces import KEY_BYTES, check_key

# ---------------------------------------------------------------- safety number

SAFETY_NUMBER_VERSION: Final = 0
SAFETY_NUMBER_ITERATIONS: Final = 5200


def _fingerprint_digits(identity_key: bytes, stable_id: bytes) -> str:
    digest = SAFETY_NUMBER_VERSION.to_bytes(2, "big") + identity_key + stable_id
    for _ in range(SAFETY_NUMBER_ITERATIONS):
        digest = hashlib.sha512(digest + identity_key).digest()
    return "".join(
        f"{int.from_bytes(digest[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5)
    )


def safety_number(our_identity_key: bytes, their_identity_key: bytes) -> str:
    """The 60-digit safety number of two identity keys; the same from both sides."""
    ours = _fingerprint_digits(check_key("identity key", our_identity_key), our_identity_key)
    theirs = _fingerprint_digits(check_key("identity key", their_identity_key), their_identity_key)
    return ours + theirs if ours <= theirs else theirs + ours


def format_safety_number(number: str) -> str:
    """``number`` as 12 space-separated groups of 5 digits."""
    if len(number) != 60 or not number.isdigit():
        raise CryptoUsageError("a safety number is 60 digits")
    return " ".join(number[i : i + 5] for i in range(0, 60, 5))


# ---------------------------------------------------------------- SAS

#: The 64 SAS emoji of the Matrix spec (data-definitions/sas-emoji.json), by index.
SAS_EMOJI: Final[tuple[tuple[str, str], ...]] = (
    ("\U0001f436", "Dog"),  # 0 U+1F436
    ("\U0001f431", "Cat"),  # 1 U+1F431
    ("\U0001f981", "Lion"),  # 2 U+1F981
    ("\U0001f40e", "Horse"),  # 3 U+1F40E
    ("\U0001f984", "Unicorn"),  # 4 U+1F984
    ("\U0001f437", "Pig"),  # 5 U+1F437
    ("\U0001f418", "Elephant"),  # 6 U+1F418
    ("\U0001f430", "Rabbit"),  # 7 U+1F430
    ("\U0001f43c", "Panda"),  # 8 U+1F43C
    ("\U0001f413", "Rooster"),  # 9 U+1F413
    ("\U0001f427", "Penguin"),  # 10 U+1F427
    ("\U0001f422", "Turtle"),  # 11 U+1F422
    ("\U0001f41f", "Fish"),  # 12 U+1F41F
    ("\U0001f419", "Octopus"),  # 13 U+1F419
    ("\U0001f98b", "Butterfly"),  # 14 U+1F98B
    ("\U0001f337", "Flower"),  # 15 U+1F337
    ("\U0001f333", "Tree"),  # 16 U+1F333
    ("\U0001f335", "Cactus"),  # 17 U+1F335
    ("\U0001f344", "Mushroom"),  # 18 U+1F344
    ("\U0001f30f", "Globe"),  # 19 U+1F30F
    ("\U0001f319", "Moon"),  # 20 U+1F319
    ("\u2601\ufe0f", "Cloud"),  # 21 U+2601U+FE0F
    ("\U0001f525", "Fire"),  # 22 U+1F525
    ("\U0001f34c", "Banana"),  # 23 U+1F34C
    ("\U0001f34e", "Apple"),  # 24 U+1F34E
    ("\U0001f353", "Strawberry"),  # 25 U+1F353
    ("\U0001f33d", "Corn"),  # 26 U+1F33D
    ("\U0001f355", "Pizza"),  # 27 U+1F355
    ("\U0001f382", "Cake"),  # 28 U+1F382
    ("\u2764\ufe0f", "Heart"),  # 29 U+2764U+FE0F
    ("\U0001f600", "Smiley"),  # 30 U+1F600
    ("\U0001f916", "Robot"),  # 31 U+1F916
    ("\U0001f3a9", "Hat"),  # 32 U+1F3A9
    ("\U0001f453", "Glasses"),  # 33 U+1F453
    ("\U0001f527", "Spanner"),  # 34 U+1F527
    ("\U0001f385", "Santa"),  # 35 U+1F385
    ("\U0001f44d", "Thumbs Up"),  # 36 U+1F44D
    ("\u2602\ufe0f", "Umbrella"),  # 37 U+2602U+FE0F
    ("\u231b", "Hourglass"),  # 38 U+231B
    ("\u23f0", "Clock"),  # 39 U+23F0
    ("\U0001f381", "Gift"),  # 40 U+1F381
    ("\U0001f4a1", "Light Bulb"),  # 41 U+1F4A1
    ("\U0001f4d5", "Book"),  # 42 U+1F4D5
    ("\u270f\ufe0f", "Pencil"),  # 43 U+270FU+FE0F
    ("\U0001f4ce", "Paperclip"),  # 44 U+1F4CE
    ("\u2702\ufe0f", "Scissors"),  # 45 U+2702U+FE0F
    ("\U0001f512", "Lock"),  # 46 U+1F512
    ("\U0001f511", "Key"),  # 47 U+1F511
    ("\U0001f528", "Hammer"),  # 48 U+1F528
    ("\u260e\ufe0f", "Telephone"),  # 49 U+260EU+FE0F
    ("\U0001f3c1", "Flag"),  # 50 U+1F3C1
    ("\U0001f682", "Train"),  # 51 U+1F682
    ("\U0001f6b2", "Bicycle"),  # 52 U+1F6B2
    ("\u2708\ufe0f", "Aeroplane"),  # 53 U+2708U+FE0F
    ("\U0001f680", "Rocket"),  # 54 U+1F680
    ("\U0001f3c6", "Trophy"),  # 55 U+1F3C6
    ("\u26bd", "Ball"),  # 56 U+26BD
    ("\U0001f3b8", "Guitar"),  # 57 U+1F3B8
    ("\U0001f3ba", "Trumpet"),  # 58 U+1F3BA
    ("\U0001f514", "Bell"),  # 59 U+1F514
    ("\u2693", "Anchor"),  # 60 U+2693
    ("\U0001f3a7", "Headphones"),  # 61 U+1F3A7
    ("\U0001f4c1", "Folder"),  # 62 U+1F4C1
    ("\U0001f4cc", "Pin"),  # 63 U+1F4CC
)

_FLOW_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class SasParty:
    """One side's keys as the *other* side believes them (or as we know our own)."""

    identity_key: bytes = field(repr=False)  # Ed25519 identity key of the account
    device_curve25519: bytes = field(repr=False)
    device_ed25519: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_key("identity key", self.identity_key)
        check_key("device Curve25519 key", self.device_curve25519)
        check_key("device Ed25519 key", self.device_ed25519)

    def describe(self) -> str:
        """The canonical text the SAS info strings and MACs cover."""
        return ",".join(
            _b64(key) for key in (self.identity_key, self.device_curve25519, self.device_ed25519)
        )


class SasRole(Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


class SasState(Enum):
    NEW = "new"
    COMMITTED = "committed"  # initiator: commitment sent, waiting for the responder's key
    AWAITING_KEY = "awaiting_key"  # responder: key sent, waiting for the initiator's key
    KEYS_EXCHANGED = "keys_exchanged"  # emoji ready; neither MAC done
    CONFIRMED = "confirmed"  # we sent our MAC; theirs not yet checked
    THEIRS_VERIFIED = "theirs_verified"  # their MAC checked; we have not confirmed
    VERIFIED = "verified"
    FAILED = "failed"
    CANCELLED = "cancelled"


# (state, role or None for both, step) -> next state. The whole machine.
_TRANSITIONS: Final[dict[tuple[SasState, SasRole | None, str], SasState]] = {
    (SasState.NEW, SasRole.INITIATOR, "start"): SasState.COMMITTED,
    (SasState.COMMITTED, SasRole.INITIATOR, "receive_key"): SasState.KEYS_EXCHANGED,
    (SasState.NEW, SasRole.RESPONDER, "receive_commitment"): SasState.AWAITING_KEY,
    (SasState.AWAITING_KEY, SasRole.RESPONDER, "receive_key"): SasState.KEYS_EXCHANGED,
    (SasState.KEYS_EXCHANGED, None, "confirm"): SasState.CONFIRMED,
    (SasState.KEYS_EXCHANGED, None, "receive_mac"): SasState.THEIRS_VERIFIED,
    (SasState.CONFIRMED, None, "receive_mac"): SasState.VERIFIED,
    (SasState.THEIRS_VERIFIED, None, "confirm"): SasState.VERIFIED,
}
_SAS_READY: Final = frozenset(
    {SasState.KEYS_EXCHANGED, SasState.CONFIRMED, SasState.THEIRS_VERIFIED, SasState.VERIFIED}
)


class SasFlow:
    """One SAS verification between our device and theirs; no I/O (see module docstring).

    Every method returns what to send (or nothing); an out-of-order call
    raises :class:`CryptoUsageError`; a failed check raises
    :class:`SasMismatch` and leaves the flow ``FAILED``.
    """

    def __init__(self, ours: SasParty, theirs: SasParty, *, role: SasRole, flow_id: str) -> None:
        if not _FLOW_ID.match(flow_id):
            raise CryptoUsageError("a SAS flow id is 1-64 characters of [A-Za-z0-9_-]")
        self.ours = ours
        self.theirs = theirs
        self.role = role
        self.flow_id = flow_id
        self.state = SasState.NEW
        self._sas: vodozemac.Sas | None = vodozemac.Sas()
        self._our_key: bytes = self._sas.public_key.to_bytes()
        self._their_key: bytes = b""
        self._their_commitment: bytes = b""
        self._established: vodozemac.EstablishedSas | None = None

    def __repr__(self) -> str:
        return f"<SasFlow {self.role.value} {self.state.value}>"

    # -- the steps

    def start(self) -> bytes:
        """Initiator: begin; returns the commitment to send."""
        self._step("start")
        return self._commitment(self._our_key)

    def receive_commitment(self, commitment: bytes) -> bytes:
        """Responder: take the initiator's commitment; returns our public key to send."""
        self._step("receive_commitment")
        if len(commitment) != hashlib.sha256().digest_size:
            self._fail("the SAS commitment is malformed")
        self._their_commitment = commitment
        return self._our_key

    def receive_key(self, their_key: bytes) -> bytes | None:
        """Take the other side's public key; the initiator gets its own key back to send."""
        self._step("receive_key")
        if len(their_key) != KEY_BYTES:
            self._fail("the SAS public key is malformed")
        if self.role is SasRole.RESPONDER and not hmac.compare_digest(
            self._commitment(their_key), self._their_commitment
        ):
            self._fail(
                "the initiator's SAS key does not match its commitment: the two devices "
                "hold different keys for each other, or someone is in the middle"
            )
        self._their_key = their_key
        sas, self._sas = self._sas, None
        assert sas is not None  # the state table allows one receive_key
        try:
            self._established = sas.diffie_hellman(
                vodozemac.Curve25519PublicKey.from_bytes(their_key)
            )
        except vodozemac.KeyException:
            self._fail("the SAS public key is unusable")
        return self._our_key if self.role is SasRole.INITIATOR else None

    def emoji(self) -> list[tuple[str, str]]:
        """The 7 (emoji, name) pairs to compare, the same on both devices."""
        return [SAS_EMOJI[index] for index in self._bytes().emoji_indices]

    def decimals(self) -> tuple[int, int, int]:
        """The three 4-digit numbers to compare instead of emoji."""
        first, second, third = self._bytes().decimals
        return (first, second, third)

    def confirm(self) -> bytes:
        """The user saw matching emoji: returns our MAC to send."""
        established = self._ready()
        self._step("confirm")
        tag = established.calculate_mac(
            self.ours.describe(), self._mac_info(sender=self.ours, receiver=self.theirs)
        )
        return _unb64(tag)

    def receive_mac(self, mac: bytes) -> bool:
        """Check the other side's MAC; returns True once both sides have confirmed."""
        established = self._ready()
        self._step("receive_mac")
        try:
            established.verify_mac(
                self.theirs.describe(),
                self._mac_info(sender=self.theirs, receiver=self.ours),
                _b64(mac),
            )
        except vodozemac.SasException:
            self._fail(
                "the other device's SAS MAC does not match: keys differ or someone is in the middle"
            )
        return self.verified

    def cancel(self) -> None:
        """The user said the emoji differ (or gave up)."""
        self.state = SasState.CANCELLED
        self._established = None

    @property
    def verified(self) -> bool:
        return self.state is SasState.VERIFIED

    # -- internals

    def _step(self, step: str) -> None:
        nxt = _TRANSITIONS.get((self.state, self.role, step)) or _TRANSITIONS.get(
            (self.state, None, step)
        )
        if nxt is None:
            raise CryptoUsageError(f"SAS step {step} is not allowed in state {self.state.value}")
        self.state = nxt

    def _fail(self, reason: str) -> None:
        self.state = SasState.FAILED
        self._established = None
        raise SasMismatch(reason)

    def _ready(self) -> vodozemac.EstablishedSas:
        if self.state not in _SAS_READY or self._established is None:
            raise CryptoUsageError(f"SAS is not ready in state {self.state.value}")
        return self._established

    def _ordered(self) -> tuple[SasParty, bytes, SasParty, bytes]:
        if self.role is SasRole.INITIATOR:
            return self.ours, self._our_key, self.theirs, self._their_key
        return self.theirs, self._their_key, self.ours, self._our_key

    def _commitment(self, initiator_key: bytes) -> bytes:
        initiator, _, responder, _ = self._ordered()
        transcript = (
            f"BOXLESS_SAS_COMMIT_V1|{self.flow_id}|{initiator.describe()}|{responder.describe()}|"
        )
        return hashlib.sha256(transcript.encode("ascii") + initiator_key).digest()

    def _bytes(self) -> vodozemac.SasBytes:
        initiator, initiator_key, responder, responder_key = self._ordered()
        info = (
            f"BOXLESS_SAS_V1|{self.flow_id}|{initiator.describe()}|{_b64(initiator_key)}"
            f"|{responder.describe()}|{_b64(responder_key)}"
        )
        return self._ready().bytes(info)

    def _mac_info(self, *, sender: SasParty, receiver: SasParty) -> str:
        _, initiator_key, _, responder_key = self._ordered()
        return (
            f"BOXLESS_SAS_MAC_V1|{self.flow_id}|{sender.describe()}|{receiver.describe()}"
            f"|{_b64(initiator_key)}|{_b64(responder_key)}"
        )


# ---------------------------------------------------------------- key changes


class TrustLevel(Enum):
    UNVERIFIED = "unverified"
    VERIFIED = "verified"
    VERIFICATION_BROKEN = "verification_broken"


@dataclass(frozen=True, slots=True)
class ContactTrust:
    """What we store about a contact's identity key: the current one, the verified one."""

    identity_key: bytes = field(repr=False)
    verified_key: bytes | None = field(default=None, repr=False)

    @property
    def level(self) -> TrustLevel:
        if self.verified_key is None:
            return TrustLevel.UNVERIFIED
        if hmac.compare_digest(self.verified_key, self.identity_key):
            return TrustLevel.VERIFIED
        return TrustLevel.VERIFICATION_BROKEN


@dataclass(frozen=True, slots=True)
class KeyObservation:
    """The result of :func:`observe_identity_key`: the record to store and what happened."""

    trust: ContactTrust
    changed: bool  # the identity key differs from the stored one
    verification_broken: bool  # this change broke a verification: flag it loudly


def observe_identity_key(trust: ContactTrust, seen: bytes) -> KeyObservation:
    """Fold an identity key seen for a contact into its stored trust record."""
    check_key("identity key", seen)
    if hmac.compare_digest(trust.identity_key, seen):
        return KeyObservation(trust, changed=False, verification_broken=False)
    updated = replace(trust, identity_key=seen)
    broken = trust.level is TrustLevel.VERIFIED and updated.level is TrustLevel.VERIFICATION_BROKEN
    return KeyObservation(updated, changed=True, verification_broken=broken)


def mark_verified(trust: ContactTrust) -> ContactTrust:
    """The current identity key was verified (safety number or SAS)."""
    return replace(trust, verified_key=trust.identity_key)
