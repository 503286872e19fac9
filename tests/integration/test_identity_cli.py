"""`boxless init`, `init --restore` and `whoami` as a person runs them, in real processes.

Secrets come from the environment (BOXLESS_PASSPHRASE, BOXLESS_RECOVERY_PHRASE),
the way scripts use the commands.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from boxless.identity import decode_contact_code, decode_qr_image

PASS = "integration test passphrase"
TIMEOUT = 120


def boxless(
    *args: str,
    passphrase: str | None = PASS,
    phrase: str | None = None,
    stdin: str = "",
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXLESS_")}
    if passphrase is not None:
        env["BOXLESS_PASSPHRASE"] = passphrase
    if phrase is not None:
        env["BOXLESS_RECOVERY_PHRASE"] = phrase
    return subprocess.run(
        [sys.executable, "-m", "boxless", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


def field(out: str, name: str) -> str:
    match = re.search(rf"^{name}:\s+(.+)$", out, re.MULTILINE)
    assert match, f"no {name!r} in:\n{out}"
    return match[1].strip()


def printed_phrase(out: str) -> str:
    words = dict((int(n), w) for n, w in re.findall(r"(\d+)\. ([a-z]+)", out))
    assert sorted(words) == list(range(1, 25)), out
    return " ".join(words[i] for i in range(1, 25))


def assert_clean_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """An account made with `boxless init`: (home, phrase, fingerprint)."""
    home = tmp_path_factory.mktemp("alice") / "user"
    result = boxless("init", "--home", str(home), "--name", "Alice", "--yes")
    assert result.returncode == 0, result.stderr
    return home, printed_phrase(result.stdout), field(result.stdout, "fingerprint")


def test_init_then_whoami(alice: tuple[Path, str, str], tmp_path: Path) -> None:
    home, phrase, fingerprint = alice
    assert PASS not in phrase
    png = tmp_path / "alice.png"
    result = boxless("whoami", "--home", str(home), "--png", str(png))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert field(out, "name") == "Alice"
    assert field(out, "fingerprint") == fingerprint
    link = field(out, "link")
    code = decode_contact_code(link, time.time())
    assert code.display_name == "Alice"
    assert code.fingerprint == fingerprint
    assert code.device_id.hex() == field(out, "device")
    assert "█" in out or "▀" in out  # the QR code, in the terminal
    assert decode_qr_image(png) == link
    # Nothing secret on disk in clear: neither the phrase's words in order nor the name.
    raw = b"".join(p.read_bytes() for p in home.iterdir())
    assert b"Alice" not in raw and phrase.encode() not in raw


def test_restore_gives_the_same_identity_on_a_new_device(
    alice: tuple[Path, str, str], tmp_path: Path
) -> None:
    home, phrase, fingerprint = alice
    restored = tmp_path / "restored"
    result = boxless(
        "init", "--restore", "--home", str(restored), "--name", "Alice 2", phrase=phrase
    )
    assert result.returncode == 0, result.stderr
    assert field(result.stdout, "fingerprint") == fingerprint
    assert phrase not in result.stdout
    who_new = boxless("whoami", "--home", str(restored), "--no-qr")
    who_old = boxless("whoami", "--home", str(home), "--no-qr")
    assert field(who_new.stdout, "fingerprint") == fingerprint
    assert field(who_new.stdout, "device") != field(who_old.stdout, "device")


def test_wrong_passphrase_fails_clearly(alice: tuple[Path, str, str]) -> None:
    home, _, _ = alice
    result = boxless("whoami", "--home", str(home), passphrase="not the passphrase")
    assert_clean_error(result, "passphrase does not open")
    assert "link:" not in result.stdout


def test_existing_account_is_not_overwritten(alice: tuple[Path, str, str]) -> None:
    home, _, fingerprint = alice
    result = boxless("init", "--home", str(home), "--name", "Mallory", "--yes")
    assert_clean_error(result, "already has a Boxless account")
    assert field(boxless("whoami", "--home", str(home)).stdout, "fingerprint") == fingerprint


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        (" ".join(["abandon"] * 23), "has 23"),
        (" ".join(["abandon"] * 24), "checksum"),
        (" ".join(["abandon"] * 23 + ["zzz"]), "word 24"),
    ],
)
def test_restore_with_a_bad_phrase(tmp_path: Path, phrase: str, message: str) -> None:
    home = tmp_path / "user"
    result = boxless("init", "--restore", "--home", str(home), "--name", "X", phrase=phrase)
    assert_clean_error(result, message)
    assert not home.exists() or not any(home.iterdir())


def test_init_user_mistakes(tmp_path: Path) -> None:
    home = tmp_path / "user"
    weak = boxless("init", "--home", str(home), "--name", "Bob", "--yes", passphrase="short")
    assert_clean_error(weak, "at least 8 characters")
    bad_name = boxless("init", "--home", str(home), "--name", "  ", "--yes")
    assert_clean_error(bad_name, "display name is empty")
    missing = boxless("whoami", "--home", str(tmp_path / "nobody"))
    assert_clean_error(missing, "boxless init")
    assert not home.exists() or not any(home.iterdir())


def test_wrong_confirmation_words_create_nothing(tmp_path: Path) -> None:
    home = tmp_path / "user"
    result = boxless("init", "--home", str(home), "--name", "Bob", stdin="nope\nnope\nnope\n")
    assert_clean_error(result, "does not match; nothing was created")
    assert not home.exists() or not any(home.iterdir())


def test_confirmation_accepts_the_right_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process (the words are random): the three prompts take the phrase's words."""
    from boxless.cli import identity_commands
    from boxless.cli.main import app
    from boxless.identity.seed import phrase_from_entropy

    phrase = phrase_from_entropy(bytes(range(32)))
    words = phrase.split()
    monkeypatch.setattr(identity_commands, "generate_phrase", lambda: phrase)
    monkeypatch.setenv("BOXLESS_PASSPHRASE", PASS)

    class FixedRandom:
        def sample(self, population: range, k: int) -> list[int]:
            return [23, 0, 11][:k]

    monkeypatch.setattr(identity_commands.secrets, "SystemRandom", FixedRandom)
    home = tmp_path / "user"
    answers = f"{words[0]}\n {words[11].upper()} \n{words[23]}\n"
    result = CliRunner().invoke(app, ["init", "--home", str(home), "--name", "Bo"], input=answers)
    assert result.exit_code == 0, result.output
    assert "Word #1" in result.output and "Word #24" in result.output
    assert "created account" in result.output


def test_init_makes_the_home_private(tmp_path: Path) -> None:
    """The account directory was left 0755 (by `boxless up`, before `init` or the
    browser made the account): anyone on the machine could list it. `init` now
    tightens it to 0700 and says so."""
    home = tmp_path / "user"
    home.mkdir()
    home.chmod(0o755)
    result = boxless("init", "--home", str(home), "--name", "Cy", "--yes")
    assert result.returncode == 0, result.stderr
    assert "now yours only" in result.stderr
    assert home.stat().st_mode & 0o777 == 0o700


def test_a_markup_name_prints_as_typed(tmp_path: Path) -> None:
    """A name that is rich markup (valid: no control characters) prints as typed."""
    home = tmp_path / "user"
    result = boxless("init", "--home", str(home), "--name", "[/] [bold red]x", "--yes")
    assert result.returncode == 0, result.stderr
    who = boxless("whoami", "--home", str(home), "--no-qr")
    assert who.returncode == 0, who.stderr
    assert field(who.stdout, "name") == "[/] [bold red]x"
