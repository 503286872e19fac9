# pragma version 0.4.3
"""
@title Boxless red envelopes (hongbao) on an EVM chain
@notice The sender deposits a total split into N shares. Who may claim is
        decided by one secret that travels only inside the end-to-end
        encrypted chat message: the client derives from it a one-time claim
        key (its address is stored here) and a split seed (its hash is stored
        here). A claim is the claim key's signature over (this contract, the
        chain, the envelope, the recipient), so whoever submits it (the
        claimer, the sender's client, any member with gas) cannot redirect
        the money; a relayer may take the fixed relay fee the sender chose.
        Each address claims once. Share i (in claim order) is fixed by the
        committed seed: equal, or "lucky" (double-average random split), so
        neither the submitter nor the sender after creation can move money
        between shares. After expiry anyone may refund the rest to the sender.
        Design and attacks: docs/payments.md.
"""

MAX_SHARES: constant(uint256) = 1000
MAX_EXPIRY: constant(uint256) = 30 * 86400
CLAIM_TAG: constant(bytes32) = keccak256("boxless red envelope claim v1")


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


event Created:
    id: indexed(bytes32)
    sender: indexed(address)
    total: uint256
    shares: uint256
    expiry: uint256
    lucky: bool


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


@view
@external
def envelope_id(sender: address, claim_key: address) -> bytes32:
    return keccak256(concat(convert(sender, bytes20), convert(claim_key, bytes20)))


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
    @notice Deposit msg.value as `shares` shares claimable until `expiry`
            (a unix time). The id is keccak(sender ++ claim_key).
    """
    assert claim_key != empty(address), "no claim key"
    assert shares >= 1 and shares <= MAX_SHARES, "shares out of range"
    assert msg.value >= shares, "less than one wei per share"
    assert expiry > block.timestamp, "expiry in the past"
    assert expiry <= block.timestamp + MAX_EXPIRY, "expiry too far"
    assert relay_fee * shares <= msg.value // 2, "relay fee too high"
    id: bytes32 = keccak256(concat(convert(msg.sender, bytes20), convert(claim_key, bytes20)))
    assert self.envelopes[id].sender == empty(address), "envelope exists"
    self.envelopes[id] = Envelope(
        sender=msg.sender,
        claim_key=claim_key,
        seed_hash=seed_hash,
        seed=empty(bytes32),
        total=msg.value,
        remaining=msg.value,
        relay_fee=relay_fee,
        shares=shares,
        claimed=0,
        expiry=expiry,
        lucky=lucky,
        refunded=False,
    )
    log Created(id=id, sender=msg.sender, total=msg.value, shares=shares, expiry=expiry, lucky=lucky)
    return id


@pure
@internal
def _share(remaining: uint256, left: uint256, lucky: bool, seed: bytes32, index: uint256) -> uint256:
    if left == 1:
        return remaining
    if not lucky:
        return remaining // left
    # Double average: uniform in [1, 2 * remaining / left - 1], which always
    # leaves at least one wei for each of the other shares.
    avg: uint256 = remaining // left
    if avg <= 1:
        return 1
    r: uint256 = convert(keccak256(concat(seed, convert(index, bytes32))), uint256)
    return 1 + r % (2 * avg - 1)


@view
@external
def share_amount(remaining: uint256, left: uint256, lucky: bool, seed: bytes32, index: uint256) -> uint256:
    return self._share(remaining, left, lucky, seed, index)


@view
@internal
def _refusal(id: bytes32, recipient: address, seed: bytes32, v: uint8, r: bytes32, s: bytes32) -> String[24]:
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
    if keccak256(seed) != env.seed_hash:
        return "wrong seed"
    digest: bytes32 = keccak256(
        concat(CLAIM_TAG, convert(self, bytes20), convert(chain.id, bytes32), id, convert(recipient, bytes20))
    )
    signer: address = ecrecover(digest, v, r, s)
    if signer != env.claim_key or signer == empty(address):
        return "bad claim signature"
    return ""


@view
@external
def refusal(id: bytes32, recipient: address, seed: bytes32, v: uint8, r: bytes32, s: bytes32) -> String[24]:
    """@notice Why `claim` with these arguments would revert now ("" if it would not)."""
    return self._refusal(id, recipient, seed, v, r, s)


@external
def claim(id: bytes32, recipient: address, seed: bytes32, v: uint8, r: bytes32, s: bytes32) -> uint256:
    """
    @notice Pay share number `claimed` to `recipient`, authorised by the claim
            key's signature; `seed` is the split seed (checked against its hash).
            A caller other than the recipient gets the relay fee from the share.
    """
    reason: String[24] = self._refusal(id, recipient, seed, v, r, s)
    assert len(reason) == 0, reason
    env: Envelope = self.envelopes[id]
    amount: uint256 = self._share(env.remaining, env.shares - env.claimed, env.lucky, seed, env.claimed)
    fee: uint256 = 0
    if msg.sender != recipient:
        fee = min(env.relay_fee, amount)
    self.envelopes[id].remaining = env.remaining - amount
    self.envelopes[id].claimed = env.claimed + 1
    self.envelopes[id].seed = seed
    self.claimed_amount[id][recipient] = amount
    log Claimed(id=id, recipient=recipient, index=env.claimed, amount=amount, relayer=msg.sender, fee=fee)
    if amount - fee > 0:
        send(recipient, amount - fee)
    if fee > 0:
        send(msg.sender, fee)
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
    if env.remaining > 0:
        send(env.sender, env.remaining)
    return env.remaining
