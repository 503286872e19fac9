"""Payments cores: wallet key derivation (published vectors and an independent
implementation), exact amounts (property test), addresses, signing, and the
transaction tracker's table of chain observations."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import coincurve
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mnemonic import Mnemonic

from boxless.errors import UsageError
from boxless.identity.account import create_account, open_account
from boxless.identity.keys import Identity
from boxless.identity.keystore import NoWalletSeed
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase, phrase_from_entropy
from boxless.payments.amounts import ETH, Asset, format_amount, parse_amount, parse_value
from boxless.payments.errors import BadAmount
from boxless.payments.hdwallet import (
    address_bytes,
    checksum_address,
    derive_private_key,
    keccak256,
    parse_address,
    wallet_address,
)
from boxless.payments.tracker import (
    CONFIRMED,
    FAILED,
    INCLUDED,
    PENDING,
    REPLACED,
    Observation,
    Receipt,
    decide,
)
from boxless.payments.tx import Fees, UnsignedTx
from boxless.storage.userdb import KdfParams

FAST_KDF = KdfParams(memory_kib=1024, time_cost=1, parallelism=1)
PASS = "correct horse battery staple"
TOOL_PY = Path(__file__).resolve().parents[1] / "chain" / ".venv" / "bin" / "python"
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def test_bip32_published_vector_1() -> None:
    seed = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    expected = {
        "m": "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35",
        "m/0'": "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea",
        "m/0'/1": "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368",
        "m/0'/1/2'": "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca",
    }
    for path, key in expected.items():
        assert derive_private_key(seed, path).hex() == key, path


def test_anvil_mnemonic_gives_the_published_first_account() -> None:
    seed = Mnemonic.to_seed(ANVIL_MNEMONIC, "")
    assert wallet_address(seed) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert derive_private_key(seed, "m/44'/60'/0'/0/1") != derive_private_key(seed)
    assert checksum_address(address_bytes(derive_private_key(seed, "m/44'/60'/0'/0/1"))) == (
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    )


def test_24_word_phrase_vector() -> None:
    # "abandon" x 23 + "art" (all-zero entropy): the address eth-account 0.14
    # derives for it (checked by hand with the tool venv)
    phrase = phrase_from_entropy(bytes(32))
    assert wallet_address(Mnemonic.to_seed(phrase, "")) == (
        "0xF278cF59F82eDcf871d630F28EcC8056f25C1cdb"
    )


@pytest.mark.skipif(not TOOL_PY.exists(), reason="tool venv missing: scripts/install_chain.sh")
def test_derivation_matches_eth_account() -> None:
    phrases = [phrase_from_entropy(bytes([i]) * 32) for i in range(3)] + [generate_phrase()]
    script = (
        "import json,sys\nfrom eth_account import Account\n"
        "Account.enable_unaudited_hdwallet_features()\n"
        "print(json.dumps([Account.from_mnemonic(p).address for p in json.load(sys.stdin)]))"
    )
    out = subprocess.run(
        [str(TOOL_PY), "-c", script],
        input=json.dumps(phrases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    theirs = json.loads(out.stdout)
    ours = [wallet_address(Mnemonic.to_seed(p, "")) for p in phrases]
    assert ours == theirs


def test_seed_is_kept_encrypted_and_a_restore_gives_the_same_address(tmp_path: Path) -> None:
    phrase = generate_phrase()
    profile = Profile(display_name="Alice")
    with create_account(tmp_path / "a", PASS, Identity.from_phrase(phrase), profile, 1, FAST_KDF):
        pass
    with open_account(tmp_path / "a", PASS) as account:
        first = wallet_address(account.keystore.load_wallet_seed())
    assert first == wallet_address(Mnemonic.to_seed(phrase, ""))
    # the seed never sits in the file in clear
    raw = (tmp_path / "a" / "user.db").read_bytes()
    assert Mnemonic.to_seed(phrase, "")[:16] not in raw
    # restored elsewhere from the same words: same address
    with create_account(tmp_path / "b", PASS, Identity.from_phrase(phrase), profile, 2, FAST_KDF):
        pass
    with open_account(tmp_path / "b", PASS) as account:
        assert wallet_address(account.keystore.load_wallet_seed()) == first


def test_older_account_imports_its_own_phrase_only(tmp_path: Path) -> None:
    phrase = generate_phrase()
    seedless = Identity.from_private_bytes(Identity.from_phrase(phrase).private_bytes())
    profile = Profile(display_name="Old")
    with create_account(tmp_path / "a", PASS, seedless, profile, 1, FAST_KDF) as account:
        with pytest.raises(NoWalletSeed, match="boxless wallet import"):
            account.keystore.load_wallet_seed()
        with pytest.raises(UsageError, match="another account"):
            account.keystore.save_wallet_seed(Identity.from_phrase(generate_phrase()), 2)
        account.keystore.save_wallet_seed(Identity.from_phrase(phrase), 2)
        assert account.keystore.load_wallet_seed() == Mnemonic.to_seed(phrase, "")


# ---------------------------------------------------------------- amounts


def test_amounts_are_exact() -> None:
    assert parse_amount("0.1", 18) == 10**17
    assert parse_amount("1", 6) == 10**6
    assert parse_amount("0.000000000000000001", 18) == 1
    assert format_amount(10**17, 18) == "0.1"
    assert format_amount(0, 18) == "0"
    assert parse_value("0.1 eth", {"ETH": ETH}) == (10**17, ETH)
    usd = Asset("USDT", 6, "0x" + "11" * 20)
    assert parse_value("2.5 USDT", {"USDT": usd}) == (2_500_000, usd)


@pytest.mark.parametrize(
    "text",
    ["-1", "1e18", "0.1.2", "", " . ", "1,5", "0x10", "inf", "NaN", "١", "0.0000000000000000001"],
)
def test_bad_amounts_are_refused(text: str) -> None:
    with pytest.raises(BadAmount):
        parse_amount(text, 18)


def test_amount_too_large_and_unknown_asset() -> None:
    with pytest.raises(BadAmount, match="larger"):
        parse_amount("9" * 78, 18)
    with pytest.raises(BadAmount, match="unknown asset"):
        parse_value("1 DOGE", {"ETH": ETH})


@given(st.integers(min_value=0, max_value=2**256 - 1), st.integers(min_value=0, max_value=36))
def test_format_then_parse_is_the_identity(value: int, decimals: int) -> None:
    assert parse_amount(format_amount(value, decimals), decimals) == value


@given(st.text(max_size=90))
def test_parse_amount_never_crashes_and_never_goes_negative(text: str) -> None:
    try:
        value = parse_amount(text, 18)
    except BadAmount:
        return
    assert 0 <= value < 2**256


# ---------------------------------------------------------------- addresses, signing


def test_address_checksum() -> None:
    good = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert checksum_address(parse_address(good)) == good
    assert parse_address(good.lower()) == parse_address(good)
    with pytest.raises(UsageError, match="EIP-55"):
        parse_address(good.replace("F", "f", 1))
    for bad in ["f39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0x1234", "0x" + "g" * 40]:
        with pytest.raises(UsageError):
            parse_address(bad)


def test_signature_recovers_the_sender() -> None:
    key = derive_private_key(Mnemonic.to_seed(ANVIL_MNEMONIC, ""))
    tx = UnsignedTx(31337, 7, b"\x11" * 20, 10**17, b"", Fees(2 * 10**9, 10**9, 21_000))
    raw = tx.sign(key)
    import rlp

    assert raw[0] == 2
    fields = rlp.decode(raw[1:])
    assert len(fields) == 12
    v, r, s = (int.from_bytes(f, "big") for f in fields[9:])
    digest = keccak256(b"\x02" + rlp.encode(fields[:9]))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    public = coincurve.PublicKey.from_signature_and_message(sig, digest, hasher=None)
    assert keccak256(public.format(compressed=False)[1:])[-20:] == address_bytes(key)


# ---------------------------------------------------------------- tracker

H1, H2 = b"\x01" * 32, b"\x02" * 32


@pytest.mark.parametrize(
    ("obs", "state", "confirmations", "rebroadcast"),
    [
        # in the mempool, node knows it
        (Observation(None, None, 10, True, 3), PENDING, 0, False),
        # node forgot it (restart, reorg, another node): send it again
        (Observation(None, None, 10, False, 3), PENDING, 0, True),
        # mined in block 10 at head 10: one confirmation
        (Observation(Receipt(10, H1, True), H1, 10, True, 4), INCLUDED, 1, False),
        (Observation(Receipt(10, H1, True), H1, 11, True, 4), CONFIRMED, 2, False),
        (Observation(Receipt(10, H1, False), H1, 11, True, 4), FAILED, 2, False),
        # the receipt names a block no longer canonical (reorg): back to pending
        (Observation(Receipt(10, H1, True), H2, 12, False, 3), PENDING, 0, True),
        # the nonce went to another transaction of ours
        (Observation(None, None, 12, False, 4), REPLACED, 0, False),
        # mid-reorg views are never taken as "replaced" (a final state)
        (Observation(Receipt(10, H1, True), H2, 12, False, 4), PENDING, 0, False),
        (Observation(None, None, 12, True, 4), PENDING, 0, False),
    ],
)
def test_tracker_table(obs: Observation, state: str, confirmations: int, rebroadcast: bool) -> None:
    decision = decide(3, obs, needed=2)
    assert (decision.state, decision.confirmations, decision.rebroadcast) == (
        state,
        confirmations,
        rebroadcast,
    )


VYPER = TOOL_PY.parent / "vyper"


@pytest.mark.skipif(not VYPER.exists(), reason="tool venv missing: scripts/install_chain.sh")
def test_test_token_bytecode_is_the_compiled_source() -> None:
    from boxless.payments.devnet import token_bytecode

    source = Path(__file__).resolve().parents[2] / "src/boxless/payments/contracts/TestToken.vy"
    out = subprocess.run(
        [str(VYPER), "-f", "bytecode", str(source)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert bytes.fromhex(out.stdout.strip().removeprefix("0x")) == token_bytecode()
