# pragma version 0.4.3
"""
@title ERC-6538 stealth meta-address registry (the subset Boxless uses)
@notice Same ABI and event as the ERC's reference registry for
        registerKeys / stealthMetaAddressOf; registering on behalf of another
        account (EIP-712 signatures) is not implemented.
"""

event StealthMetaAddressSet:
    registrant: indexed(address)
    schemeId: indexed(uint256)
    stealthMetaAddress: Bytes[66]


stealthMetaAddressOf: public(HashMap[address, HashMap[uint256, Bytes[66]]])


@external
def registerKeys(schemeId: uint256, stealthMetaAddress: Bytes[66]):
    self.stealthMetaAddressOf[msg.sender][schemeId] = stealthMetaAddress
    log StealthMetaAddressSet(registrant=msg.sender, schemeId=schemeId, stealthMetaAddress=stealthMetaAddress)
