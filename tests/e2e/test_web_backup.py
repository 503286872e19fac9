"""Issue 15 in a real browser: the Me tab's Backup card makes a backup that the
browser downloads (an encrypted BXBK file that the recovery phrase opens) and
schedules automatic backups. Screenshot: docs/screenshots/backup.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, open_ui, shot

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.slow


def test_make_download_and_schedule_a_backup(world: Any, browser: Any, tmp_path: Path) -> None:
    (dora,) = world.persons("Dora")
    page = open_ui(browser, dora, DESKTOP)
    page.locator("#tab-me").click()
    card = page.locator("#backup-card")
    card.scroll_into_view_if_needed()
    with page.expect_download(timeout=60_000) as download:
        page.locator("#backup-make").click()
    saved = tmp_path / "dora.bxbk"
    download.value.save_as(str(saved))
    assert saved.read_bytes()[:4] == b"BXBK"
    expect(page.locator("#backup-stage")).to_contain_text("Backup saved")
    assert (dora.home / "backups" / download.value.suggested_filename).read_bytes() == (
        saved.read_bytes()
    )

    page.locator("#backup-folder").fill("not/a/full/path")
    page.locator("#backup-schedule-save").click()
    expect(page.locator(".toast").last).to_contain_text("full path")
    page.locator("#backup-folder").fill(str(tmp_path / "auto"))
    page.locator("#backup-keep").fill("3")
    page.locator("#backup-schedule-save").click()
    expect(page.locator("#backup-schedule-status")).to_contain_text("keeping 3")
    assert dora.call("GET", "/backup/schedule")["keep"] == 3
    card.scroll_into_view_if_needed()
    shot(page, "backup")
