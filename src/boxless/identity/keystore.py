"""Persist the identity key and this device's keys in the encrypted user DB.

Nothing here touches a file: the identity private key and the pickled
vodozemac ``Account`` are rows of the SQLCipher database (``identity``
migrations). The account pickle is additionally encrypted by vodozemac with a
32-byte key from :meth:`UserDB.derive_key` (label :data:`ACCOUNT_PICKLE_LABEL`),
so it is never in clear even in memory dumps of the SQL layer. No method logs
or returns a secret in a message.

:meth:`Keystore.load_account` / :meth:`Keystore.save_account` take the
caller's cursor: they are the ``AccountStore`` that
``boxless.crypto.olm_sessions.SessionManager`` expects, so a consumed one-time
key commits in the same transaction as the session it created.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import vodozemac

from boxless.errors import StorageError, UsageError
from boxless.identity.keys import Device, DeviceCertificate, Identity
from boxless.storage.userdb import UserDB, migration_files
from boxless.wire import identity_pb2

log = logging.getLogger(__name__)

COMPONENT = "identity"
ACCOUNT_PICKLE_LABEL = "olm account pickle v1"


class NoIdentity(UsageError):
    """The database holds no identity yet."""


class IdentityExists(UsageError):
    """The database already holds an identity."""


class NoWalletSeed(UsageError):
    """The account predates the wallet: its seed was never stored."""


class Keystore:
    """Identity and device keys in a :class:`UserDB` (applies its migrations on creation)."""

    def __init__(self, db: UserDB) -> None:
        self.db = db
        db.migrate(COMPONENT, migration_files("boxless.identity"))

    def __repr__(self) -> str:
        return f"Keystore({self.db!r})"

    def _pickle_key(self) -> bytes:
        return self.db.derive_key(ACCOUNT_PICKLE_LABEL)

    # -- identity

    def has_identity(self) -> bool:
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM identity WHERE id = 1")
            return cur.fetchone() is not None

    def save_identity(self, identity: Identity, now: float) -> None:
        """Store the identity key; refuses to replace an existing one."""
        with self.db.transaction() as cur:
            cur.execute("SELECT 1 FROM identity WHERE id = 1")
            if cur.fetchone() is not None:
                raise IdentityExists(f"{self.db.path} already holds an identity")
            cur.execute(
                "INSERT INTO identity (id, private_key, public_key, created_at)"
                " VALUES (1, ?, ?, ?)",
                (identity.private_bytes(), identity.public_key, int(now)),
            )
            seed = identity.wallet_seed()
            if seed is not None:
                cur.execute(
                    "INSERT INTO wallet_seed (id, seed, created_at) VALUES (1, ?, ?)",
                    (seed, int(now)),
                )
        log.info("stored identity %s", identity.fingerprint)

    # -- wallet seed

    def load_wallet_seed(self) -> bytes:
        """The BIP-39 seed the wallet keys derive from (raises NoWalletSeed)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT seed FROM wallet_seed WHERE id = 1")
            row = cur.fetchone()
        if row is None:
            raise NoWalletSeed(
                "this account was made before the wallet existed, so its wallet keys are not "
                "stored yet: run `boxless wallet import` and enter your recovery phrase once"
            )
        return bytes(row[0])

    def save_wallet_seed(self, from_phrase: Identity, now: float) -> None:
        """Store the seed of ``from_phrase`` (an :meth:`Identity.from_phrase`), which
        must be this account's identity: a phrase of another account is refused."""
        seed = from_phrase.wallet_seed()
        if seed is None:
            raise UsageError("only an identity made from its recovery phrase carries a seed")
        if from_phrase.public_key != self.load_identity().public_key:
            raise UsageError(
                "that recovery phrase belongs to another account (its identity key differs); "
                "enter this account's own phrase"
            )
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO wallet_seed (id, seed, created_at) VALUES (1, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET seed = excluded.seed",
                (seed, int(now)),
            )

    def load_identity(self) -> Identity:
        with self.db.transaction() as cur:
            cur.execute("SELECT private_key, public_key FROM identity WHERE id = 1")
            row = cur.fetchone()
        if row is None:
            raise NoIdentity(
                f"{self.db.path} holds no identity: run `boxless init`, or, if this device "
                "was revoked from another of yours (its keys wiped), `boxless link` into a new --home"
            )
        identity = Identity.from_private_bytes(bytes(row[0]))
        if identity.public_key != bytes(row[1]):
            raise StorageError(f"the identity key in {self.db.path} is damaged")
        return identity

    # -- device

    def save_device(self, device: Device, now: float) -> None:
        """Store (or replace) this device: certificate, account pickle, fallback and sealing keys."""
        certificate = device.certificate.to_proto().SerializeToString()
        pickle = device.account.pickle(self._pickle_key())
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO device (id, device_id, certificate, account_pickle, fallback_key,"
                " sealing_private_key, fallback_created_at, updated_at)"
                " VALUES (1, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id,"
                " certificate = excluded.certificate, account_pickle = excluded.account_pickle,"
                " sealing_private_key = excluded.sealing_private_key,"
                " fallback_created_at = CASE WHEN fallback_key = excluded.fallback_key"
                "   THEN fallback_created_at ELSE excluded.fallback_created_at END,"
                " fallback_key = excluded.fallback_key, updated_at = excluded.updated_at",
                (
                    device.device_id,
                    certificate,
                    pickle,
                    device.fallback_key,
                    device.sealing_private_key(),
                    int(now),
                    int(now),
                ),
            )

    def load_device(self) -> Device:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT certificate, account_pickle, fallback_key, sealing_private_key"
                " FROM device WHERE id = 1"
            )
            row = cur.fetchone()
        if row is None:
            raise NoIdentity(f"{self.db.path} holds no device yet: run `boxless init`")
        msg = identity_pb2.DeviceCertificate()
        msg.ParseFromString(bytes(row[0]))
        certificate = DeviceCertificate.from_proto(msg)
        account = self._unpickle(row[1])
        try:
            return Device(account, certificate, bytes(row[2]), bytes(row[3]))
        except UsageError:
            raise StorageError(f"the device keys in {self.db.path} are damaged") from None

    # -- AccountStore (for boxless.crypto): inside the caller's transaction

    def load_account(self, cur: Any) -> vodozemac.Account:
        """This device's Olm account, read through the caller's cursor."""
        cur.execute("SELECT account_pickle FROM device WHERE id = 1")
        row = cur.fetchone()
        if row is None:
            raise NoIdentity(f"{self.db.path} holds no device yet: run `boxless init`")
        return self._unpickle(row[0])

    def save_account(self, cur: Any, account: vodozemac.Account) -> None:
        """Store the account after it changed (sessions created, one-time keys used)."""
        cur.execute(
            "UPDATE device SET account_pickle = ?, updated_at = ? WHERE id = 1",
            (account.pickle(self._pickle_key()), int(time.time())),
        )
        if cur.rowcount != 1:
            raise NoIdentity(f"{self.db.path} holds no device yet: run `boxless init`")

    def _unpickle(self, pickle: str) -> vodozemac.Account:
        try:
            return vodozemac.Account.from_pickle(pickle, self._pickle_key())
        except vodozemac.PickleException:
            raise StorageError(f"the device account in {self.db.path} is damaged") from None

    def fallback_created_at(self) -> int:
        """When the current fallback key was made (Unix seconds), for rotation policy."""
        with self.db.transaction() as cur:
            cur.execute("SELECT fallback_created_at FROM device WHERE id = 1")
            row = cur.fetchone()
        if row is None:
            raise NoIdentity(f"{self.db.path} holds no device yet: run `boxless init`")
        return int(row[0])
