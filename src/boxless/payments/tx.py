"""EIP-1559 (type 2) transactions: build, sign, encode; ERC-20 call data.

Signed with coincurve over keccak256(0x02 ‖ rlp([chain_id, nonce, tip, max_fee,
gas, to, value, data, access_list])); the raw transaction appends y_parity, r, s.
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve

from boxless.payments.hdwallet import keccak256

TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
BALANCE_OF_SELECTOR = bytes.fromhex("70a08231")  # balanceOf(address)
ETH_TRANSFER_GAS = 21_000


def _rlp_length(n: int, offset: int) -> bytes:
    if n < 56:
        return bytes([offset + n])
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size


def rlp_encode(item: object) -> bytes:
    """RLP of bytes, non-negative ints and lists of them (what a transaction holds):
    the `rlp` package's encoding, without its generic sedes machinery (checked
    against it in tests)."""
    if isinstance(item, int) and not isinstance(item, bool):
        if item < 0:
            raise ValueError("RLP encodes non-negative integers only")
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")
    if isinstance(item, bytes):
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _rlp_length(len(item), 0x80) + item
    if isinstance(item, list):
        body = b"".join(rlp_encode(x) for x in item)
        return _rlp_length(len(body), 0xC0) + body
    raise TypeError(f"cannot RLP-encode {type(item).__name__}")


@dataclass(frozen=True, slots=True)
class Fees:
    """EIP-1559 fee caps in wei per gas, and the gas limit."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    gas: int

    @property
    def max_cost(self) -> int:
        """The most this transaction can cost in fees (wei)."""
        return self.max_fee_per_gas * self.gas


@dataclass(frozen=True, slots=True)
class UnsignedTx:
    chain_id: int
    nonce: int
    to: bytes | None  # None: contract creation
    value: int
    data: bytes
    fees: Fees

    def _fields(self) -> list[object]:
        return [
            self.chain_id,
            self.nonce,
            self.fees.max_priority_fee_per_gas,
            self.fees.max_fee_per_gas,
            self.fees.gas,
            self.to or b"",
            self.value,
            self.data,
            [],
        ]

    def sign(self, private_key: bytes) -> bytes:
        """The raw signed transaction (what eth_sendRawTransaction takes)."""
        fields = self._fields()
        digest = keccak256(b"\x02" + rlp_encode(fields))
        sig = coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)
        r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
        return b"\x02" + rlp_encode([*fields, v, r, s])


def tx_hash(raw: bytes) -> bytes:
    return keccak256(raw)


def suggest_fees(base_fee: int, priority_fee: int, gas: int) -> Fees:
    """Caps that survive six full blocks of base-fee rises (each ≤ 12.5 %): 2×base + tip."""
    return Fees(2 * base_fee + priority_fee, priority_fee, gas)


def erc20_transfer_data(to: bytes, amount: int) -> bytes:
    return TRANSFER_SELECTOR + to.rjust(32, b"\x00") + amount.to_bytes(32, "big")


def erc20_balance_of_data(owner: bytes) -> bytes:
    return BALANCE_OF_SELECTOR + owner.rjust(32, b"\x00")
