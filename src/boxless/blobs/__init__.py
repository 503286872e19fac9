"""Blobs: content-addressed files as UnixFS DAGs moved by Bitswap (IPFS's own
protocols), a persistent block store with pins, and the pin request protocol.
See docs/blobs.md."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from boxless.blobs.bitswap import BadDag, Bitswap, BlobUnavailable, DagFetcher, DagLimits
    from boxless.blobs.cid import Cid
    from boxless.blobs.client import BlobClient, PinResult, PutResult
    from boxless.blobs.pin import PIN_PROTOCOL, PinPolicy, PinRefused, PinService
    from boxless.blobs.service import BlobService
    from boxless.blobs.store import BlockStore, QuotaExceeded
    from boxless.blobs.unixfs import DagBuilder

# Names load on first use (PEP 562): `boxless.blobs.cid`, which the chat layer's
# attachment descriptor needs, must not pull py-libp2p in with Bitswap, or every
# `boxless` command would pay for it at start.
_WHERE = {
    "BadDag": "bitswap",
    "Bitswap": "bitswap",
    "BlobUnavailable": "bitswap",
    "DagFetcher": "bitswap",
    "DagLimits": "bitswap",
    "Cid": "cid",
    "BlobClient": "client",
    "PinResult": "client",
    "PutResult": "client",
    "PIN_PROTOCOL": "pin",
    "PinPolicy": "pin",
    "PinRefused": "pin",
    "PinService": "pin",
    "BlobService": "service",
    "BlockStore": "store",
    "QuotaExceeded": "store",
    "DagBuilder": "unixfs",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'boxless.blobs' has no attribute {name!r}")
    return getattr(importlib.import_module(f"boxless.blobs.{where}"), name)


__all__ = [
    "PIN_PROTOCOL",
    "BadDag",
    "Bitswap",
    "BlobClient",
    "BlobService",
    "BlobUnavailable",
    "BlockStore",
    "Cid",
    "DagBuilder",
    "DagFetcher",
    "DagLimits",
    "PinPolicy",
    "PinRefused",
    "PinResult",
    "PinService",
    "PutResult",
    "QuotaExceeded",
]
