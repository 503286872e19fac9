"""The pure parts of the local API's guard rails and of `boxless up`'s checks.

Attacks covered (issue 10, finding 8): a rebinding name in Host, a QR upload
whose header promises a decompression bomb or that is no image at all, a bind
beyond this machine, and a home directory others can list.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from boxless.api.errors import ApiError
from boxless.api.guard import Guard, allowed_hosts
from boxless.api.web import MAX_QR_PIXELS, check_image_size
from boxless.cli.common import is_loopback, private_dir


def _guard(origin: str) -> Guard:
    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not reached")

    return Guard(app, "token", origin)


@pytest.mark.parametrize(
    ("origin", "host", "ok"),
    [
        ("http://127.0.0.1:8765", "127.0.0.1:8765", True),
        ("http://127.0.0.1:8765", "localhost:8765", True),
        ("http://127.0.0.1:8765", "[::1]:8765", True),
        ("http://127.0.0.1:8765", "rebind.evil:8765", False),
        ("http://127.0.0.1:8765", "127.0.0.1:8766", False),
        ("http://127.0.0.1:8765", "127.0.0.1", False),
        ("http://127.0.0.1:8765", "", False),
        ("http://127.0.0.1:8765", "192.168.1.5:8765", False),
        ("http://192.168.1.5:8765", "192.168.1.5:8765", True),  # the configured bind host
        ("http://192.168.1.5:8765", "10.0.0.1:8765", False),
        ("http://0.0.0.0:8765", "10.0.0.1:8765", True),  # wildcard: IP literals cannot rebind
        ("http://0.0.0.0:8765", "[fe80::1]:8765", True),
        ("http://0.0.0.0:8765", "rebind.evil:8765", False),
        ("http://0.0.0.0:8765", "0.0.0.0.evil:8765", False),
        ("http://0.0.0.0:8765", "10.0.0.1:9", False),
        ("http://127.0.0.1:80", "localhost", True),
    ],
)
def test_host_allowlist(origin: str, host: str, ok: bool) -> None:
    assert _guard(origin).host_allowed(host) is ok


def test_allowed_hosts_of_a_loopback_bind() -> None:
    hosts, port, wildcard = allowed_hosts("http://127.0.0.1:8765")
    assert hosts == {"127.0.0.1:8765", "localhost:8765", "[::1]:8765"}
    assert port == 8765 and not wildcard


def _png_header(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR says so
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def test_image_size_is_read_from_the_header() -> None:
    check_image_size(_png_header(4000, 3000))  # a 12 MP photo is fine
    with pytest.raises(ApiError) as big:
        check_image_size(_png_header(12_000, 12_000))  # what a 36 KiB PNG can promise
    assert big.value.status == 413 and "12000x12000" in big.value.message
    with pytest.raises(ApiError) as bomb:
        check_image_size(_png_header(60_000, 60_000))  # past Pillow's own bomb limit: was a 500
    assert bomb.value.status == 413
    with pytest.raises(ApiError) as other:
        check_image_size(b"%PDF-1.4 not a picture")
    assert other.value.status == 422 and other.value.code == "invalid_image"
    assert MAX_QR_PIXELS >= 12_000_000


@given(st.binary(max_size=512))
def test_any_upload_is_accepted_or_refused_cleanly(data: bytes) -> None:
    """Untrusted bytes: the header check never raises anything but our 413/422."""
    try:
        check_image_size(data)
    except ApiError as exc:
        assert exc.status in (413, 422)


@given(st.integers(1, 70_000), st.integers(1, 70_000))
def test_any_claimed_size_is_judged_by_its_pixels(width: int, height: int) -> None:
    try:
        check_image_size(_png_header(width, height))
    except ApiError as exc:
        assert exc.status == 413 and width * height > MAX_QR_PIXELS
    else:
        assert width * height <= MAX_QR_PIXELS


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("[::]", False),
        ("192.168.1.5", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_only_loopback_binds_are_quiet(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_private_dir_creates_and_tightens(tmp_path: Path) -> None:
    new = tmp_path / "a" / "b" / "user"
    assert private_dir(new) is False
    for d in (new, new.parent, new.parent.parent):
        assert d.stat().st_mode & 0o777 == 0o700
    old = tmp_path / "old"
    old.mkdir()
    old.chmod(0o755)
    assert private_dir(old) is True
    assert old.stat().st_mode & 0o777 == 0o700
    assert private_dir(old) is False
