"""Attachments in the browser: two real `boxless up`, the world's blob service nodes.

Alice picks three photos (an album), a 5 MiB file, and records a voice note with
Chromium's fake microphone; Bob sees the thumbnails, opens the viewer and moves
through the photos with the arrow keys and a swipe, plays the voice note (its
currentTime advances), saves the file (the bytes match) and opens the chat's
media gallery. A pasted file lands in the tray. In a group, a dropped photo and
video go as one album and the video plays in the viewer.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.e2e.test_web import CHROMIUM_ARGS, DESKTOP, chromium_path, open_ui, shot, tab
from tests.e2e.world import wait_for

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.slow

FAKE_MEDIA = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def media_browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS + FAKE_MEDIA)
        try:
            yield b
        finally:
            b.close()


def _photo(path: Path, colour: tuple[int, int, int], label: str) -> Path:
    image = Image.new("RGB", (1200, 800), colour)
    draw = ImageDraw.Draw(image)
    draw.ellipse((350, 150, 850, 650), fill=(255, 255, 255))
    draw.text((560, 390), label, fill=(0, 0, 0))
    image.save(path, "JPEG", quality=90)
    return path


def _composer(page: Any) -> Any:
    return page.locator("form.composer")


# Test-only, in the page: a 1.5 s WebM video recorded from a canvas (MediaRecorder),
# dropped onto the message list with a photo made on another canvas, as a person
# dragging two files from their desktop would (a DataTransfer with Files).
DROP_VIDEO_AND_PHOTO = """async (target) => {
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 240;
  const ctx = canvas.getContext("2d");
  const rec = new MediaRecorder(canvas.captureStream(25), { mimeType: "video/webm" });
  const parts = [];
  rec.ondataavailable = (e) => e.data.size && parts.push(e.data);
  rec.start(100);
  const t0 = performance.now();
  while (performance.now() - t0 < 1500) {
    ctx.fillStyle = `hsl(${Math.round((performance.now() - t0) / 4)}, 70%, 50%)`;
    ctx.fillRect(0, 0, 320, 240);
    await new Promise((r) => setTimeout(r, 40));
  }
  const stopped = new Promise((r) => (rec.onstop = r));
  rec.stop();
  await stopped;
  const photo = await new Promise((r) => canvas.toBlob(r, "image/png"));
  const dt = new DataTransfer();
  dt.items.add(new File([photo], "frame.png", { type: "image/png" }));
  dt.items.add(new File(parts, "clip.webm", { type: "video/webm" }));
  for (const type of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }
}"""
PASTE_FILE = """(input) => {
  const dt = new DataTransfer();
  dt.items.add(new File(["hello"], "notes.txt", { type: "text/plain" }));
  input.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
}"""


def test_photos_voice_and_a_file_in_the_browser(
    world: Any, media_browser: Any, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    alice, bob = world.persons("Alma", "Bruno")
    world.befriend(alice, bob)
    ka, kb = world.key(alice), world.key(bob)
    print(f"people ready: {time.monotonic() - t0:.1f} s")
    # the group forms (HTTP only) while the 1:1 part runs in the browsers
    made: dict[str, str] = {}
    grouping = threading.Thread(
        target=lambda: made.update(gid=world.group(alice, [bob], "Pictures"))
    )
    grouping.start()
    photos = [
        _photo(tmp_path / f"p{i}.jpg", c, str(i))
        for i, c in enumerate([(220, 60, 50), (40, 140, 220), (60, 170, 90)], 1)
    ]
    big = tmp_path / "data.bin"
    data = os.urandom(5 * 1024 * 1024)
    big.write_bytes(data)

    pa = open_ui(media_browser, alice, DESKTOP)
    pb = open_ui(media_browser, bob, DESKTOP)
    pa.evaluate(f"location.hash = '#/chat/{kb}'")
    form = _composer(pa)

    # An album of three photos: picked, shown in the tray, sent compressed
    form.locator(".att-picker").set_input_files([str(p) for p in photos])
    expect(form.locator(".att-tray-item")).to_have_count(3)
    expect(form.locator(".att-original")).to_be_visible()
    form.locator(".att-tray-send").click()
    expect(form.locator(".att-tray")).to_be_hidden()
    # the 5 MiB file: a pending bubble with an upload bar, then the sent bubble with Save
    form.locator(".att-picker").set_input_files(str(big))
    form.locator(".att-tray-send").click()
    # a voice note from the fake microphone (a beep), about 1.5 s
    pa.locator(".mic-button").click()
    expect(pa.locator(".voice-bar")).to_be_visible()
    time.sleep(1.6)
    pa.locator(".voice-send").click()
    expect(pa.locator(".att-file .att-save")).to_have_count(1)
    expect(pa.locator(".voice-note")).to_have_count(1)
    print(f"sent: {time.monotonic() - t0:.1f} s")

    # Bob: thumbnails at once, full photos when fetched (auto-download: small files)
    pb.evaluate(f"location.hash = '#/chat/{ka}'")
    tiles = pb.locator(".att-tile.image")
    expect(tiles).to_have_count(3)
    expect(pb.locator(".att-tile.image.ready img")).to_have_count(3)
    wait_for(  # every photo drawn (decoded), not only the last: the shot shows all three
        "the three photos decoded",
        lambda: pb.locator(".att-tile.image.ready img").evaluate_all(
            "imgs => imgs.length === 3 && imgs.every((i) => i.complete && i.naturalWidth > 0)"
        ),
    )
    shot(pb, "attachments-chat")

    # The viewer: arrow keys and a swipe, Esc closes
    tiles.first.click()
    viewer = pb.locator(".viewer")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".viewer-count")).to_have_text("1 / 3")
    expect(viewer.locator("img.viewer-media")).to_have_js_property("complete", True)
    pb.keyboard.press("ArrowRight")
    expect(viewer.locator(".viewer-count")).to_have_text("2 / 3")
    box = viewer.locator(".viewer-stage").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    pb.mouse.move(box["x"] + box["width"] * 0.8, y)
    pb.mouse.down()
    pb.mouse.move(box["x"] + box["width"] * 0.2, y, steps=5)
    pb.mouse.up()
    expect(viewer.locator(".viewer-count")).to_have_text("3 / 3")
    wait_for(
        "the viewer's photo",
        lambda: viewer.locator("img.viewer-media").evaluate("i => i.complete && i.naturalWidth"),
        timeout=30,
    )
    shot(pb, "attachments-viewer")
    pb.keyboard.press("Escape")
    expect(viewer).to_have_count(0)

    # The voice note plays (currentTime advances) and shows a waveform
    note = pb.locator(".voice-note")
    expect(note).to_have_count(1)
    expect(note.locator(".voice-barline")).not_to_have_count(0)
    expect(pb.locator(".voice-note.ready")).to_have_count(1)
    pb.locator(".voice-note .voice-play").click()
    expect(note).to_have_class("voice-note ready playing")
    audio = pb.locator("audio.voice-audio")
    wait_for("the voice note to play", lambda: audio.evaluate("a => a.currentTime") > 0.7, 30)
    shot(pb, "attachments-voice")
    pb.locator(".voice-note .voice-play").click()

    # The 5 MiB file: saved bytes are Alice's bytes
    save = pb.locator(".att-file.ready .att-save")
    expect(save).to_have_count(1)
    with pb.expect_download() as got:
        save.click()
    saved = Path(got.value.path())
    assert saved.read_bytes() == data, "the saved file differs from the one sent"
    print(f"received, viewed, played, saved: {time.monotonic() - t0:.1f} s")

    # The gallery: three photos, the file and the note under Files
    pb.locator(".gallery-button").click()
    gallery = pb.locator(".gallery")
    expect(gallery.locator(".gallery-cell")).to_have_count(3)
    expect(gallery.locator(".gallery-cell img")).to_have_count(3)
    shot(pb, "attachments-gallery")
    gallery.locator("#gallery-tab-files").click()
    expect(gallery.locator(".gallery-files li")).to_have_count(2)
    expect(gallery.locator("#auto-download-mb")).to_have_value("25")
    pb.keyboard.press("Escape")
    expect(gallery).to_have_count(0)

    # Paste: a file pasted into the composer lands in the tray (cancelled here)
    pa.locator("#composer-input").evaluate(PASTE_FILE)
    expect(form.locator(".att-tray-item")).to_have_count(1)
    form.locator(".att-tray-cancel").click()
    expect(form.locator(".att-tray")).to_be_hidden()

    # Auto-download "Photos only" on Bob's Me tab: the group's video below then waits
    # with a Download button while its photo is fetched by itself
    tab(pb, "me")
    rule = pb.locator("#auto-download-rule")
    expect(rule).to_have_value("all")
    rule.select_option("photos")
    pb.locator(".auto-download-form button[type=submit]").click()
    wait_for(
        "Bob's rule saved",
        lambda: bob.call("GET", "/attachments/settings")["auto_download"] == "photos",
    )
    rule.scroll_into_view_if_needed()
    shot(pb, "auto-download")

    # The group: Alice drops a photo and a video (one album); Bob sees both and the
    # video plays in the viewer from the API's Range answers
    grouping.join(timeout=90)
    assert "gid" in made, "the group was not formed"
    gid = made["gid"]
    pa.evaluate(f"location.hash = '#/group/{gid}'")
    form = _composer(pa)
    pa.locator(".group-conversation .message-list").evaluate(DROP_VIDEO_AND_PHOTO)
    expect(form.locator(".att-tray-item")).to_have_count(2)
    form.locator(".att-tray-send").click()
    pb.evaluate(f"location.hash = '#/group/{gid}'")
    expect(pb.locator(".att-tile.image.ready img")).to_have_count(1)
    video_tile = pb.locator(".att-tile.video")
    expect(video_tile).to_have_count(1)
    expect(video_tile.locator(".att-get")).to_have_text("Download")  # not fetched by itself
    assert bob.call("GET", "/attachments/settings")["auto_download"] == "photos"
    video_tile.click(position={"x": 8, "y": 8})  # the tile, not its Download button
    video = pb.locator(".viewer video.viewer-media")
    expect(video).to_have_count(1)
    wait_for("the video to play", lambda: video.evaluate("v => v.currentTime") > 0.2, 20)
    pb.keyboard.press("Escape")
    pb.locator(".att-tile.video .att-get").click()  # kept on request
    expect(pb.locator(".att-tile.video.ready")).to_have_count(1)
    print(f"group album with a video seen and played: {time.monotonic() - t0:.1f} s")

    # The group picture, an attachment: Alice (admin) picks one in the group's info;
    # Bob's chat list shows the op's thumbnail, then the fetched picture
    pa.evaluate(f"location.hash = '#/group-info/{gid}'")
    pa.locator("#group-picture").set_input_files(str(photos[1]))
    wait_for("the picture set", lambda: alice.call("GET", f"/groups/{gid}")["avatar_url"])
    url = alice.call("GET", f"/groups/{gid}")["avatar_url"]
    wait_for("Bob's group has it", lambda: bob.call("GET", f"/groups/{gid}")["avatar_url"] == url)
    tab(pb, "chats")
    pic = pb.locator(".group-row", has_text="Pictures").locator("img.avatar")
    expect(pic).to_have_attribute("src", url)  # the picture, fetched by Bob's node
    wait_for("the picture drawn", lambda: pic.evaluate("i => i.complete && i.naturalWidth > 0"))
    shot(pb, "group-picture")

    # "Ask again" in the group: both service nodes lose a file's blocks behind their
    # back (their pin records stay); Bob's Download fails, he asks Alice, her client
    # pins again (the nodes repair their pins) and tells his, which fetches it
    t1 = time.monotonic()
    since = time.time()
    minutes = tmp_path / "minutes.bin"
    minutes.write_bytes(os.urandom(300_000))
    tab(pa, "chats")
    pa.evaluate(f"location.hash = '#/group/{gid}'")
    form = _composer(pa)
    form.locator(".att-picker").set_input_files(str(minutes))
    expect(form.locator(".att-tray-item")).to_have_count(1)
    form.locator(".att-tray-send").click()
    expect(form.locator(".att-tray")).to_be_hidden()
    pb.evaluate(f"location.hash = '#/group/{gid}'")
    row = pb.locator(".att-file", has_text="minutes.bin")
    expect(row.locator(".att-get")).to_have_text("Download")  # a file: not fetched by itself
    assert sum(_lose_blocks(node.data_dir / "blobs", since) for node in (world.s1, world.s2)) > 0
    row.locator(".att-get").click()
    ask = pb.locator(".att-file", has_text="minutes.bin").locator(".att-ask")
    expect(ask).to_be_visible()
    shot(pb, "group-ask-again")
    ask.click()
    expect(pb.locator(".att-file.ready", has_text="minutes.bin")).to_have_count(1)
    print(f"group file lost, asked for again and fetched: {time.monotonic() - t1:.1f} s")


def _lose_blocks(store_dir: Path, since: float) -> int:
    """Delete the block files of the pins a service node made after ``since`` (its
    database is only read: the node keeps its pin records). How many were deleted."""
    db = sqlite3.connect(f"file:{store_dir / 'blobs.db'}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in db.execute(
                "SELECT pb.name FROM pin_blocks pb JOIN pins p ON p.id = pb.pin"
                " WHERE p.created_at >= ?",
                (since,),
            )
        ]
    finally:
        db.close()
    for name in names:
        (store_dir / "blocks" / name[-2:] / name).unlink(missing_ok=True)
    return len(names)
