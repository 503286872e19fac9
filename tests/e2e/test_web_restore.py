"""Restore from a backup file on the first-run page, in Chromium: a `boxless up` on an
empty home shows onboarding; "Restore from a recovery phrase" with the phrase, a new
passphrase and the backup file gives the account back (its name from the backup) as
a new device. The API's checks (wrong phrase, no upload) are in
tests/integration/test_onboarding.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from boxless.client.backup import create_backup
from boxless.identity.account import create_account
from boxless.identity.keys import Identity
from boxless.identity.profile import Profile
from boxless.identity.seed import generate_phrase
from tests.chat_fixtures import FAST_KDF
from tests.e2e.test_web import DESKTOP, open_ui, shot
from tests.userproc import PASS, UserProcess

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.slow


def test_restore_a_backup_file_on_the_first_run_page(
    browser: Any, world: Any, tmp_path: Path
) -> None:
    phrase = generate_phrase()
    identity = Identity.from_phrase(phrase)
    old = create_account(
        tmp_path / "old", PASS, identity, Profile(display_name="Rita", updated_at=1), 1.0,
        kdf=FAST_KDF,
    )  # fmt: skip
    create_backup(old.db, tmp_path / "rita.bxbk")
    old.close()
    home = tmp_path / "new"
    home.mkdir()
    user = UserProcess("Rita", home, [world.s1.addr, world.s2.addr]).start()
    world.people.append(user)  # stopped with the world
    page = open_ui(browser, user, DESKTOP)
    page.get_by_role("button", name="Restore from a recovery phrase").click()
    page.get_by_label("Recovery phrase (24 words)").fill(phrase)
    page.get_by_label("Passphrase for this device").fill(PASS)
    page.get_by_label("Repeat the passphrase").fill(PASS)
    page.get_by_label("Backup file (optional: restores your history too)").set_input_files(
        str(tmp_path / "rita.bxbk")
    )
    shot(page, "restore-backup")
    page.get_by_role("button", name="Restore", exact=True).click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    me = user.call("GET", "/me")
    assert me["name"] == "Rita"
    assert me["identity_key"] == identity.public_key.hex()
    assert not (home / ".onboarding-backup").exists()
