"""Errors of the crypto layer, placed under :mod:`boxless.errors` by who caused them.

None of these messages ever contains a key, a session id or plaintext: they
are written for logs and for the user, and both outlive the secret.
"""

from __future__ import annotations

from boxless.errors import PeerError, StorageError, UsageError


class CryptoPeerError(PeerError):
    """A peer's encrypted message could not be used."""


class DuplicateMessage(CryptoPeerError):
    """The message was already decrypted (a replay or a re-delivery); drop it.

    The session is untouched: Olm deletes a message key once used, so a second
    copy simply finds no key.
    """


class TamperedMessage(CryptoPeerError):
    """The message failed authentication: it was altered or forged.

    The session is untouched and keeps working for the next genuine message.
    """


class UnknownSession(CryptoPeerError):
    """No session here can decrypt this message, and it cannot start one.

    Typical causes: this device lost its state (a restore from the recovery
    phrase), pruned an old session, or the sender used a one-time key this
    device no longer has. Nothing was decrypted, so nothing is lost yet: the
    chat layer asks the sender to re-establish (see
    :mod:`boxless.crypto.olm_sessions`, "Recovering an unknown session") and
    the sender re-sends what was not acknowledged.
    """


class SasMismatch(CryptoPeerError):
    """The short-authentication-string check failed: someone may be in the middle."""


class CryptoUsageError(UsageError):
    """Local code called the crypto layer wrongly (bad key size, wrong step)."""


class CryptoStateError(StorageError):
    """Stored crypto state cannot be loaded (wrong pickle key or corrupted row)."""
