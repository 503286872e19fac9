"""Contact codes: link roundtrip, clear errors for every kind of bad link, fuzzing, QR images."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boxless.errors import UsageError
from boxless.identity import (
    ContactCode,
    Device,
    Identity,
    InvalidContactCode,
    decode_contact_code,
    decode_qr_image,
    generate_phrase,
    make_contact_code,
    qr_terminal,
    save_qr_png,
)
from boxless.identity.keys import DEFAULT_BUNDLE_VALIDITY
from boxless.wire import identity_pb2

NOW = 1_800_000_000.0

IDENTITY = Identity.from_phrase(generate_phrase())
DEVICE = Device.create(IDENTITY, NOW)
CODE = make_contact_code(IDENTITY, DEVICE, "Alice 🦊", NOW)
LINK = CODE.link


def _link(raw: bytes) -> str:
    return "boxless://c/" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _reencode(mutate: object) -> str:
    """Decode LINK's protobuf, let ``mutate`` change it, and build a link from it."""
    msg = identity_pb2.ContactCode()
    msg.ParseFromString(CODE.to_bytes()[1:])
    mutate(msg)  # type: ignore[operator]
    return _link(b"\x01" + msg.SerializeToString())


def test_roundtrip() -> None:
    assert LINK.startswith("boxless://c/")
    assert "=" not in LINK and len(LINK) < 700
    code = decode_contact_code(LINK, NOW + 60)
    assert code == CODE
    assert code.identity_key == IDENTITY.public_key
    assert code.fingerprint == IDENTITY.fingerprint
    assert code.device_id == DEVICE.device_id
    assert code.display_name == "Alice 🦊"
    assert code.bundle.certificate.device_curve25519 == DEVICE.account.curve25519_key.to_bytes()
    assert code.bundle.fallback_key == DEVICE.fallback_key


def test_tolerates_whitespace_and_scheme_case() -> None:
    wrapped = "  " + LINK[:40] + "\n" + LINK[40:90] + " \r\n" + LINK[90:] + "\n"
    assert decode_contact_code(wrapped, NOW) == CODE
    assert decode_contact_code("BOXLESS://C/" + LINK[12:], NOW) == CODE


@pytest.mark.parametrize(
    "text",
    ["", "hello", "https://example.org/c/abc", "boxless://x/" + LINK[12:], "boxless:/c/abc"],
)
def test_not_a_boxless_link(text: str) -> None:
    with pytest.raises(InvalidContactCode, match="not a Boxless contact link") as info:
        decode_contact_code(text, NOW)
    assert isinstance(info.value, UsageError)


@pytest.mark.parametrize(
    "text",
    [
        "boxless://c/",
        "boxless://c/abc$def",
        "boxless://c/" + LINK[12:-5],  # truncated
        "boxless://c/" + LINK[12:40],
        _link(b"\x01" + b"\xff" * 40),
        _link(b"\x01"),
    ],
    ids=["empty", "bad-characters", "truncated", "cut-short", "garbage", "version-only"],
)
def test_damaged_link(text: str) -> None:
    with pytest.raises(InvalidContactCode, match="damaged"):
        decode_contact_code(text, NOW)


def test_unknown_version() -> None:
    with pytest.raises(InvalidContactCode, match="format version 3"):
        decode_contact_code(_link(b"\x03" + CODE.to_bytes()[1:]), NOW)


def test_altered_name_is_a_bad_signature() -> None:
    def rename(msg: identity_pb2.ContactCode) -> None:
        msg.display_name = "Mallory"

    with pytest.raises(InvalidContactCode, match="signature is invalid"):
        decode_contact_code(_reencode(rename), NOW)


def test_altered_fallback_key_is_a_bad_signature() -> None:
    def swap(msg: identity_pb2.ContactCode) -> None:
        msg.bundle.fallback_key = bytes(32)

    with pytest.raises(InvalidContactCode, match="signature is invalid"):
        decode_contact_code(_reencode(swap), NOW)


def test_device_of_another_identity_is_a_bad_signature() -> None:
    mallory = Identity.from_phrase(generate_phrase())

    def claim(msg: identity_pb2.ContactCode) -> None:
        msg.bundle.certificate.identity_key = mallory.public_key

    with pytest.raises(InvalidContactCode, match="signature is invalid"):
        decode_contact_code(_reencode(claim), NOW)


def test_flipping_any_byte_never_yields_a_different_valid_code() -> None:
    raw = CODE.to_bytes()
    for i in range(len(raw)):
        corrupted = bytearray(raw)
        corrupted[i] ^= 0x40
        try:
            code = decode_contact_code(_link(bytes(corrupted)), NOW)
        except InvalidContactCode:
            continue
        assert code == CODE  # only a no-op change (e.g. unknown field) can decode


def test_expired() -> None:
    with pytest.raises(InvalidContactCode, match="expired"):
        decode_contact_code(LINK, NOW + DEFAULT_BUNDLE_VALIDITY + 1)
    with pytest.raises(InvalidContactCode, match="future"):
        decode_contact_code(LINK, NOW - 86_400)


def test_make_refuses_a_foreign_device() -> None:
    other = Identity.from_phrase(generate_phrase())
    with pytest.raises(UsageError, match="not certified"):
        make_contact_code(other, DEVICE, "Eve", NOW)


@given(st.text(max_size=800))
def test_fuzz_any_text(text: str) -> None:
    try:
        decode_contact_code(text, NOW)
    except InvalidContactCode:
        pass


@given(st.binary(max_size=800))
def test_fuzz_any_payload(raw: bytes) -> None:
    try:
        decode_contact_code(_link(raw), NOW)
    except InvalidContactCode:
        pass


@given(st.binary(max_size=600))
def test_fuzz_versioned_protobuf_noise(raw: bytes) -> None:
    try:
        code = decode_contact_code(_link(b"\x01" + raw), NOW)
    except InvalidContactCode:
        return
    assert isinstance(code, ContactCode)


@given(st.data())
def test_fuzz_mutated_valid_link(data: st.DataObject) -> None:
    chars = list(LINK)
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(0, len(chars) - 1))
        chars[i] = data.draw(st.characters(codec="ascii"))
    try:
        code = decode_contact_code("".join(chars), NOW)
    except InvalidContactCode:
        return
    assert code.identity_key == IDENTITY.public_key


def test_qr_terminal_and_png_roundtrip(tmp_path: Path) -> None:
    text = qr_terminal(LINK)
    lines = text.splitlines()
    assert len(lines) > 20 and max(len(line) for line in lines) <= 90
    png = tmp_path / "me.png"
    save_qr_png(LINK, png)
    assert png.read_bytes().startswith(b"\x89PNG")
    assert decode_qr_image(png) == LINK
    assert decode_contact_code(decode_qr_image(png), NOW) == CODE


def test_qr_image_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidContactCode, match="no image file"):
        decode_qr_image(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(InvalidContactCode, match="not an image"):
        decode_qr_image(junk)
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    with pytest.raises(InvalidContactCode, match="no QR code"):
        decode_qr_image(blank)
