"""What the crypto layer needs from identity/ and storage/, as small Protocols.

The crypto layer does not import :mod:`boxless.identity` or
:mod:`boxless.storage`; they satisfy these shapes structurally:

* :class:`TransactionalDB` is :class:`boxless.storage.userdb.UserDB`:
  ``transaction()`` yields a DB-API cursor (``?`` placeholders), commits on
  success, rolls back on error, and a block nested in another one (same
  thread) is a savepoint inside it. The nesting is what lets a caller make a
  decrypt and its own "processed" marker one atomic unit.
* :class:`AccountStore` loads and saves this device's vodozemac ``Account``
  (owned by identity/) through the caller's cursor, so a consumed one-time key
  is committed together with the session it created.
* :class:`DeviceBundle` is the verified content of a contact's signed device
  bundle (identity/ checks the signatures before handing it over).

All keys are raw bytes: 32-byte Curve25519/X25519 or Ed25519 public keys.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import vodozemac

from boxless.crypto.errors import CryptoUsageError

#: A DB-API 2.0 cursor with ``?`` placeholders (sqlite3, sqlcipher3).
Cursor = Any

KEY_BYTES = 32


class TransactionalDB(Protocol):
    """A database whose ``transaction()`` blocks nest as savepoints."""

    def transaction(self) -> AbstractContextManager[Cursor]: ...


class AccountStore(Protocol):
    """Load and save this device's Olm account inside the caller's transaction."""

    def load_account(self, cur: Cursor) -> vodozemac.Account: ...

    def save_account(self, cur: Cursor, account: vodozemac.Account) -> None: ...


class DeviceBundle(Protocol):
    """A remote device's verified public keys: enough to open an Olm session offline.

    ``sealing_key`` is a separate X25519 key for sealed-sender envelopes:
    vodozemac never exposes the Olm account's Curve25519 secret, so the
    envelope cannot be encrypted to ``curve25519`` itself.
    """

    @property
    def identity_key(self) -> bytes: ...  # Ed25519 identity key of the account

    @property
    def curve25519(self) -> bytes: ...  # the device's Olm identity key

    @property
    def ed25519(self) -> bytes: ...  # the device's Olm signing key

    @property
    def sealing_key(self) -> bytes: ...  # X25519 key sealed envelopes are encrypted to

    @property
    def one_time_key(self) -> bytes | None: ...

    @property
    def fallback_key(self) -> bytes | None: ...


def check_key(name: str, key: bytes) -> bytes:
    """Return ``key`` if it is 32 bytes, else raise :class:`CryptoUsageError` naming it."""
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise CryptoUsageError(f"{name} must be {KEY_BYTES} bytes")
    return key


@dataclass(frozen=True, slots=True)
class PlainDeviceBundle:
    """A plain :class:`DeviceBundle` (tests, benchmarks, or a decoded contact code)."""

    identity_key: bytes = field(repr=False)
    curve25519: bytes = field(repr=False)
    ed25519: bytes = field(repr=False)
    sealing_key: bytes = field(repr=False)
    one_time_key: bytes | None = field(default=None, repr=False)
    fallback_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_key("identity_key", self.identity_key)
        check_key("curve25519", self.curve25519)
        check_key("ed25519", self.ed25519)
        check_key("sealing_key", self.sealing_key)
        if self.one_time_key is not None:
            check_key("one_time_key", self.one_time_key)
        if self.fallback_key is not None:
            check_key("fallback_key", self.fallback_key)
        if self.one_time_key is None and self.fallback_key is None:
            raise CryptoUsageError("a device bundle needs a one-time key or a fallback key")
