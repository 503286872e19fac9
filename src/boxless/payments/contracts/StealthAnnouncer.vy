# pragma version 0.4.3
"""
@title ERC-5564 announcer
@notice Same ABI and event as the ERC's ERC5564Announcer: anyone announces a
        payment to a stealth address; recipients scan the events.
"""

event Announcement:
    schemeId: indexed(uint256)
    stealthAddress: indexed(address)
    caller: indexed(address)
    ephemeralPubKey: Bytes[33]
    metadata: Bytes[1024]


@payable
@external
def announce(schemeId: uint256, stealthAddress: address, ephemeralPubKey: Bytes[33], metadata: Bytes[1024]):
    """
    @notice Log the announcement; any ETH sent goes to the stealth address
            (so one transaction pays and announces).
    """
    log Announcement(schemeId=schemeId, stealthAddress=stealthAddress, caller=msg.sender, ephemeralPubKey=ephemeralPubKey, metadata=metadata)
    if msg.value > 0:
        send(stealthAddress, msg.value)
