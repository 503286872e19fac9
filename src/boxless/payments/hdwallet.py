"""The wallet's Ethereum key: BIP-32 derivation of ``m/44'/60'/0'/0/0`` from the
account's BIP-39 seed (the same words give the same address in MetaMask or any
BIP-44 wallet), and EIP-55 checksummed addresses.

BIP-32 private derivation only (no extended public keys needed): master key =
HMAC-SHA512("Bitcoin seed", seed); child i = (IL + k) mod n with IL from
HMAC-SHA512(chain code, 0x00 ‖ k ‖ i) for hardened i, or (compressed pubkey ‖ i).
"""

from __future__ import annotations

import functools
import hashlib
import hmac

import coincurve
from Crypto.Hash import keccak

from boxless.errors import UsageError

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HARDENED = 0x80000000
WALLET_PATH = "m/44'/60'/0'/0/0"


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def _split(digest: bytes) -> tuple[int, bytes]:
    return int.from_bytes(digest[:32], "big"), digest[32:]


def parse_path(path: str) -> list[int]:
    parts = path.split("/")
    if parts[0] != "m":
        raise UsageError(f"a BIP-32 path starts with m/, not {path!r}")
    indexes = []
    for part in parts[1:]:
        hardened = part.endswith("'") or part.endswith("H")
        digits = part[:-1] if hardened else part
        if not digits.isdigit() or int(digits) >= HARDENED:
            raise UsageError(f"bad BIP-32 path element {part!r}")
        indexes.append(int(digits) + (HARDENED if hardened else 0))
    return indexes


def derive_private_key(seed: bytes, path: str = WALLET_PATH) -> bytes:
    """The 32-byte secp256k1 private key at ``path`` under BIP-39 ``seed``."""
    if not 16 <= len(seed) <= 64:
        raise UsageError(f"a BIP-32 seed has 16 to 64 bytes, not {len(seed)}")
    key, chain = _split(hmac.digest(b"Bitcoin seed", seed, hashlib.sha512))
    if not 0 < key < SECP256K1_N:
        raise UsageError("this seed gives an invalid BIP-32 master key")
    for index in parse_path(path):
        if index >= HARDENED:
            data = b"\x00" + key.to_bytes(32, "big")
        else:
            data = coincurve.PrivateKey(key.to_bytes(32, "big")).public_key.format()
        tweak, chain = _split(hmac.digest(chain, data + index.to_bytes(4, "big"), hashlib.sha512))
        key = (tweak + key) % SECP256K1_N
        if tweak >= SECP256K1_N or key == 0:  # probability < 2**-127; BIP-32 says skip
            raise UsageError(f"BIP-32 index {index} is invalid for this seed")
    return key.to_bytes(32, "big")


def address_bytes(private_key: bytes) -> bytes:
    public = coincurve.PrivateKey(private_key).public_key.format(compressed=False)
    return keccak256(public[1:])[-20:]


@functools.lru_cache(maxsize=4096)
def checksum_address(raw: bytes) -> str:
    """EIP-55 mixed-case hex of a 20-byte address (cached: a pure function)."""
    hexed = raw.hex()
    digest = keccak256(hexed.encode()).hex()
    return "0x" + "".join(
        c.upper() if int(d, 16) >= 8 else c for c, d in zip(hexed, digest[:40], strict=True)
    )


def parse_address(text: str) -> bytes:
    """A 0x-address typed by a user or sent by a peer; a mixed-case one must pass EIP-55."""
    text = text.strip()
    body = text[2:] if text[:2] in ("0x", "0X") else ""
    if len(body) != 40 or any(c not in "0123456789abcdefABCDEF" for c in body):
        raise UsageError(f"{text[:50]!r} is not an address: 0x followed by 40 hex digits")
    raw = bytes.fromhex(body)
    if body != body.lower() and body != body.upper() and checksum_address(raw) != text:
        raise UsageError(
            f"{text} fails its EIP-55 checksum: a character is mistyped; copy it again"
        )
    return raw


def wallet_address(seed: bytes) -> str:
    """The checksummed address of the account's wallet key."""
    return checksum_address(address_bytes(derive_private_key(seed)))
