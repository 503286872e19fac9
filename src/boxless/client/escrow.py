"""Escrow for purchases (``Escrow.vy``): the small API mini apps use.

``pay`` (buyer deposits for a seller, with a deadline) → ``release`` (buyer pays
the seller) | ``refund`` (seller returns the money) | ``reclaim`` (buyer, after
the deadline); ``status`` and ``events`` read the chain. Who may do what is the
contract's rule (a wrong caller reverts with the reason, nothing moves). Blocking
over :class:`boxless.payments.evmcall.Signer`; async callers use a thread.

A deal is in ETH or in one ERC-20 token (``pay`` approves, then ``pay_token``:
two transactions). One :class:`Escrow` object handles one currency (``token``,
ETH by default): :meth:`Escrow.status` of a deal paid in another currency raises
:class:`WrongCurrency`, so a seller (a bot) never counts 10 units of some token a
buyer picked as 10 wei-or-whatever of the currency it sells in.

The address is the user's or the operator's word (``boxless wallet escrow 0x…``),
which a scam shop could talk someone into: before the first payment or status
read, the code there must be the shipped ``Escrow.runtime.bin`` (:class:`NotEscrow`
otherwise: nothing is paid to a look-alike that would just keep the money, and a
seller never takes a look-alike's "funded" for a payment).
"""

from __future__ import annotations

from dataclasses import dataclass

from boxless.errors import PeerError, UsageError
from boxless.payments.errors import BadRpcResponse
from boxless.payments.evmcall import Signer, artifact, call_data, decode, topic

STATES = {0: "none", 1: "open", 2: "released", 3: "refunded", 4: "reclaimed"}
PAID = topic("Paid(uint256,address,address,uint256,uint256,bytes32,address)")
EVENTS = {
    PAID: "paid",
    topic("Released(uint256,uint256)"): "released",
    topic("Refunded(uint256,uint256)"): "refunded",
    topic("Reclaimed(uint256,uint256)"): "reclaimed",
}
MAX_REF = 32
ETH = b"\x00" * 20


class WrongCurrency(PeerError):
    """The deal was paid in another currency than the one this escrow client handles."""


class NotEscrow(UsageError):
    """The configured escrow address does not hold the Boxless escrow contract."""


@dataclass(frozen=True, slots=True)
class Deal:
    id: int
    buyer: bytes
    seller: bytes
    amount: int
    deadline: int
    ref: bytes
    state: str
    token: bytes = ETH  # the ERC-20 contract, or ETH


class Escrow:
    """The escrow contract at ``address``, used from ``signer``'s account, for deals
    in ``token`` (an ERC-20 contract address, or ETH)."""

    def __init__(self, signer: Signer, address: bytes, token: bytes = ETH) -> None:
        if len(token) != 20:
            raise ValueError("a token is a 20-byte address (ETH: 20 zero bytes)")
        self.signer = signer
        self.address = address
        self.token = token
        self._genuine = False

    @classmethod
    def deploy(cls, signer: Signer, token: bytes = ETH) -> Escrow:
        return cls(signer, signer.deploy("Escrow"), token)

    def check_genuine(self) -> None:
        """:class:`NotEscrow` unless ``address`` runs the shipped escrow code (read once)."""
        if self._genuine:
            return
        if self.signer.code(self.address) != artifact("Escrow", runtime=True):
            raise NotEscrow(
                f"0x{self.address.hex()} is not the Boxless escrow contract: nothing was paid;"
                " set the escrow address again (`boxless wallet escrow 0x…`)"
            )
        self._genuine = True

    def pay(self, seller: bytes, amount: int, deadline: int, ref: bytes = b"") -> int:
        """Deposit ``amount`` (wei, or the token's base units: approved first) for
        ``seller`` until ``deadline`` (unix s); the deal id. ``ref`` (≤ 32 bytes, e.g.
        an order id) is logged with it."""
        if len(ref) > MAX_REF:
            raise ValueError(f"an escrow reference is at most {MAX_REF} bytes")
        self.check_genuine()
        args = [seller, deadline, ref.ljust(32, b"\x00")]
        if self.token == ETH:
            payload = call_data("pay(address,uint256,bytes32)", args)
            receipt = self.signer.transact(self.address, payload, value=amount)
        else:
            approve = call_data("approve(address,uint256)", [self.address, amount])
            self.signer.transact(self.token, approve)
            payload = call_data(
                "pay_token(address,uint256,address,uint256,bytes32)", [self.token, amount, *args]
            )
            receipt = self.signer.transact(self.address, payload)
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
        """The deal as the chain has it; :class:`WrongCurrency` if it was paid in
        another currency than ours, :class:`NotEscrow` for a look-alike contract."""
        self.check_genuine()
        raw = self.signer.call(self.address, call_data("deals(uint256)", [deal]))
        buyer, seller, amount, deadline, ref, state, token = decode(
            ["address", "address", "uint256", "uint256", "bytes32", "uint8", "address"], raw
        )
        if state not in STATES:
            raise BadRpcResponse(f"the escrow contract answered an unknown state {state}")
        if state != 0 and token != self.token:
            raise WrongCurrency(
                f"escrow deal {deal} is paid in {'ETH' if token == ETH else '0x' + token.hex()}, "
                f"not in the currency this escrow client handles"
            )
        return Deal(
            deal, buyer, seller, amount, deadline, ref.rstrip(b"\x00"), STATES[state], token
        )

    def events(self, deal: int) -> list[tuple[str, int]]:
        """The deal's history in chain order: (event, block number)."""
        logs = self.signer.logs(self.address, [None, deal.to_bytes(32, "big")])
        return [
            (EVENTS[log.topics[0]], log.block_number) for log in logs if log.topics[0] in EVENTS
        ]
