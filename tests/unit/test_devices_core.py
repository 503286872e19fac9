"""Linking a device, sans-IO: the offer, its checks, the transfer, and its attackers."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.client.devices_core import (
    CHUNK_BYTES,
    Linked,
    PairingReceiver,
    PairingRefused,
    PendingDevice,
    Progress,
    build_transfer,
    certify,
    check_offer,
    offer_from_link,
)
from boxless.identity.device_certs import DeviceLink, first_roster
from boxless.identity.keys import Device, Identity
from boxless.identity.seed import generate_phrase

NOW = 1_800_000_000.0


def _existing() -> tuple[Identity, Device]:
    me = Identity.from_phrase(generate_phrase())
    return me, Device.create(me, NOW - 86_400)


def _frames(me: Identity, dev: Device, pending: PendingDevice, snapshot: bytes) -> list[bytes]:
    offer = offer_from_link(pending.offer.link)
    check_offer(offer, NOW + 1, used=False)
    _cert, link = certify(me, offer, NOW + 1)
    mine = DeviceLink.issue(me, dev.certificate, "Laptop", "linux", int(NOW))
    roster = first_roster(me, mine, int(NOW)).with_device(me, link, int(NOW + 1))
    return build_transfer(dev.account, me, offer, link, roster, snapshot, "Alice")


def test_link_round_trip_any_order() -> None:
    me, dev = _existing()
    pending = PendingDevice.create("Phone", "android", NOW)
    offer = offer_from_link(pending.offer.link)
    assert offer == pending.offer and offer.code == pending.offer.code
    snapshot = random.Random(1).randbytes(3 * CHUNK_BYTES)  # incompressible: 4 chunks
    frames = _frames(me, dev, pending, snapshot)
    assert len(frames) == 5
    receiver = PairingReceiver(pending)
    order = frames[1:3] + frames[:1] + frames[3:]  # chunks before the header
    results = [receiver.receive(f, NOW + 2) for f in order]
    assert results[:2] == [None, None]
    assert results[2] == Progress(2, 4)
    done = results[-1]
    assert isinstance(done, Linked)
    assert done.snapshot == snapshot and done.account_name == "Alice"
    assert done.identity.public_key == me.public_key
    assert done.device.certificate.device_curve25519 == offer.curve25519
    assert done.roster.active(offer.curve25519) == done.link
    # a replayed pairing message after the end changes nothing
    assert receiver.receive(frames[0], NOW + 3) is None


def test_offer_attackers() -> None:
    pending = PendingDevice.create("Phone", "android", NOW)
    with pytest.raises(PairingRefused, match="expired"):
        check_offer(pending.offer, pending.offer.expires_at, used=False)
    with pytest.raises(PairingRefused, match="used already"):
        check_offer(pending.offer, NOW, used=True)
    with pytest.raises(PairingRefused, match="damaged|start with"):
        offer_from_link("boxless://d/!!!")
    with pytest.raises(PairingRefused):
        offer_from_link("boxless://c/AAAA")


def test_transfer_attackers() -> None:
    me, dev = _existing()
    pending = PendingDevice.create("Phone", "android", NOW)
    other = PendingDevice.create("Phone", "android", NOW)
    # frames made for another device's offer do not open here
    foreign = _frames(me, dev, other, b"x")
    receiver = PairingReceiver(pending)
    with pytest.raises(PairingRefused, match="does not open|not for this"):
        receiver.receive(foreign[0], NOW + 2)
    assert receiver.header is None
    # a certificate signed by someone else than the identity the header carries
    mallory = Identity.from_phrase(generate_phrase())
    mdev = Device.create(mallory, NOW)
    offer = pending.offer
    _c, good_link = certify(me, offer, NOW)
    mine = DeviceLink.issue(me, dev.certificate, "Laptop", "linux", int(NOW))
    roster = first_roster(me, mine, int(NOW)).with_device(me, good_link, int(NOW))
    forged = build_transfer(mdev.account, mallory, offer, good_link, roster, b"x", "Mallory")
    with pytest.raises(PairingRefused, match="another device|certificate"):
        receiver.receive(forged[0], NOW + 2)
    # after expiry nothing is taken
    frames = _frames(me, dev, pending, b"hello")
    with pytest.raises(PairingRefused, match="expired"):
        receiver.receive(frames[0], pending.offer.expires_at)
    # a forged chunk is dropped, the real one completes the transfer
    assert receiver.receive(frames[0], NOW + 2) == Progress(0, 1)
    bad = bytearray(frames[1])
    bad[-1] ^= 1
    assert receiver.receive(bytes(bad), NOW + 2) == Progress(0, 1)
    assert isinstance(receiver.receive(frames[1], NOW + 2), Linked)


def test_huge_transfer_refused() -> None:
    import boxless.client.devices_core as core

    me, dev = _existing()
    pending = PendingDevice.create("Phone", "android", NOW)
    old = core.MAX_TRANSFER_BYTES
    core.MAX_TRANSFER_BYTES = 10
    try:
        with pytest.raises(Exception, match="too large"):
            _frames(me, dev, pending, random.Random(2).randbytes(100))
        # and a receiver refuses a header announcing more than it takes
        core.MAX_TRANSFER_BYTES = old
        frames = _frames(me, dev, pending, random.Random(2).randbytes(100))
        core.MAX_TRANSFER_BYTES = 10
        with pytest.raises(PairingRefused, match="too large"):
            PairingReceiver(pending).receive(frames[0], NOW + 2)
    finally:
        core.MAX_TRANSFER_BYTES = old


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_frame_decoder_only_refuses(raw: bytes) -> None:
    receiver = PairingReceiver(_PENDING)
    try:
        assert receiver.receive(raw, NOW + 1) is None
    except PairingRefused:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_link_decoder_only_refuses(text: str) -> None:
    with pytest.raises(PairingRefused):
        offer_from_link("boxless://d/" + text)


_PENDING = PendingDevice.create("Phone", "android", NOW)
