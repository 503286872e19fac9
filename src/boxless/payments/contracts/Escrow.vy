# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Boxless escrow for purchases (mini apps use it), in ETH or an ERC-20 token
@notice A buyer pays into escrow for a seller, with a deadline. The buyer
        releases the money to the seller, or the seller refunds it to the
        buyer, or after the deadline the buyer reclaims it. Each escrow
        settles exactly once, in the currency it was paid in (`token`, the
        zero address for ETH, in the Paid event and the deal); each way out
        logs its own event.
"""

from ethereum.ercs import IERC20

OPEN: constant(uint8) = 1
RELEASED: constant(uint8) = 2
REFUNDED: constant(uint8) = 3
RECLAIMED: constant(uint8) = 4


struct Deal:
    buyer: address
    seller: address
    amount: uint256
    deadline: uint256
    ref: bytes32
    state: uint8
    token: address


event Paid:
    id: indexed(uint256)
    buyer: indexed(address)
    seller: indexed(address)
    amount: uint256
    deadline: uint256
    ref: bytes32
    token: address


event Released:
    id: indexed(uint256)
    amount: uint256


event Refunded:
    id: indexed(uint256)
    amount: uint256


event Reclaimed:
    id: indexed(uint256)
    amount: uint256


deals: public(HashMap[uint256, Deal])
count: public(uint256)


@internal
def _open(token: address, amount: uint256, seller: address, deadline: uint256, ref: bytes32) -> uint256:
    assert seller != empty(address) and seller != msg.sender, "bad seller"
    assert amount > 0, "nothing paid"
    assert deadline > block.timestamp, "deadline in the past"
    id: uint256 = self.count + 1
    self.count = id
    self.deals[id] = Deal(
        buyer=msg.sender, seller=seller, amount=amount, deadline=deadline, ref=ref, state=OPEN, token=token
    )
    log Paid(id=id, buyer=msg.sender, seller=seller, amount=amount, deadline=deadline, ref=ref, token=token)
    return id


@payable
@external
def pay(seller: address, deadline: uint256, ref: bytes32) -> uint256:
    """@notice Hold msg.value for `seller` until released, refunded or `deadline` passes."""
    return self._open(empty(address), msg.value, seller, deadline, ref)


@external
def pay_token(token: address, amount: uint256, seller: address, deadline: uint256, ref: bytes32) -> uint256:
    """
    @notice Hold `amount` of the ERC-20 `token` (approved to this contract
            first) for `seller`; a token delivering another amount is refused.
    """
    assert token != empty(address), "no token"
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "token transfer failed"
    assert staticcall IERC20(token).balanceOf(self) == before + amount, "token delivered another amount"
    return self._open(token, amount, seller, deadline, ref)


@internal
def _pay_out(token: address, to: address, amount: uint256):
    if token == empty(address):
        send(to, amount)
    else:
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "token transfer failed"


@external
def release(id: uint256):
    """@notice The buyer pays the seller."""
    deal: Deal = self.deals[id]
    assert deal.state == OPEN, "not open"
    assert msg.sender == deal.buyer, "only the buyer releases"
    self.deals[id].state = RELEASED
    log Released(id=id, amount=deal.amount)
    self._pay_out(deal.token, deal.seller, deal.amount)


@external
def refund(id: uint256):
    """@notice The seller gives the money back to the buyer."""
    deal: Deal = self.deals[id]
    assert deal.state == OPEN, "not open"
    assert msg.sender == deal.seller, "only the seller refunds"
    self.deals[id].state = REFUNDED
    log Refunded(id=id, amount=deal.amount)
    self._pay_out(deal.token, deal.buyer, deal.amount)


@external
def reclaim(id: uint256):
    """@notice After the deadline the buyer takes the money back."""
    deal: Deal = self.deals[id]
    assert deal.state == OPEN, "not open"
    assert msg.sender == deal.buyer, "only the buyer reclaims"
    assert block.timestamp >= deal.deadline, "deadline not reached"
    self.deals[id].state = RECLAIMED
    log Reclaimed(id=id, amount=deal.amount)
    self._pay_out(deal.token, deal.buyer, deal.amount)
