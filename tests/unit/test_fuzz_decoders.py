"""The fuzz campaign's table, short enough for CI: every decoder of untrusted bytes.

``bench/fuzz_decoders.py`` holds the table (decoder, documented errors, valid
seeds) and the structure-aware mutator, and runs >= 100,000 inputs per decoder
outside CI (figures in docs/benchmarks.md, "Fuzz campaign"). Here hypothesis
drives the same mutator (its random choices shrink to a small failing case) for
a few hundred inputs per decoder, and a directed test lies about every length
prefix in every seed to catch an allocation sized by the peer.
"""

from __future__ import annotations

import importlib.util
import random
import struct
import sys
import tracemalloc
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boxless.identity import InvalidContactCode, decode_qr_image


def _load_bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "fuzz_decoders.py"
    spec = importlib.util.spec_from_file_location("fuzz_decoders", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_decoders", module)
    spec.loader.exec_module(module)
    return module


fuzz = _load_bench()
TARGETS = fuzz.TARGETS
EXAMPLES = 100  # per decoder; the image decoder (~1 ms an input) gets a quarter
MEMORY_BUDGET = 2 << 20


_SEEDS: dict[str, list[bytes]] = {}


def seeds_of(target: Any) -> list[bytes]:
    """Each table's seeds, built once (keys, groups, bundles)."""
    if target.name not in _SEEDS:
        _SEEDS[target.name] = target.seeds()
    return _SEEDS[target.name]


def test_the_table_covers_every_kind_of_untrusted_input() -> None:
    names = {t.name for t in TARGETS}
    for prefix in ("waku.", "relay.", "wire.", "chat.", "groups.", "sync.", "crypto.", "identity."):
        assert any(n.startswith(prefix) for n in names), prefix
    assert len(names) == len(TARGETS) >= 40


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_seeds_decode(target: Any) -> None:
    for seed in seeds_of(target):
        target.decode(seed)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_mutated_and_random_inputs_raise_only_the_documented_error(target: Any) -> None:
    seeds = seeds_of(target)
    errors = target.errors

    @settings(
        max_examples=EXAMPLES // 4 if target.slow else EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.randoms(use_true_random=False))
    def run(rng: random.Random) -> None:
        data = fuzz.generate(rng, target, seeds)
        try:
            target.decode(data)
        except errors:
            pass

    run()


def _lies(seed: bytes) -> list[bytes]:
    """The seed with one length prefix at a time claiming 2^31 - 1 (or 2^63) bytes."""
    out = []
    fields = fuzz.pb_fields(seed) or []
    for i, (number, wire, raw) in enumerate(fields):
        if wire != 2:
            continue
        value = fuzz._len_value(raw)
        for claimed in (2**31 - 1, 2**63):
            lying = list(fields)
            lying[i] = (number, 2, fuzz._varint(claimed) + value)
            out.append(fuzz._join(lying))
    for token in fuzz._TOKENS[:6]:  # varint and RLP headers claiming 2^31 and more
        out.append(token + seed)
        out.append(seed[:1] + token + seed[1:])
    return out


@pytest.mark.parametrize("target", [t for t in TARGETS if not t.slow], ids=lambda t: t.name)
def test_lying_length_prefixes_allocate_nothing_big(target: Any) -> None:
    """Attack: a length field claiming 2^31 bytes, to make the decoder allocate it."""
    errors = target.errors
    tracemalloc.start()
    try:
        for seed in seeds_of(target):
            for data in _lies(seed):
                tracemalloc.reset_peak()
                base = tracemalloc.get_traced_memory()[0]
                try:
                    target.decode(data)
                except errors:
                    pass
                peak = tracemalloc.get_traced_memory()[1] - base
                assert peak < MEMORY_BUDGET + 8 * len(data), (peak, data[:40].hex())
    finally:
        tracemalloc.stop()


def _png_chunk(kind: bytes, body: bytes, *, claimed: int | None = None) -> bytes:
    length = len(body) if claimed is None else claimed
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", length) + kind + body + struct.pack(">I", crc)


def _png(width: int, height: int, *, idat_claims: int | None = None) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * min(height, 64))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat, claimed=idat_claims)
    )


def test_a_png_chunk_claiming_2gib_is_not_allocated(tmp_path: Path) -> None:
    """Attack (found by the fuzz campaign): a 1 KiB PNG whose IDAT chunk claims 2^31 - 1
    bytes. Pillow reads the rest of the chunk with one ``read(claimed)``, which a file
    object allocates in full before reading: 134 MB for the fuzzer's input, up to
    4 GiB for a u32 length. The picture is now read from memory."""
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(178, 178, idat_claims=2**31 - 1))
    tracemalloc.start()
    try:
        with pytest.raises(InvalidContactCode):
            decode_qr_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_a_picture_of_too_many_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    """Attack: a few-KiB PNG of 6,000 x 6,000 pixels (36 MB as grey, 108 MB as RGB) sent as
    a QR code: under Pillow's own bomb limit (89 megapixels), over ours (16)."""
    path = tmp_path / "huge.png"
    path.write_bytes(_png(6_000, 6_000))
    tracemalloc.start()
    try:
        with pytest.raises(InvalidContactCode, match="crop it to the QR code"):
            decode_qr_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
