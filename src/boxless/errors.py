"""The one root exception and its subclasses, by who caused the failure.

Following trio's habit: an error says whether the local code misused an API
(:class:`UsageError`), a remote peer sent bad input (:class:`PeerError`), or the
network/storage let us down (:class:`NetworkError`, :class:`StorageError`).
"""

from __future__ import annotations


class BoxlessError(Exception):
    """Root of every error Boxless raises on purpose."""


class UsageError(BoxlessError):
    """The caller (local code or the user) asked for something invalid."""


class ConfigError(UsageError):
    """A configuration value is missing or malformed."""


class PeerError(BoxlessError):
    """A remote peer sent something that breaks the protocol."""


class DecodeError(PeerError):
    """Untrusted bytes could not be decoded into a valid message."""


class ValidationError(PeerError):
    """A decoded message breaks a rule (size, timestamp, topic syntax)."""


class NetworkError(BoxlessError):
    """The network failed: a dial, a stream, a timeout."""


class StorageError(BoxlessError):
    """The archive could not read or write."""
