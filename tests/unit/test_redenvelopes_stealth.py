"""Red envelopes, escrow and stealth, without a chain: the shipped bytecode is the
compiled source, the split adds up, the card decoder and the ABI decoder hold
against any bytes, who may claim (a table of attackers), and stealth addresses
match an independent implementation's vectors (ScopeLift's SDK)."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.client.redenvelopes_core import (
    ALLOWED,
    BadCard,
    Card,
    ClaimView,
    best_luck,
    claim_address,
    decode_card,
    draw,
    may_claim,
    may_ticket,
    nullifier,
    share_amount,
    sign_ticket,
    split,
    split_seed,
    ticket_digest,
)
from boxless.payments.errors import BadRpcResponse
from boxless.payments.evmcall import artifact, decode, encode, selector
from boxless.payments.hdwallet import address_bytes
from boxless.payments.stealth import (
    Announcement,
    BadAnnouncement,
    BadMetaAddress,
    MetaAddress,
    Scanner,
    StealthKeys,
    generate,
    parse_announcement,
    stealth_private_key,
)

ROOT = Path(__file__).resolve().parents[2]
VYPER = ROOT / "tests/chain/.venv/bin/vyper"
CONTRACTS = ["RedEnvelope", "Escrow", "StealthRegistry", "StealthAnnouncer"]
GROUP = "group:" + "ab" * 16


@pytest.mark.skipif(not VYPER.exists(), reason="tool venv missing: scripts/install_chain.sh")
def test_shipped_bytecode_is_the_compiled_source() -> None:
    sources = [str(ROOT / f"src/boxless/payments/contracts/{n}.vy") for n in CONTRACTS]
    out = subprocess.run(
        [str(VYPER), "-f", "bytecode,bytecode_runtime", *sources],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    compiled = [bytes.fromhex(line.strip().removeprefix("0x")) for line in out.stdout.split()]
    shipped = [(artifact(n), artifact(n, runtime=True)) for n in CONTRACTS]
    assert compiled == [code for pair in shipped for code in pair]


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(1, 10**30),
    shares=st.integers(1, 200),
    lucky=st.booleans(),
    seed=st.binary(min_size=32, max_size=32),
)
def test_split_is_exact_and_every_share_gets_something(
    total: int, shares: int, lucky: bool, seed: bytes
) -> None:
    if total < shares:
        total = shares
    draws = [draw(seed, seed[::-1], b"\x01" * 32, i) for i in range(shares)]
    amounts = split(total, shares, lucky, draws)
    assert sum(amounts) == total and len(amounts) == shares and min(amounts) >= 1
    if not lucky:
        assert max(amounts) - min(amounts) <= total % shares + 1 or shares == 1
    remaining = total
    for i, amount in enumerate(amounts[:-1]):  # "double average": at most 2x the mean left
        assert amount <= max(1, 2 * (remaining // (shares - i)) - 1)
        remaining -= amount


def test_a_share_depends_on_the_block_and_the_member_not_only_the_seed() -> None:
    seed, member = secrets.token_bytes(32), nullifier(b"\x33" * 32, b"\x44" * 32)
    same_seed = {share_amount(10**18, 10, True, draw(seed, secrets.token_bytes(32), member, 0))
                 for _ in range(20)}  # fmt: skip
    assert len(same_seed) > 15  # another block, another share
    randao = secrets.token_bytes(32)
    by_member = {share_amount(10**18, 10, True, draw(seed, randao, secrets.token_bytes(32), 0))
                 for _ in range(20)}  # fmt: skip
    assert len(by_member) > 15
    assert nullifier(b"\x33" * 32, b"\x44" * 32) != nullifier(b"\x33" * 32, b"\x45" * 32)
    assert nullifier(b"\x33" * 32, b"\x44" * 32) != nullifier(b"\x34" * 32, b"\x44" * 32)


def test_best_luck() -> None:
    assert best_luck([]) is None
    assert best_luck([("bob", 3), ("carol", 7), ("dave", 7)]) == "carol"


def _card(**over: object) -> Card:
    fields: dict[str, object] = {
        "chain_id": 31337,
        "contract": b"\x11" * 20,
        "sender": b"\x22" * 20,
        "secret": b"\x33" * 32,
        "chat": GROUP,
        "total": 10**18,
        "shares": 10,
        "lucky": True,
        "expiry": 1_900_000_000,
        "greeting": "恭喜发财",
    }
    fields.update(over)
    return Card(**fields)  # type: ignore[arg-type]


def test_card_round_trip_and_strictness() -> None:
    card = _card()
    assert decode_card(card.encode()) == card
    obj = json.loads(card.encode())
    for key, bad in [
        ("total", 5),
        ("total", "0"),
        ("shares", 0),
        ("shares", True),
        ("secret", "zz" * 32),
        ("contract", "0x1234"),
        ("chat", "room:1"),
        ("v", 1),
        ("v", 3),
        ("token", "0x12"),
        ("token", None),
        ("greeting", "x" * 201),
    ]:
        broken = {**obj, key: bad}
        with pytest.raises(BadCard):
            decode_card(json.dumps(broken).encode())
    with pytest.raises(BadCard):
        decode_card(json.dumps({**obj, "extra": 1}).encode())
    with pytest.raises(BadCard):  # fewer wei than shares
        decode_card(json.dumps({**obj, "total": "3"}).encode())
    token = _card(token=b"\x99" * 20)
    assert decode_card(token.encode()) == token and token.token == b"\x99" * 20
    # a card from before tokens (v1, no token field) reads as ETH
    old = {k: v for k, v in obj.items() if k != "token"} | {"v": 1}
    assert decode_card(json.dumps(old).encode()) == card


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1200))
def test_card_decoder_takes_any_bytes(raw: bytes) -> None:
    try:
        decode_card(raw)
    except BadCard:
        pass


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["uint256", "uint8", "bool", "address", "bytes32", "bytes"]), max_size=6
    ),
    st.binary(max_size=400),
)
def test_abi_decoder_takes_any_bytes(types: list[str], raw: bytes) -> None:
    try:
        decode(types, raw)
    except BadRpcResponse:
        pass


def test_abi_round_trip() -> None:
    values = [7, b"\x01" * 20, True, b"\x02" * 32, b"hello stealth", 255]
    types = ["uint256", "address", "bool", "bytes32", "bytes", "uint8"]
    assert decode(types, encode(types, values)) == values
    for sig in ["refund(bytes32)", "claim(bytes32,address,bytes32,bytes32,uint8,bytes32,bytes32)"]:
        assert selector(sig) in artifact("RedEnvelope")


EXPIRY = 1_900_000_000  # the card's (_card)


def _view(**over: object) -> ClaimView:
    """What the chain says about _card()'s envelope: by default exactly what the card says."""
    fields: dict[str, object] = {
        "exists": True,
        "claimed": 3,
        "shares": 10,
        "expiry": EXPIRY,
        "refunded": False,
        "already_claimed_by_me": False,
        "total": 10**18,
        "lucky": True,
        "token": b"\x00" * 20,
    }
    fields.update(over)
    return ClaimView(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("who", "kwargs", "reason"),
    [
        ("member", {}, ALLOWED),
        ("forwarded into another chat", {"arrived_in": "group:" + "cd" * 16}, "another chat"),
        ("not a member (left, or never was)", {"member": False}, "only members"),
        ("wrong chain", {"chain_id": 1}, "another chain"),
        ("look-alike contract", {"contract": b"\x99" * 20}, "another chain"),
        ("envelope never created", {"view": _view(exists=False)}, "not on the chain"),
        ("replay: already claimed", {"view": _view(already_claimed_by_me=True)}, "already"),
        ("expired", {"now_s": EXPIRY}, "expired"),
        ("refunded", {"view": _view(refunded=True)}, "expired"),
        ("empty", {"view": _view(claimed=10)}, "empty"),
        # A hostile sender's card that lies about the envelope the chain holds:
        ("card says ETH, chain pays a token", {"view": _view(token=b"\x77" * 20)}, "currency"),
        ("card inflates the total", {"view": _view(total=10)}, "total"),
        ("card names other shares", {"view": _view(shares=1, claimed=0)}, "shares"),
        ("card says lucky, chain equal", {"view": _view(lucky=False)}, "kind"),
        ("card names another expiry", {"view": _view(expiry=EXPIRY + 1)}, "expiry"),
    ],
)
def test_who_may_claim(who: str, kwargs: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {
        "arrived_in": GROUP,
        "member": True,
        "chain_id": 31337,
        "contract": b"\x11" * 20,
        "view": _view(),
        "now_s": EXPIRY - 1_000,
    }
    args.update(kwargs)
    assert reason in may_claim(_card(), **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chat", "member", "ok"),
    [
        (GROUP, b"\x0b" * 32, True),  # a member now
        (GROUP, b"\x0e" * 32, False),  # an ex-member (or never one) whose notice is stored
        ("contact:" + "0b" * 32, b"\x0b" * 32, True),  # the 1:1 contact
        ("contact:" + "0b" * 32, b"\x0c" * 32, False),  # someone else in a 1:1 envelope
        ("contact:" + "0b" * 32, b"\x0a" * 32, True),  # us
    ],
)
def test_who_gets_a_ticket(chat: str, member: bytes, ok: bool) -> None:
    members = frozenset({b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32})
    assert may_ticket(chat, member, b"\x0a" * 32, members) is ok


def test_ticket_binds_the_member_and_the_recipient() -> None:
    import coincurve

    secret, sender_key = secrets.token_bytes(32), secrets.token_bytes(32)
    contract, env_id, bob = b"\x11" * 20, b"\x44" * 32, b"\x55" * 20
    tag = nullifier(secret, b"\x0b" * 32)
    v, r, s = sign_ticket(sender_key, contract, 31337, env_id, tag, bob)
    sig = r + s + bytes([v - 27])
    for member, recipient, ok in [
        (tag, bob, True),
        (tag, b"\x66" * 20, False),  # redirected
        (nullifier(secret, b"\x0c" * 32), bob, False),  # another member's slot
    ]:
        digest = ticket_digest(contract, 31337, env_id, member, recipient)
        pub = coincurve.PublicKey.from_signature_and_message(sig, digest, hasher=None)
        signer = address_bytes_of_pub(pub.format(compressed=False))
        assert (signer == address_bytes(sender_key)) is ok
    assert split_seed(secret) != secret and claim_address(secret) != address_bytes(sender_key)


def address_bytes_of_pub(uncompressed: bytes) -> bytes:
    from boxless.payments.hdwallet import keccak256

    return keccak256(uncompressed[1:])[12:]


# -- stealth addresses

VECTORS = json.loads((ROOT / "tests/vectors/stealth_scopelift.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["vectors"])
def test_stealth_matches_scopelift_sdk(vector: dict[str, str]) -> None:
    def raw(key: str) -> bytes:
        return bytes.fromhex(vector[key][2:])

    keys = StealthKeys(raw("spendingPrivateKey"), raw("viewingPrivateKey"))
    assert keys.meta.uri() == vector["stealthMetaAddress"]
    assert MetaAddress.parse(vector["stealthMetaAddress"]) == keys.meta
    payment = generate(keys.meta, raw("ephemeralPrivateKey"))
    assert "0x" + payment.address.hex() == vector["stealthAddress"].lower()
    assert "0x" + payment.ephemeral_public.hex() == vector["ephemeralPublicKey"]
    assert payment.view_tag == int(vector["viewTag"], 16)
    spend = stealth_private_key(keys, payment.ephemeral_public)
    assert spend == raw("stealthPrivateKey")
    assert address_bytes(spend) == payment.address
    ann = Announcement(payment.address, payment.ephemeral_public, bytes([payment.view_tag]))
    assert Scanner.for_keys(keys).scan([ann]) == [ann]


def test_stealth_only_the_recipient_finds_it() -> None:
    alice = StealthKeys.from_seed(b"\x01" * 64)
    eve = StealthKeys.from_seed(b"\x02" * 64)
    assert alice.meta != eve.meta and repr(alice) == "StealthKeys(<secret>)"
    payments = [generate(alice.meta) for _ in range(20)] + [generate(eve.meta) for _ in range(20)]
    anns = [Announcement(p.address, p.ephemeral_public, bytes([p.view_tag])) for p in payments]
    assert len(Scanner.for_keys(alice).scan(anns)) == 20
    assert len(Scanner.for_keys(eve).scan(anns)) == 20
    # Eve copies Alice's announcement with her own view tag: still not hers.
    forged = Announcement(anns[0].stealth_address, anns[0].ephemeral_public, b"\x00")
    assert Scanner.for_keys(eve).scan([forged]) == []


def test_stealth_bad_input() -> None:
    with pytest.raises(BadMetaAddress):
        MetaAddress.parse("st:eth:0x1234")
    with pytest.raises(BadMetaAddress):
        MetaAddress.parse("st:eth:0x" + "02" + "00" * 32 + "03" + "00" * 32)
    with pytest.raises(BadAnnouncement):
        parse_announcement(2, b"\x00" * 20, b"\x02" + b"\x00" * 32, b"\x01")
    with pytest.raises(BadAnnouncement):
        parse_announcement(1, b"\x00" * 20, b"\x04" + b"\x00" * 32, b"\x01")
    # A point not on the curve, with the right prefix: skipped, not fatal.
    junk = Announcement(b"\x00" * 20, b"\x02" + b"\xff" * 32, b"\x01")
    assert Scanner.for_keys(StealthKeys.from_seed(b"\x03" * 64)).scan([junk]) == []


# -- the chat body


def test_red_envelope_bodies_round_trip_in_a_chat_message() -> None:
    from boxless.chat import envelope as env
    from boxless.chat.redenvelope import RedEnvelopeCard, RedEnvelopeOpened

    opened = RedEnvelopeOpened(b"\x01" * 32, b"\x02" * 20, b"\x03" * 65)
    for body in (RedEnvelopeCard(_card().encode()), opened):
        msg = env.ChatMessage(env.new_message_id(), 3, 1_000, body)
        assert env.decode(env.encode(msg)) == msg
    assert "secret" not in repr(RedEnvelopeCard(_card().encode())).replace("<secret>", "")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_red_envelope_body_decoder_takes_any_bytes(raw: bytes) -> None:
    from boxless.chat import envelope as env
    from boxless.errors import DecodeError, UsageError
    from boxless.wire import chat_pb2

    pb = chat_pb2.ChatMessage(version=1, message_id=b"\x00" * 16, lamport=1, sent_at_ms=1)
    try:
        pb.red_envelope.ParseFromString(raw)
    except Exception:  # noqa: BLE001  (protobuf's own parse error: not our decoder)
        return
    try:
        env.decode(pb.SerializeToString())
    except (DecodeError, UsageError):
        pass


def test_opened_notice_binds_address_to_member() -> None:
    from boxless.client.redenvelopes_core import opened_signer, sign_opened

    bob_key, mallory = secrets.token_bytes(32), b"\x0c" * 32
    env_id, bob = b"\x01" * 32, b"\x0b" * 32
    proof = sign_opened(bob_key, env_id, bob)
    assert opened_signer(proof, env_id, bob) == address_bytes(bob_key)
    # Mallory replays Bob's proof as hers, or for another envelope: another address.
    assert opened_signer(proof, env_id, mallory) != address_bytes(bob_key)
    assert opened_signer(proof, b"\x02" * 32, bob) != address_bytes(bob_key)
    assert opened_signer(b"\xff" * 65, env_id, bob) is None
