# pragma version 0.4.3
"""
@title An ERC-20 that attacks its caller (tests only; compiled into HostileToken.bin
       by tests/chain/build_hostile_token.sh)
@notice mode 1: takes a 1-unit fee on every transfer (delivers less than asked);
        mode 2: moves the tokens but returns false; mode 3: on every transfer first
        calls `target` with `payload` (re-entry), recording whether that succeeded.
"""

mode: public(uint8)
target: public(address)
payload: public(Bytes[1024])
reentered: public(bool)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])


@deploy
def __init__(mode: uint8, supply: uint256):
    self.mode = mode
    self.balanceOf[msg.sender] = supply


@external
def arm(target: address, payload: Bytes[1024]):
    self.target = target
    self.payload = payload


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@internal
def _move(owner: address, receiver: address, amount: uint256) -> bool:
    if self.mode == 3 and self.target != empty(address):
        self.reentered = raw_call(self.target, self.payload, revert_on_failure=False)
    self.balanceOf[owner] -= amount
    if self.mode == 1:
        self.balanceOf[receiver] += amount - 1
    else:
        self.balanceOf[receiver] += amount
    return self.mode != 2


@external
def transfer(receiver: address, amount: uint256) -> bool:
    return self._move(msg.sender, receiver, amount)


@external
def transferFrom(owner: address, receiver: address, amount: uint256) -> bool:
    self.allowance[owner][msg.sender] -= amount
    return self._move(owner, receiver, amount)
