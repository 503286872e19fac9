"""End-to-end encryption: Olm 1:1 sessions, sealed-sender envelopes, verification."""

from boxless.crypto.errors import (
    CryptoPeerError,
    CryptoStateError,
    CryptoUsageError,
    DuplicateMessage,
    SasMismatch,
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
from boxless.crypto.pairwise import PairwiseSealer
from boxless.crypto.sealed import OpenedEnvelope, SealingKeyPair, open_envelope, seal
from boxless.crypto.verification import (
    ContactTrust,
    KeyObservation,
    SasFlow,
    SasParty,
    SasRole,
    SasState,
    TrustLevel,
    format_safety_number,
    mark_verified,
    observe_identity_key,
    safety_number,
)

__all__ = [
    "MIGRATIONS_COMPONENT",
    "AccountStore",
    "ContactTrust",
    "CryptoPeerError",
    "CryptoStateError",
    "CryptoUsageError",
    "DeviceBundle",
    "DuplicateMessage",
    "KeyObservation",
    "OlmCiphertext",
    "OpenedEnvelope",
    "PairwiseSealer",
    "PlainDeviceBundle",
    "SasFlow",
    "SasMismatch",
    "SasParty",
    "SasRole",
    "SasState",
    "SealingKeyPair",
    "SessionManager",
    "TamperedMessage",
    "TransactionalDB",
    "TrustLevel",
    "UnknownSession",
    "format_safety_number",
    "mark_verified",
    "migration_files",
    "observe_identity_key",
    "safety_number",
    "seal",
    "open_envelope",
]
