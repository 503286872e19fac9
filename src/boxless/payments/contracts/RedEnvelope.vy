# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Boxless red envelopes (hongbao) on an EVM chain, in ETH or an ERC-20 token
@notice The sender deposits a total split into N shares. Only the sender's
        signature (a "ticket") authorises a claim: the sender's client signs
        one ticket per chat member, naming the member's nullifier (a hash of
        the envelope secret and the member's identity key: outsiders cannot
        link it to the member) and the recipient address, when the member's
        authenticated "opened" notice reaches it. Each nullifier claims once,
        so one member with several addresses gets one share. Whoever submits
        the ticket (the sender's client, usually) cannot redirect the money;
        the sender submitting a member's claim may take the fixed relay fee
        (at most half the share), nobody else.
        A lucky share is drawn when the claim lands, from the block's
        prevrandao mixed with the committed seed, the nullifier and the index:
        a member cannot know before claiming which share will be large.
        The shares add up to the deposit exactly and each is at least 1.
        After expiry anyone may refund the rest to the sender.
        Design and attacks: docs/redenvelopes.md.
"""

from ethereum.ercs import IERC20

MAX_SHARES: constant(uint256) = 1000
MAX_EXPIRY: constant(uint256) = 30 * 86400
TICKET_TAG: constant(bytes32) = keccak256("boxless red envelope ticket v2")


struct Envelope:
    sender: address
    claim_key: address
    seed_hash: bytes32
    seed: bytes32
    total: uint256
    remaining: uint256
    relay_fee: uint256
    shares: uint256
    claimed: uint256
    expiry: uint256
    lucky: bool
    refunded: bool
    token: address


event Created:
    id: indexed(bytes32)
    sender: indexed(address)
    total: uint256
    shares: uint256
    expiry: uint256
    lucky: bool
    token: address


event Claimed:
    id: indexed(bytes32)
    recipient: indexed(address)
    index: uint256
    amount: uint256
    relayer: address
    fee: uint256


event Refunded:
    id: indexed(bytes32)
    sender: indexed(address)
    amount: uint256


envelopes: public(HashMap[bytes32, Envelope])
claimed_amount: public(HashMap[bytes32, HashMap[address, uint256]])
nullified: public(HashMap[bytes32, HashMap[bytes32, bool]])


@view
@external
def envelope_id(sender: address, claim_key: address) -> bytes32:
    return keccak256(concat(convert(sender, bytes20), convert(claim_key, bytes20)))


@internal
def _create(
    token: address,
    amount: uint256,
    claim_key: address,
    seed_hash: bytes32,
    shares: uint256,
    lucky: bool,
    expiry: uint256,
    relay_fee: uint256,
) -> bytes32:
    assert claim_key != empty(address), "no claim key"
    assert shares >= 1 and shares <= MAX_SHARES, "shares out of range"
    assert amount >= shares, "less than one unit per share"
    assert expiry > block.timestamp, "expiry in the past"
    assert expiry <= block.timestamp + MAX_EXPIRY, "expiry too far"
    assert relay_fee * shares <= amount // 2, "relay fee too high"
    id: bytes32 = keccak256(concat(convert(msg.sender, bytes20), convert(claim_key, bytes20)))
    assert self.envelopes[id].sender == empty(address), "envelope exists"
    self.envelopes[id] = Envelope(
        sender=msg.sender,
        claim_key=claim_key,
        seed_hash=seed_hash,
        seed=empty(bytes32),
        total=amount,
        remaining=amount,
        relay_fee=relay_fee,
        shares=shares,
        claimed=0,
        expiry=expiry,
        lucky=lucky,
        refunded=False,
        token=token,
    )
    log Created(id=id, sender=msg.sender, total=amount, shares=shares, expiry=expiry, lucky=lucky, token=token)
    return id


@payable
@external
def create(
    claim_key: address,
    seed_hash: bytes32,
    shares: uint256,
    lucky: bool,
    expiry: uint256,
    relay_fee: uint256,
) -> bytes32:
    """
    @notice Deposit msg.value wei as `shares` shares claimable until `expiry`
            (a unix time). The id is keccak(sender ++ claim_key).
    """
    return self._create(empty(address), msg.value, claim_key, seed_hash, shares, lucky, expiry, relay_fee)


@external
def create_token(
    token: address,
    amount: uint256,
    claim_key: address,
    seed_hash: bytes32,
    shares: uint256,
    lucky: bool,
    expiry: uint256,
    relay_fee: uint256,
) -> bytes32:
    """
    @notice Deposit `amount` of the ERC-20 `token` (approved to this contract
            first) as `shares` shares. A token that delivers less than it was
            asked to move (a fee-on-transfer token) is refused.
    """
    assert token != empty(address), "no token"
    before: uint256 = staticcall IERC20(token).balanceOf(self)
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "token transfer failed"
    assert staticcall IERC20(token).balanceOf(self) == before + amount, "token delivered another amount"
    return self._create(token, amount, claim_key, seed_hash, shares, lucky, expiry, relay_fee)


@pure
@internal
def _draw(seed: bytes32, randao: bytes32, nullifier: bytes32, index: uint256) -> bytes32:
    return keccak256(concat(seed, randao, nullifier, convert(index, bytes32)))


@pure
@internal
def _share(remaining: uint256, left: uint256, lucky: bool, draw: bytes32) -> uint256:
    if left == 1:
        return remaining
    if not lucky:
        return remaining // left
    # Double average: uniform in [1, 2 * remaining / left - 1], which always
    # leaves at least one unit for each of the other shares.
    avg: uint256 = remaining // left
    if avg <= 1:
        return 1
    return 1 + convert(draw, uint256) % (2 * avg - 1)


@view
@external
def share_amount(remaining: uint256, left: uint256, lucky: bool, draw: bytes32) -> uint256:
    return self._share(remaining, left, lucky, draw)


@view
@external
def draw(seed: bytes32, randao: bytes32, nullifier: bytes32, index: uint256) -> bytes32:
    return self._draw(seed, randao, nullifier, index)


@view
@internal
def _refusal(
    id: bytes32, recipient: address, nullifier: bytes32, seed: bytes32, v: uint8, r: bytes32, s: bytes32
) -> String[24]:
    env: Envelope = self.envelopes[id]
    if env.sender == empty(address):
        return "no such envelope"
    if env.refunded or block.timestamp >= env.expiry:
        return "expired"
    if env.claimed >= env.shares:
        return "empty"
    if recipient == empty(address):
        return "no recipient"
    if self.claimed_amount[id][recipient] != 0:
        return "already claimed"
    if nullifier == empty(bytes32) or self.nullified[id][nullifier]:
        return "member already claimed"
    if keccak256(seed) != env.seed_hash:
        return "wrong seed"
    digest: bytes32 = keccak256(
        concat(
            TICKET_TAG,
            convert(self, bytes20),
            convert(chain.id, bytes32),
            id,
            nullifier,
            convert(recipient, bytes20),
        )
    )
    signer: address = ecrecover(digest, v, r, s)
    if signer != env.sender or signer == empty(address):
        return "bad claim signature"
    return ""


@view
@external
def refusal(
    id: bytes32, recipient: address, nullifier: bytes32, seed: bytes32, v: uint8, r: bytes32, s: bytes32
) -> String[24]:
    """@notice Why `claim` with these arguments would revert now ("" if it would not)."""
    return self._refusal(id, recipient, nullifier, seed, v, r, s)


@internal
def _pay(token: address, to: address, amount: uint256):
    if amount == 0:
        return
    if token == empty(address):
        send(to, amount)
    else:
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "token transfer failed"


@external
def claim(
    id: bytes32, recipient: address, nullifier: bytes32, seed: bytes32, v: uint8, r: bytes32, s: bytes32
) -> uint256:
    """
    @notice Pay the next share to `recipient`, authorised by the sender's
            ticket (v, r, s) for this member's `nullifier`; `seed` is the
            split seed (checked against its hash). The sender, submitting
            for the recipient, gets the relay fee (at most half the share).
    """
    reason: String[24] = self._refusal(id, recipient, nullifier, seed, v, r, s)
    assert len(reason) == 0, reason
    env: Envelope = self.envelopes[id]
    draw: bytes32 = self._draw(seed, block.prevrandao, nullifier, env.claimed)
    amount: uint256 = self._share(env.remaining, env.shares - env.claimed, env.lucky, draw)
    # The relay fee is the sender's own (its client relays members' claims): anyone
    # else who submits a ticket (a bot copying it from the mempool) gets nothing for
    # it, and a fee never takes more than half a share (a 1-unit share pays in full).
    fee: uint256 = 0
    if msg.sender != recipient and msg.sender == env.sender:
        fee = min(env.relay_fee, amount // 2)
    self.envelopes[id].remaining = env.remaining - amount
    self.envelopes[id].claimed = env.claimed + 1
    self.envelopes[id].seed = seed
    self.claimed_amount[id][recipient] = amount
    self.nullified[id][nullifier] = True
    log Claimed(id=id, recipient=recipient, index=env.claimed, amount=amount, relayer=msg.sender, fee=fee)
    self._pay(env.token, recipient, amount - fee)
    self._pay(env.token, msg.sender, fee)
    return amount


@external
def refund(id: bytes32) -> uint256:
    """@notice After expiry anyone may send what is left back to the sender."""
    env: Envelope = self.envelopes[id]
    assert env.sender != empty(address), "no such envelope"
    assert block.timestamp >= env.expiry, "not expired"
    assert not env.refunded, "already refunded"
    self.envelopes[id].refunded = True
    self.envelopes[id].remaining = 0
    log Refunded(id=id, sender=env.sender, amount=env.remaining)
    self._pay(env.token, env.sender, env.remaining)
    return env.remaining
