"""The user's encrypted local database (SQLCipher, Argon2id-derived key)."""

from boxless.storage.userdb import (
    DEFAULT_KDF,
    KdfParams,
    UserDB,
    UserDBExists,
    UserDBNotFound,
    UserDBSchemaError,
    WeakPassphrase,
    WrongPassphrase,
    check_new_passphrase,
    create_user_db,
    header_path,
    migration_files,
    open_user_db,
    remove_user_db,
)

__all__ = [
    "DEFAULT_KDF",
    "KdfParams",
    "UserDB",
    "UserDBExists",
    "UserDBNotFound",
    "UserDBSchemaError",
    "WeakPassphrase",
    "WrongPassphrase",
    "check_new_passphrase",
    "create_user_db",
    "header_path",
    "migration_files",
    "open_user_db",
    "remove_user_db",
]
