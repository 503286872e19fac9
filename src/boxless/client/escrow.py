"""Escrow for purchases (``Escrow.vy``): the small API mini apps use.

``pay`` (buyer deposits for a seller, with a deadline) → ``release`` (buyer pays
the seller) | ``refund`` (seller returns the money) | ``reclaim`` (buyer, after
the deadline); ``status`` and ``events`` read the chain. Who may do what is the
contract's rule (a wrong caller reverts with the reason, nothing moves). Blocking
over :class:`boxless.payments.evmcall.Signer`; async callers use a thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from boxless.payments.errors import BadRpcResponse
from boxless.payments.evmcall import Signer, call_data, decode, topic

STATES = {0: "none", 1: "open", 2: "released", 3: "refunded", 4: "reclaimed"}
PAID = topic("Paid(uint256,address,address,uint256,uint256,bytes32)")
EVENTS = {
    PAID: "paid",
    topic("Released(uint256,uint256)"): "released",
    topic("Refunded(uint256,uint256)"): "refunded",
    topic("Reclaimed(uint256,uint256)"): "reclaimed",
}
MAX_REF = 32


@dataclass(frozen=True, slots=True)
class Deal:
    id: int
    buyer: bytes
    seller: bytes
    amount: int
    deadline: int
    ref: bytes
    state: str


class Escrow:
    """The escrow contract at ``address``, used from ``signer``'s account."""

    def __init__(self, signer: Signer, address: bytes) -> None:
        self.signer = signer
        self.address = address

    @classmethod
    def deploy(cls, signer: Signer) -> Escrow:
        return cls(signer, signer.deploy("Escrow"))

    def pay(self, seller: bytes, amount: int, deadline: int, ref: bytes = b"") -> int:
        """Deposit ``amount`` wei for ``seller`` until ``deadline`` (unix s); the deal id.
        ``ref`` (≤ 32 bytes, e.g. an order id) is logged with it."""
        if len(ref) > MAX_REF:
            raise ValueError(f"an escrow reference is at most {MAX_REF} bytes")
        payload = call_data(
            "pay(address,uint256,bytes32)", [seller, deadline, ref.ljust(32, b"\x00")]
        )
        receipt = self.signer.transact(self.address, payload, value=amount)
        for log in receipt.logs:
            if log.address == self.address and log.topics[:1] == [PAID] and len(log.topics) == 4:
                return int.from_bytes(log.topics[1], "big")
        raise BadRpcResponse("the escrow payment logged no Paid event")

    def release(self, deal: int) -> None:
        self.signer.transact(self.address, call_data("release(uint256)", [deal]))

    def refund(self, deal: int) -> None:
        self.signer.transact(self.address, call_data("refund(uint256)", [deal]))

    def reclaim(self, deal: int) -> None:
        self.signer.transact(self.address, call_data("reclaim(uint256)", [deal]))

    def status(self, deal: int) -> Deal:
        raw = self.signer.call(self.address, call_data("deals(uint256)", [deal]))
        buyer, seller, amount, deadline, ref, state = decode(
            ["address", "address", "uint256", "uint256", "bytes32", "uint8"], raw
        )
        if state not in STATES:
            raise BadRpcResponse(f"the escrow contract answered an unknown state {state}")
        return Deal(deal, buyer, seller, amount, deadline, ref.rstrip(b"\x00"), STATES[state])

    def events(self, deal: int) -> list[tuple[str, int]]:
        """The deal's history in chain order: (event, block number)."""
        logs = self.signer.logs(self.address, [None, deal.to_bytes(32, "big")])
        return [
            (EVENTS[log.topics[0]], log.block_number) for log in logs if log.topics[0] in EVENTS
        ]
