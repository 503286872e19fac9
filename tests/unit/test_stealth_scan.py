"""The stealth scanner's fast path: same answers as the reference formula, in one
process or a pool, and garbage from the chain never breaks a scan."""

from __future__ import annotations

import coincurve
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.payments.hdwallet import keccak256
from boxless.payments.stealth import Announcement, Scanner, StealthKeys, generate

ME = StealthKeys.from_seed(b"\x07" * 64)
OTHER = StealthKeys.from_seed(b"\x08" * 64)


def _reference(keys: StealthKeys, ann: Announcement) -> bool:
    """ERC-5564 scheme 1 written out with coincurve objects (the old code path)."""
    try:
        shared = coincurve.PublicKey(ann.ephemeral_public).multiply(keys.viewing)
    except ValueError:
        return False
    h = keccak256(shared.format(compressed=True))
    if not ann.metadata or h[0] != ann.metadata[0]:
        return False
    spend = coincurve.PrivateKey(keys.spending).public_key
    point = coincurve.PublicKey.combine_keys([spend, coincurve.PrivateKey(h).public_key])
    return keccak256(point.format(compressed=False)[1:])[12:] == ann.stealth_address


def test_pool_and_single_process_find_the_same_in_order() -> None:
    anns = []
    for i in range(2100):
        p = generate(ME.meta if i % 50 == 0 else OTHER.meta)
        anns.append(Announcement(p.address, p.ephemeral_public, bytes([p.view_tag]), i))
    scanner = Scanner.for_keys(ME)
    one = scanner.scan(anns, workers=1)
    assert [a.block_number for a in one] == list(range(0, 2100, 50))
    assert scanner.scan(anns, workers=2) == one
    # Someone else's announcement with our view tag forced in: still not ours.
    forged = [Announcement(a.stealth_address, a.ephemeral_public, one[0].metadata) for a in anns]
    assert scanner.scan(forged[1:50], workers=1) == []


def test_garbage_announcements_are_skipped() -> None:
    p = generate(ME.meta)
    scanner = Scanner.for_keys(ME)
    good = Announcement(p.address, p.ephemeral_public, bytes([p.view_tag]))
    off_curve = Announcement(p.address, b"\x02" + b"\xff" * 32, bytes([p.view_tag]))
    short = Announcement(p.address, p.ephemeral_public[:20], bytes([p.view_tag]))
    no_tag = Announcement(p.address, p.ephemeral_public, b"")
    assert scanner.scan([off_curve, short, no_tag, good], workers=1) == [good]


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=0, max_size=40),
    st.binary(min_size=0, max_size=3),
    st.binary(min_size=20, max_size=20),
)
def test_match_agrees_with_the_reference_on_any_bytes(
    ephemeral: bytes, metadata: bytes, address: bytes
) -> None:
    ann = Announcement(address, ephemeral, metadata)
    assert Scanner.for_keys(ME).match(ann) == _reference(ME, ann)
