"""The streaming multipart/form-data parser: any split, hostile bodies, only MultipartError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.api.multipart import (
    MAX_PARTS,
    Data,
    Done,
    MultipartError,
    MultipartParser,
    Part,
    PartEnd,
    boundary_of,
)

B = "----BoxlessBoundary7MA4YWxk"


def body_of(parts: list[tuple[str, str | None, bytes]], preamble: bytes = b"") -> bytes:
    out = bytearray(preamble + (b"\r\n" if preamble else b""))
    for name, filename, data in parts:
        out += f"--{B}\r\n".encode()
        disp = f'form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += f"Content-Disposition: {disp}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: image/JPEG; charset=x\r\n"
        out += b"\r\n" + data + b"\r\n"
    out += f"--{B}--\r\nepilogue".encode()
    return bytes(out)


def parse(body: bytes, cuts: list[int]) -> list[tuple[str, str | None, str, bytes]]:
    p = MultipartParser(B)
    events = []
    pos = 0
    for cut in sorted(c % (len(body) + 1) for c in cuts):
        events += p.feed(body[pos:cut])
        pos = max(pos, cut)
    events += p.feed(body[pos:])
    events += p.finish()
    out: list[tuple[str, str | None, str, bytes]] = []
    current: list[bytes] | None = None
    for ev in events:
        if isinstance(ev, Part):
            current = []
            out.append((ev.name, ev.filename, ev.content_type, b""))
        elif isinstance(ev, Data):
            assert current is not None
            current.append(ev.data)
        elif isinstance(ev, PartEnd):
            assert current is not None
            name, filename, ctype, _ = out[-1]
            out[-1] = (name, filename, ctype, b"".join(current))
            current = None
    assert isinstance(events[-1], Done)
    return out


# part bodies full of near-delimiters: CRLF, dashes, boundary prefixes
tricky = st.lists(
    st.sampled_from([b"\r\n", b"--", b"\r\n--", f"\r\n--{B[:-1]}".encode(), b"x", b"\x00\xff"])
    | st.binary(max_size=40),
    max_size=12,
).map(b"".join)
names = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(names, st.none() | names, tricky), min_size=0, max_size=6),
    st.lists(st.integers(0, 10_000), max_size=8),
    st.sampled_from([b"", b"preamble text --not-it"]),
)
def test_any_body_split_anywhere_round_trips(
    parts: list[tuple[str, str | None, bytes]], cuts: list[int], preamble: bytes
) -> None:
    got = parse(body_of(parts, preamble), cuts)
    want = [(n, f, "image/jpeg" if f is not None else "text/plain", d) for n, f, d in parts]
    assert got == want


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=4))
def test_garbage_raises_only_multipart_error(data: bytes, cuts: list[int]) -> None:
    body = f"--{B}\r\n".encode() + data
    try:
        parse(body, cuts)
    except MultipartError:
        pass


def test_hostile_bodies_are_refused_with_what_is_wrong() -> None:
    with pytest.raises(MultipartError, match="closing delimiter"):
        parse(body_of([("a", None, b"x")])[:-20], [])
    with pytest.raises(MultipartError, match="headers are over"):
        MultipartParser(B).feed(f"--{B}\r\n".encode() + b"X-A: " + b"a" * 9000)
    with pytest.raises(MultipartError, match="at most"):
        parse(body_of([("f", None, b"")] * (MAX_PARTS + 1)), [])
    with pytest.raises(MultipartError, match="form-data; name"):
        parse(f"--{B}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{B}--".encode(), [])
    with pytest.raises(MultipartError, match="boundary"):
        boundary_of("multipart/form-data; boundary=" + "a" * 71)
    with pytest.raises(MultipartError, match="not multipart"):
        boundary_of("application/json")
    assert boundary_of(f'multipart/form-data; boundary="{B}"') == B
    assert boundary_of(f"Multipart/Form-Data; charset=utf-8; boundary={B}") == B
