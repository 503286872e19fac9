"""One user's account on this device: the database in a home directory, opened.

:func:`create_account` makes ``<home>/user.db`` (with its key header), stores
the identity key, a new device and the profile in one go, and deletes the
database again if any step fails, so a half-made account never stays behind.
:func:`open_account` opens it again with the passphrase.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from boxless.errors import StorageError
from boxless.identity.contact_code import ContactCode, make_contact_code
from boxless.identity.keys import Device, Identity
from boxless.identity.keystore import Keystore
from boxless.identity.profile import Profile, load_profile, save_profile
from boxless.storage.userdb import (
    DEFAULT_KDF,
    KdfParams,
    UserDB,
    UserDBExists,
    create_user_db,
    header_path,
    open_user_db,
    remove_user_db,
)

USER_DB_NAME = "user.db"


def user_db_path(home: Path) -> Path:
    """Where the user database of ``home`` lives."""
    return home / USER_DB_NAME


def account_exists(home: Path) -> bool:
    db_path = user_db_path(home)
    return db_path.exists() or header_path(db_path).exists()


@dataclass(slots=True)
class LocalAccount:
    """An open account: close it (or use ``with``) when done."""

    db: UserDB
    keystore: Keystore
    identity: Identity
    device: Device
    profile: Profile

    def contact_code(self, now: float) -> ContactCode:
        """A fresh contact code for this device, valid from ``now``."""
        return make_contact_code(self.identity, self.device, self.profile.display_name, now)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> LocalAccount:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalAccount({self.identity!r}, {self.device!r})"


def create_account(
    home: Path,
    passphrase: str,
    identity: Identity,
    profile: Profile,
    now: float,
    kdf: KdfParams = DEFAULT_KDF,
) -> LocalAccount:
    """Create the account database in ``home`` with a new device for ``identity``."""
    db_path = user_db_path(home)
    if account_exists(home):
        raise UserDBExists(
            f"{home} already has a Boxless account; use another --home, "
            "or remove that directory if you really mean to replace it"
        )
    db = create_user_db(db_path, passphrase, kdf=kdf)
    try:
        keystore = Keystore(db)
        device = Device.create(identity, now)
        with db.transaction():
            keystore.save_identity(identity, now)
            keystore.save_device(device, now)
            save_profile(db, profile)
    except BaseException:
        db.close()
        remove_user_db(db_path)
        raise
    return LocalAccount(db, keystore, identity, device, profile)


def open_account(home: Path, passphrase: str) -> LocalAccount:
    """Open the account in ``home`` (raises UserDBNotFound / WrongPassphrase)."""
    db = open_user_db(user_db_path(home), passphrase)
    try:
        keystore = Keystore(db)
        identity = keystore.load_identity()
        device = keystore.load_device()
        profile = load_profile(db)
        if profile is None:
            raise StorageError(f"the account in {home} has no profile; it is damaged")
    except BaseException:
        db.close()
        raise
    return LocalAccount(db, keystore, identity, device, profile)
