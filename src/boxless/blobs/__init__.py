"""Blobs: content-addressed files as UnixFS DAGs moved by Bitswap (IPFS's own
protocols), a persistent block store with pins, and the pin request protocol.
See docs/blobs.md."""

from boxless.blobs.bitswap import BadDag, Bitswap, BlobUnavailable, DagFetcher, DagLimits
from boxless.blobs.cid import Cid
from boxless.blobs.client import BlobClient, PinResult, PutResult
from boxless.blobs.pin import PIN_PROTOCOL, PinPolicy, PinRefused, PinService
from boxless.blobs.service import BlobService
from boxless.blobs.store import BlockStore, QuotaExceeded
from boxless.blobs.unixfs import DagBuilder

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
