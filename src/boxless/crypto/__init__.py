"""End-to-end encryption: Olm 1:1 sessions and sealed-sender envelopes."""

from boxless.crypto.errors import (
    CryptoPeerError,
    CryptoStateError,
    CryptoUsageError,
    DuplicateMessage,
    TamperedMessage,
    UnknownSession,
)
from boxless.crypto.interfaces import (
    AccountStore,
    DeviceBundle,
    PlainDeviceBundle,
    TransactionalDB,
)
from boxless.crypto.olm_sessions import (
    MIGRATIONS_COMPONENT,
    OlmCiphertext,
    SessionManager,
    migration_files,
)
from boxless.crypto.sealed import OpenedEnvelope, SealingKeyPair, open_envelope, seal

__all__ = [
    "MIGRATIONS_COMPONENT",
    "AccountStore",
    "CryptoPeerError",
    "CryptoStateError",
    "CryptoUsageError",
    "DeviceBundle",
    "DuplicateMessage",
    "OlmCiphertext",
    "OpenedEnvelope",
    "PlainDeviceBundle",
    "SealingKeyPair",
    "SessionManager",
    "TamperedMessage",
    "TransactionalDB",
    "UnknownSession",
    "migration_files",
    "seal",
    "open_envelope",
]
