"""ENR (EIP-778 v4 + 31/WAKU2-ENR): published vectors, round trips, and hostile input."""

from __future__ import annotations

import base64

import coincurve
import pytest
import rlp
from hypothesis import given
from hypothesis import strategies as st

from boxless.errors import DecodeError, UsageError
from boxless.waku.enr import MAX_RECORD_SIZE, Enr, RelayShards, Waku2, keccak256

# EIP-778's example record and the key that signed it.
EIP778_TEXT = (
    "enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wB"
    "gmlkgnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8"
)
EIP778_KEY = bytes.fromhex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")

# Vectors from js-waku (packages/enr/src/enr.spec.ts, packages/discovery/src/dns/testdata.json).
JS_MULTIADDRS = (
    "enr:-QEnuEBEAyErHEfhiQxAVQoWowGTCuEF9fKZtXSd7H_PymHFhGJA3rGAYDVSHKCyJDGRLBGsloNbS8AZF33IVuefjOO6"
    "BIJpZIJ2NIJpcIQS39tkim11bHRpYWRkcnO4lgAvNihub2RlLTAxLmRvLWFtczMud2FrdXYyLnRlc3Quc3RhdHVzaW0ubmV0"
    "BgG73gMAODcxbm9kZS0wMS5hYy1jbi1ob25na29uZy1jLndha3V2Mi50ZXN0LnN0YXR1c2ltLm5ldAYBu94DACm9A62t7AQL"
    "4Ef5ZYZosRpQTzFVAB8jGjf1TER2wH-0zBOe1-MDBNLeA4lzZWNwMjU2azGhAzfsxbxyCkgCqq8WwYsVWH7YkpMLnU2Bw5xJ"
    "SimxKav-g3VkcIIjKA"
)
JS_TCP = (
    "enr:-IS4QAmC_o1PMi5DbR4Bh4oHVyQunZblg4bTaottPtBodAhJZvxVlWW-4rXITPNg4mwJ8cW__D9FBDc9N4mdhyMqB-EB"
    "gmlkgnY0gmlwhIbRi9KJc2VjcDI1NmsxoQOevTdO6jvv3fRruxguKR-3Ge4bcFsLeAIWEDjrfaigNoN0Y3CCdl8"
)
JS_ETH2 = (
    "enr:-Ku4QMh15cIjmnq-co5S3tYaNXxDzKTgj0ufusA-QfZ66EWHNsULt2kb0eTHoo1Dkjvvf6CAHDS1Di-htjiPFZzaIPcL"
    "h2F0dG5ldHOIAAAAAAAAAACEZXRoMpD2d10HAAABE________x8AgmlkgnY0gmlwhHZFkMSJc2VjcDI1NmsxoQIWSDEWdHwd"
    "EA3Lw2B_byeFQOINTZ0GdtF9DBjes6JqtIN1ZHCCIyg"
)
JS_WAKU2_7 = (
    "enr:-Iu4QADPfXNCM6iYyte0pIdbMirIw_AsKR7J1DeJBysXDWz4DZvyjgIwpMt-sXTVUzLJdE9FaStVy2ZKtHUVQAH61-KA"
    "gmlkgnY0gmlwhMCosvuJc2VjcDI1NmsxoQI0OCNtPJtBayNgvFvKp-0YyCozcvE1rqm_V1W51nHVv4N0Y3CC6mCFd2FrdTIH"
)
JS_NO_PUBLIC_KEY = (
    "enr:-IS4QJ2d11eu6dC7E7LoXeLMgMP3kom1u3SE8esFSWvaHoo0dP1jg8O3-nx9ht-EO3CmG7L6OkHcMmoIh00IYWB92QAB"
    "gmlkgnY0gmlwhH8AAAGJc2d11eu6dCsxoQIB_c-jQMOXsbjWkbN-kj99H57gfId5pfb4wa1qxwV4CIN1ZHCCIyk"
)
JS_DNS_RELAY = (
    "enr:-KO4QANhx2beNpDw8LfX8hdyoNocMD5WCBY28EjKA50DyJv9QDxE5IWafE_O_nhbA31gmasx3WjpH517do3GqmzQvmaA"
    "gmlkgnY0gmlwhMCosvuKbXVsdGlhZGRyc4wACgTAqLL7Bh9C3QOJc2VjcDI1NmsxoQOmp7OJvC-UX4KeIJDW1CQQvhSA33OW"
    "gRrKccOcTG7dYYN0Y3CCH0KFd2FrdTIB"
)
JS_DNS_STORE = (
    "enr:-Iu4QMTV1vSz_hVXxnEL-Kyz-OmaXhlXYfbtfcT58oR1xfIZc8Zx-03VijJs6p-BY_hMWEhmmSa58xm-Uj8xc2utdSgB"
    "gmlkgnY0gmlwhAAAAACJc2VjcDI1NmsxoQIJIvZxmUAqxvruSndgZqyiVBHXo3D52SnKRa4tj6vejoN0Y3CC6mCFd2FrdTIC"
)
JS_DNS_RELAY_STORE = (
    "enr:-KO4QF5qdqu8SRMEqihxFVO1NYraC3QnZJeZnlKwsdgcRa0lTYMqP8_0lvg7ZjZILA4qxZraDnKkCtYpCPtcLerxH_iA"
    "gmlkgnY0gmlwhMCosvuKbXVsdGlhZGRyc4wACgTAqLL7Bh9C3QOJc2VjcDI1NmsxoQJmCOWSVb9E3ekrQ5Q9SnFa-KRLBs8y"
    "vBCjKgRdLT9I7IN0Y3CCH0KFd2FrdTID"
)


def sign_items(key: bytes, seq: bytes, kvs: list[bytes]) -> bytes:
    """A validly signed record with exactly these raw items (for malformed-but-signed cases)."""
    priv = coincurve.PrivateKey(key)
    digest = keccak256(rlp.encode([seq, *kvs]))
    return bytes(rlp.encode([priv.sign_recoverable(digest, hasher=None)[:64], seq, *kvs]))


def pub(key: bytes) -> bytes:
    return bytes(coincurve.PrivateKey(key).public_key.format(compressed=True))


# -- published vectors --------------------------------------------------------


def test_eip778_example_decodes_and_verifies() -> None:
    enr = Enr.from_text(EIP778_TEXT)
    assert enr.seq == 1
    assert enr.ip == "127.0.0.1"
    assert enr.udp == 30303
    assert enr.tcp is None
    assert enr.public_key.hex() == (
        "03ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138"
    )
    assert enr.node_id().hex() == (
        "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"
    )
    assert enr.to_text() == EIP778_TEXT
    assert enr.location_multiaddrs() == []  # UDP only: nothing libp2p can dial


def test_eip778_example_is_reproduced_from_its_key() -> None:
    # libsecp256k1's RFC 6979 nonces make the signature deterministic, as geth's is.
    built = Enr.build(EIP778_KEY, 1, ip="127.0.0.1", udp=30303)
    assert built.to_text() == EIP778_TEXT
    assert built == Enr.from_text(EIP778_TEXT)


def test_js_waku_multiaddrs_vector() -> None:
    enr = Enr.from_text(JS_MULTIADDRS)
    assert enr.location_multiaddrs() == [
        "/dns4/node-01.do-ams3.wakuv2.test.statusim.net/tcp/443/wss",
        "/dns6/node-01.ac-cn-hongkong-c.wakuv2.test.statusim.net/tcp/443/wss",
        "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:1234/wss",
    ]
    peer = enr.peer_id()
    assert enr.multiaddrs()[0].endswith(f"/wss/p2p/{peer}")


def test_js_waku_tcp_vector_gives_the_expected_peer_id() -> None:
    enr = Enr.from_text(JS_TCP)
    assert (enr.ip, enr.tcp) == ("134.209.139.210", 30303)
    assert str(enr.peer_id()) == "16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ"
    assert enr.multiaddrs() == [
        "/ip4/134.209.139.210/tcp/30303/p2p/16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ"
    ]


def test_js_waku_eth2_vector_keeps_unknown_fields() -> None:
    enr = Enr.from_text(JS_ETH2)
    assert enr.pairs["eth2"].hex() == "f6775d0700000113ffffffffffff1f00"
    assert enr.to_text() == JS_ETH2


def test_js_waku_waku2_vector() -> None:
    # js-waku's test is named "Relay + Store" but expects filter too: the byte is 7.
    assert Enr.from_text(JS_WAKU2_7).waku2 == Waku2(relay=True, store=True, filter=True)


@pytest.mark.parametrize(
    ("text", "peer", "flags"),
    [
        (JS_DNS_RELAY, "16Uiu2HAmPsYLvfKafxgRsb6tioYyGnSvGXS2iuMigptHrqHPNPzx", Waku2(relay=True)),
        (JS_DNS_STORE, "16Uiu2HAkv3La3ECgQpdYeEJfrX36EWdhkUDv4C9wvXM8TFZ9dNgd", Waku2(store=True)),
        (
            JS_DNS_RELAY_STORE,
            "16Uiu2HAm2HyS6brcCspSbszG9i36re2bWBVjMe3tMdnFp1Hua34F",
            Waku2(relay=True, store=True),
        ),
    ],
)
def test_js_waku_dns_vectors(text: str, peer: str, flags: Waku2) -> None:
    enr = Enr.from_text(text)
    assert str(enr.peer_id()) == peer
    assert enr.waku2 == flags


def test_js_waku_dns_relay_vector_addresses() -> None:
    enr = Enr.from_text(JS_DNS_RELAY)
    assert (enr.ip, enr.tcp) == ("192.168.178.251", 8002)
    assert enr.location_multiaddrs() == [
        "/ip4/192.168.178.251/tcp/8002",
        "/ip4/192.168.178.251/tcp/8002/ws",
    ]


def test_js_waku_record_without_public_key_is_refused() -> None:
    with pytest.raises(DecodeError):
        Enr.from_text(JS_NO_PUBLIC_KEY)


# -- Waku fields ----------------------------------------------------------------


def test_waku_record_round_trip() -> None:
    key = bytes(range(1, 33))
    enr = Enr.build(
        key,
        7,
        ip="10.0.0.5",
        tcp=60000,
        multiaddrs=["/ip4/10.0.0.5/tcp/8000/ws", "/dns4/example.org/tcp/443/wss"],
        waku2=Waku2(relay=True, store=True, lightpush=True),
        shards=RelayShards.of(1, [0, 3, 7]),
    )
    again = Enr.decode(enr.encode())
    assert again == enr and again.seq == 7
    assert again.waku2 == Waku2(relay=True, store=True, lightpush=True)
    assert again.pairs["waku2"] == b"\x0b"
    assert again.shards == RelayShards(1, (0, 3, 7))
    assert again.pairs["rs"] == bytes.fromhex("0001 03 0000 0003 0007")
    peer = again.peer_id()
    assert again.multiaddrs() == [
        f"/ip4/10.0.0.5/tcp/60000/p2p/{peer}",
        f"/ip4/10.0.0.5/tcp/8000/ws/p2p/{peer}",
        f"/dns4/example.org/tcp/443/wss/p2p/{peer}",
    ]
    # multiaddrs field: u16 big-endian length, then the binary multiaddr (js-waku's layout)
    assert again.pairs["multiaddrs"][:2] == (10).to_bytes(2, "big")
    assert again.pairs["multiaddrs"][2:12].hex() == "04 0a000005 06 1f40 dd03".replace(" ", "")


def test_ipv6_record_uses_the_ip6_keys() -> None:
    enr = Enr.build(bytes(range(1, 33)), 1, ip="::1", tcp=9000)
    assert set(enr.pairs) >= {"ip6", "tcp6"} and "ip" not in enr.pairs
    assert enr.location_multiaddrs() == ["/ip6/::1/tcp/9000"]


def test_many_shards_use_the_bit_vector() -> None:
    shards = RelayShards.of(16, range(0, 1024, 8))
    enr = Enr.build(bytes(range(1, 33)), 1, shards=shards)
    value = enr.pairs["rsv"]
    assert len(value) == 130 and value[:2] == b"\x00\x10"
    assert value[2] == 0x80  # shard 0 is the most significant bit of the first byte
    assert enr.shards == shards


@given(
    cluster=st.integers(0, 0xFFFF),
    shards=st.sets(st.integers(0, 1023), max_size=200),
)
def test_relay_shards_round_trip(cluster: int, shards: set[int]) -> None:
    info = RelayShards.of(cluster, shards)
    key, value = info.encode()
    assert key == ("rsv" if len(shards) >= 64 else "rs")
    assert RelayShards.decode(value) == info


def test_build_refuses_bad_input() -> None:
    key = bytes(range(1, 33))
    with pytest.raises(UsageError):
        Enr.build(b"\x00" * 32, 1)
    with pytest.raises(UsageError):
        Enr.build(
            key,
            1,
            multiaddrs=[
                "/ip4/1.2.3.4/tcp/1/p2p/16Uiu2HAmPLe7Mzm8TsYUubgCAW1aJoeFScxrLj8ppHFivPo97bUZ"
            ],
        )
    with pytest.raises(UsageError):
        Enr.build(key, 1, tcp=0)
    with pytest.raises(UsageError, match="300"):
        Enr.build(key, 1, multiaddrs=[f"/dns4/{'a' * 60}.example/tcp/443/wss"] * 5)


# -- hostile input ----------------------------------------------------------------

KEY = bytes(range(1, 33))


def test_tampered_signature_is_refused() -> None:
    raw = bytearray(Enr.build(KEY, 3, ip="1.2.3.4", tcp=1234).encode())
    raw[5] ^= 0x01  # inside the 64-byte signature (after the list and string headers)
    with pytest.raises(DecodeError, match="signature"):
        Enr.decode(bytes(raw))


def test_tampered_content_is_refused() -> None:
    enr = Enr.build(KEY, 3, ip="1.2.3.4", tcp=1234)
    items = rlp.decode(enr.encode())
    items[1] = b"\x04"  # bump seq without re-signing
    with pytest.raises(DecodeError, match="signature"):
        Enr.decode(rlp.encode(items))


def test_high_s_signature_is_refused() -> None:
    enr = Enr.build(KEY, 3)
    items = rlp.decode(enr.encode())
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s = items[0][:32], int.from_bytes(items[0][32:], "big")
    items[0] = r + (n - s).to_bytes(32, "big")
    with pytest.raises(DecodeError, match="signature"):
        Enr.decode(rlp.encode(items))


@pytest.mark.parametrize(
    ("kvs", "match"),
    [
        ([b"id", b"v4", b"secp256k1", pub(KEY)], None),  # the control: valid
        ([b"id", b"v5", b"secp256k1", pub(KEY)], "identity scheme"),
        ([b"secp256k1", pub(KEY)], "identity scheme"),
        ([b"id", b"v4"], "secp256k1"),
        ([b"id", b"v4", b"secp256k1", pub(KEY)[1:]], "secp256k1"),
        ([b"secp256k1", pub(KEY), b"id", b"v4"], "sorted"),
        ([b"id", b"v4", b"id", b"v4", b"secp256k1", pub(KEY)], "sorted"),
        ([b"id", b"v4", b"secp256k1", pub(KEY), b"tcp", b"\x00\x50"], "port"),
        ([b"id", b"v4", b"ip", b"\x01\x02\x03", b"secp256k1", pub(KEY)], "ip"),
        ([b"id", b"v4", b"multiaddrs", b"\x00\x09\x04", b"secp256k1", pub(KEY)], "multiaddrs"),
        ([b"id", b"v4", b"rs", b"\x00\x01\x02\x00\x01", b"secp256k1", pub(KEY)], "shards"),
        ([b"id", b"v4", b"secp256k1", pub(KEY), b"waku2", b"\x01\x02"], "waku2"),
        ([b"id", b"v4", b"secp256k1", pub(KEY), b"\xff", b"x"], "UTF-8"),
    ],
)
def test_signed_but_malformed_records_are_refused(kvs: list[bytes], match: str | None) -> None:
    data = sign_items(KEY, b"\x01", kvs)
    if match is None:
        assert Enr.decode(data).seq == 1
    else:
        with pytest.raises(DecodeError, match=match):
            Enr.decode(data)


@pytest.mark.parametrize(
    ("seq", "match"),
    [(b"\x00\x01", "canonical"), (b"\x01" * 9, "canonical")],
)
def test_non_canonical_sequence_numbers_are_refused(seq: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        Enr.decode(sign_items(KEY, seq, [b"id", b"v4", b"secp256k1", pub(KEY)]))


def test_oversized_record_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        Enr.decode(b"\xf9" + b"\x00" * MAX_RECORD_SIZE)
    big = sign_items(KEY, b"\x01", [b"id", b"v4", b"secp256k1", pub(KEY), b"z", b"x" * 250])
    assert len(big) > MAX_RECORD_SIZE
    with pytest.raises(DecodeError, match="exceeds"):
        Enr.decode(big)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "enr:",
        "enr:!!!!",
        "ENR:" + EIP778_TEXT[4:],
        EIP778_TEXT + "A",
        "enr:é",
        "enr:" + "A" * 500,
    ],
)
def test_bad_text_is_refused(text: str) -> None:
    with pytest.raises(DecodeError):
        Enr.from_text(text)


def test_nested_lists_are_refused() -> None:
    with pytest.raises(DecodeError):
        Enr.decode(rlp.encode([b"\x00" * 64, b"\x01", [b"id"], b"v4"]))


@given(st.binary(max_size=400))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        enr = Enr.decode(data)
    except DecodeError:
        return
    assert enr.encode() == data


@given(st.data())
def test_mutated_records_decode_or_raise_decode_error(data: st.DataObject) -> None:
    raw = bytearray(Enr.from_text(JS_MULTIADDRS).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        Enr.decode(bytes(raw))
    except DecodeError:
        pass


@given(st.text(max_size=420))
def test_arbitrary_text_parses_or_raises_decode_error(text: str) -> None:
    try:
        Enr.from_text("enr:" + text)
    except DecodeError:
        pass


_secret = st.integers(1, 2**256 - 2**129).map(lambda k: k.to_bytes(32, "big"))
_ws = st.builds(
    lambda a, b, port: f"/ip4/10.{a}.{b}.1/tcp/{port}/ws",
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(1, 65535),
)


@given(
    key=_secret,
    seq=st.integers(0, 2**64 - 1),
    ip=st.none() | st.ip_addresses().map(str),
    tcp=st.none() | st.integers(1, 65535),
    udp=st.none() | st.integers(1, 65535),
    addrs=st.lists(_ws, max_size=3),
    flags=st.none() | st.integers(0, 31).map(Waku2.from_byte),
    shards=st.none()
    | st.builds(RelayShards.of, st.integers(0, 0xFFFF), st.sets(st.integers(0, 1023), max_size=8)),
)
def test_random_valid_records_round_trip(
    key: bytes,
    seq: int,
    ip: str | None,
    tcp: int | None,
    udp: int | None,
    addrs: list[str],
    flags: Waku2 | None,
    shards: RelayShards | None,
) -> None:
    enr = Enr.build(key, seq, ip=ip, tcp=tcp, udp=udp, multiaddrs=addrs, waku2=flags, shards=shards)
    for again in (Enr.decode(enr.encode()), Enr.from_text(enr.to_text())):
        assert again == enr
        assert again.seq == seq
        assert again.public_key == pub(key)
        assert again.waku2 == flags
        assert again.shards == shards
        assert [a for a in again.location_multiaddrs() if a.endswith("/ws")] == addrs
    assert "=" not in enr.to_text()
    assert base64.urlsafe_b64decode(enr.to_text()[4:] + "==") == enr.encode()


_KNOWN_KEYS = [
    "id",
    "ip",
    "ip6",
    "multiaddrs",
    "rs",
    "rsv",
    "secp256k1",
    "tcp",
    "tcp6",
    "udp",
    "waku2",
]


@given(
    st.dictionaries(
        st.sampled_from(_KNOWN_KEYS) | st.text(max_size=6),
        st.binary(max_size=40) | st.sampled_from([b"v4", pub(KEY), b"\x00\x0a" + bytes(10)]),
        max_size=8,
    )
)
def test_signed_records_with_arbitrary_fields_decode_or_raise_decode_error(
    fields: dict[str, bytes],
) -> None:
    # Signed by KEY, so decoding gets past the signature into the field checks.
    fields = {"id": b"v4", "secp256k1": pub(KEY), **fields}
    kvs = [x for k in sorted(fields, key=str.encode) for x in (k.encode(), fields[k])]
    try:
        enr = Enr.decode(sign_items(KEY, b"\x05", kvs))
    except DecodeError:
        return
    enr.location_multiaddrs()
    enr.multiaddrs()
    assert (enr.waku2, enr.shards, enr.ip, enr.ip6) is not None
