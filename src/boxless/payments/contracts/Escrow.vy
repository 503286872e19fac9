# pragma version 0.4.3
"""
@title Boxless escrow for purchases (mini apps use it)
@notice A buyer pays into escrow for a seller, with a deadline. The buyer
        releases the money to the seller, or the seller refunds it to the
        buyer, or after the deadline the buyer reclaims it. Each escrow
        settles exactly once; each way out logs its own event.
"""

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


event Paid:
    id: indexed(uint256)
    buyer: indexed(address)
    seller: indexed(address)
    amount: uint256
    deadline: uint256
    ref: bytes32


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


@payable
@external
def pay(seller: address, deadline: uint256, ref: bytes32) -> uint256:
    """@notice Hold msg.value for `seller` until released, refunded or `deadline` passes."""
    assert seller != empty(address) and seller != msg.sender, "bad seller"
    assert msg.value > 0, "nothing paid"
    assert deadline > block.timestamp, "deadline in the past"
    id: uint256 = self.count + 1
    self.count = id
    self.deals[id] = Deal(
        buyer=msg.sender, seller=seller, amount=msg.value, deadline=deadline, ref=ref, state=OPEN
    )
    log Paid(id=id, buyer=msg.sender, seller=seller, amount=msg.value, deadline=deadline, ref=ref)
    return id


@external
def release(id: uint256):
    """@notice The buyer pays the seller."""
    deal: Deal = self.deals[id]
    assert deal.state == OPEN, "not open"
    assert msg.sender == deal.buyer, "only the buyer releases"
    self.deals[id].state = RELEASED
    log Released(id=id, amount=deal.amount)
    send(deal.seller, deal.amount)


@external
def refund(id: uint256):
    """@notice The seller gives the money back to the buyer."""
    deal: Deal = self.deals[id]
    assert deal.state == OPEN, "not open"
    assert msg.sender == deal.seller, "only the seller refunds"
    self.deals[id].state = REFUNDED
    log Refunded(id=id, amount=deal.amount)
    send(deal.buyer, deal.amount)


@external
def reclaim(id: uint256):
    """@notice After the deadline the buyer takes the money back."""
    deal: Deal = self.deals[id]
    assert deal.state == OPEN, "not open"
    assert msg.sender == deal.buyer, "only the buyer reclaims"
    assert block.timestamp >= deal.deadline, "deadline not reached"
    self.deals[id].state = RECLAIMED
    log Reclaimed(id=id, amount=deal.amount)
    send(deal.buyer, deal.amount)
