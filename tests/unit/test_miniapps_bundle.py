"""Mini-app bundles: pack/verify round trip and every refusal, as the attacker."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxless.identity.keys import Identity
from boxless.miniapps import (
    BundleError,
    check_install,
    pack_dir,
    pack_files,
    parse_manifest,
    verify_bundle,
)
from boxless.miniapps.bundle import MAX_BUNDLE_BYTES, MAX_FILE_BYTES, _tar

DEV = Identity.from_private_bytes(bytes(range(32)))
OTHER = Identity.from_private_bytes(bytes(range(1, 33)))
BOT = bytes(32).hex()


def manifest(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "org.example.coffee",
        "name": "Coffee",
        "version": "1.0.0",
        "icon": "icon.png",
        "entry": "index.html",
        "permissions": ["backend", "user.name"],
        "developer": DEV.public_key.hex(),
        "bot": BOT,
    }
    doc.update(over)
    return doc


def files(**over: object) -> dict[str, bytes]:
    return {
        "manifest.json": json.dumps(manifest(**over)).encode(),
        "index.html": b"<!doctype html><p>hi</p>",
        "icon.png": b"\x89PNG fake",
        "js/app.js": b"console.log(1)",
    }


def raw_tar(members: list[tuple[str, bytes]], kind: bytes = tarfile.REGTYPE) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.type = len(data), kind
            if kind == tarfile.SYMTYPE:
                info.size, info.linkname = 0, "/etc/passwd"
                tar.addfile(info)
            else:
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def resign(members: list[tuple[str, bytes]], signer: Identity = DEV) -> bytes:
    """A bundle whose SIGNATURE is computed over whatever members the attacker chose."""
    import hashlib

    from boxless.miniapps.bundle import _DOMAIN

    digest = hashlib.sha256(_tar(dict(members))).digest()
    sig = {
        "alg": "ed25519",
        "key": signer.public_key.hex(),
        "archive_sha256": digest.hex(),
        "sig": signer.sign(_DOMAIN + digest).hex(),
    }
    return raw_tar([*members, ("SIGNATURE", json.dumps(sig).encode())])


def test_round_trip_and_deterministic(tmp_path):
    data = pack_files(files(), DEV)
    assert data == pack_files(files(), DEV)  # sorted entries, fixed headers
    b = verify_bundle(data)
    assert b.manifest.id == "org.example.coffee" and b.manifest.developer == DEV.public_key
    assert b.files["js/app.js"] == b"console.log(1)"
    for name, content in files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    assert pack_dir(tmp_path, DEV) == data


def _refused(data: bytes, reason: str) -> None:
    with pytest.raises(BundleError, match=reason):
        verify_bundle(data)


def test_missing_signature_refused():
    _refused(raw_tar(sorted(files().items())), "not signed")


def test_bad_signature_refused():
    good = pack_files(files(), DEV)
    members = [
        (m.name, tarfile.open(fileobj=io.BytesIO(good)).extractfile(m).read())  # type: ignore[union-attr]
        for m in tarfile.open(fileobj=io.BytesIO(good)).getmembers()
    ]
    tampered = [(n, b"<script>evil()</script>" if n == "index.html" else d) for n, d in members]
    _refused(raw_tar(tampered), "bad signature: the files were changed")
    sig = json.loads(members[-1][1])
    sig["sig"] = "00" * 64
    forged = [*members[:-1], ("SIGNATURE", json.dumps(sig).encode())]
    _refused(raw_tar(forged), "does not check")
    # signed correctly, but by a key that is not manifest.developer
    _refused(resign(members[:-1], OTHER), "another key than manifest.developer")
    _refused(raw_tar([*members[:-1], ("SIGNATURE", b"{not json")]), "damaged SIGNATURE")


@pytest.mark.parametrize(
    "name", ["../evil.html", "/etc/passwd", "a/../../b", "a\\..\\b", "./x", "a//b", ".hidden"]
)
def test_path_traversal_refused(name):
    _refused(resign([*sorted(files().items()), (name, b"x")]), "path traversal|file name")


def test_links_refused():
    _refused(raw_tar([("link", b"")], tarfile.SYMTYPE), "regular files|path")


def test_duplicate_entry_refused():
    members = sorted(files().items())
    _refused(raw_tar([*members, ("index.html", b"other"), ("SIGNATURE", b"{}")]), "twice")


def test_oversized_refused():
    big = files()
    big["big.bin"] = bytes(MAX_FILE_BYTES + 1)
    with pytest.raises(BundleError, match="over"):
        pack_files(big, DEV)
    _refused(resign(sorted(big.items())), "over")
    _refused(bytes(MAX_BUNDLE_BYTES + 2 * 1024 * 1024), "over")


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("name", "<script>alert(1)</script>", "markup"),
        ("name", "Cafe\u2028", "control"),
        ("name", "", "non-empty"),
        ("id", "coffee", "reverse-DNS"),
        ("id", "org.example.<b>", "markup"),
        ("version", "1.0", "semver"),
        ("entry", "../index.html", "traversal"),
        ("entry", "index.js", ".html"),
        ("permissions", ["backend", "camera"], "unknown permission"),
        ("permissions", ["pay", "pay"], "twice"),
        ("developer", "zz" * 32, "identity key"),
        ("bot", 7, "non-empty string"),
    ],
)
def test_manifest_refusals(field, value, reason):
    with pytest.raises(BundleError, match=reason):
        parse_manifest(json.dumps(manifest(**{field: value})).encode())


def test_manifest_missing_entry_file_and_extra_field():
    f = files()
    del f["index.html"]
    with pytest.raises(BundleError, match="not in the bundle"):
        pack_files(f, DEV)
    with pytest.raises(BundleError, match="unknown fields"):
        parse_manifest(json.dumps({**manifest(), "onload": "x"}).encode())


def test_pack_by_another_key_refused():
    with pytest.raises(BundleError, match="not this account's identity key"):
        pack_files(files(), OTHER)


def test_update_rules():
    v1 = parse_manifest(json.dumps(manifest()).encode())
    v2 = parse_manifest(json.dumps(manifest(version="1.1.0")).encode())
    check_install(None, v1)
    check_install(v1, v2)
    by_other = parse_manifest(
        json.dumps(manifest(version="2.0.0", developer=OTHER.public_key.hex())).encode()
    )
    with pytest.raises(BundleError, match="another developer key"):
        check_install(v1, by_other)
    with pytest.raises(BundleError, match="older"):
        check_install(v2, v1)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_verify_never_crashes_on_garbage(data):
    with pytest.raises(BundleError):
        verify_bundle(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2000), st.binary(min_size=1, max_size=64))
def test_verify_never_crashes_on_corrupted_bundle(pos, junk):
    good = bytearray(pack_files(files(), DEV))
    pos %= len(good)
    good[pos : pos + len(junk)] = junk
    try:
        b = verify_bundle(bytes(good))
    except BundleError:
        return
    assert b.files == files()  # only a change that leaves the content (e.g. padding) passes


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_parse_manifest_never_crashes(data):
    try:
        parse_manifest(data)
    except BundleError:
        pass
