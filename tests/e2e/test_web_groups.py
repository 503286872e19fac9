"""Issue 6 in a real browser: group chats and broadcast lists, each person
running their own `boxless up` (light node, client, API) with the session's two
service nodes between them, each using the web UI in their own Chromium context.

Alice (desktop) creates a group from the "+" menu, picking Bob and Carol
(phones) from her contacts; the group shows in their chat lists; all three
write, and each sees every message in the same order with the sender's name,
Alice's first one confirmed and "Read by 2". Bob mentions Carol through the "@"
autocomplete: Carol's chat list shows the "@" badge and the message shows her
mention highlighted. A pin shows in everyone's pinned bar. Alice removes Carol
in the group info panel: Carol's view says she is out, and what is said after
reaches Bob but not Carol. Dave, no one's contact, pastes the invite link Alice
makes (with its QR code): a damaged copy gets the API's reason, the real one a
preview, a join request and a way in; his message shows unconfirmed until
Bob's answer acknowledges it, then confirmed, live. Announcements-only silences
Bob until Alice makes him an admin; Bob mutes the group. Last, Alice sends to a
broadcast list of Bob and Carol and watches its delivered/read counts.
Screenshots go to docs/screenshots/group-*.

The accounts are the session world's (tests/e2e/world.py: made as `boxless
init` makes them; the command has its own tests) and become contacts over the API (crossed
requests): onboarding and adding contacts in the browser are covered by
test_web.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.test_web import DESKTOP, IMG_LOADED, PHONE, open_ui
from tests.e2e.test_web import shot as web_shot
from tests.userproc import UserProcess

sync_api = pytest.importorskip("playwright.sync_api")
Page = sync_api.Page
expect = sync_api.expect

NAMES = ("Alice", "Bob", "Carol", "Dave")
WAIT_MS = 30_000  # the longest any single step may take
GROUP = "Weekend trip"
pytestmark = pytest.mark.slow
expect.set_options(timeout=WAIT_MS)


@pytest.fixture
def people(world: Any) -> dict[str, UserProcess]:
    """Four people on the session's service nodes (tests/e2e/world.py)."""
    users = dict(zip(NAMES, world.persons(*NAMES), strict=True))
    # Alice and each of the others add each other's link: crossed requests accept.
    alice = users["Alice"]
    alice_link = alice.call("GET", "/me")["link"]
    for name in ("Bob", "Carol"):  # Dave knows nobody: he joins by link
        alice.call("POST", "/contacts", {"link": users[name].call("GET", "/me")["link"]})
        users[name].call("POST", "/contacts", {"link": alice_link})
    return users


def shot(page: Page, name: str) -> None:
    web_shot(page, f"group-{name}")


def bubble(page: Page, text: str) -> Any:
    return page.locator(".message .bubble").filter(has=page.locator(".text", has_text=text)).last


def say(page: Page, text: str) -> None:
    composer = page.get_by_label("Message", exact=True)
    composer.fill(text)
    composer.press("Enter")


def open_group(page: Page) -> None:
    row = page.locator(".group-row", has_text=GROUP)
    expect(row).to_be_visible()
    row.click()
    expect(page.locator(".conv-name")).to_have_text(GROUP)


def thread(page: Page) -> list[str]:
    """The conversation as "sender: text" lines (events as "-- text")."""
    lines = []
    for item in page.locator(".messages > li").all():
        cls = item.get_attribute("class") or ""
        if "event" in cls:
            lines.append(f"-- {item.inner_text()}")
        elif "message" in cls:
            sender = "You" if "out" in cls else item.locator(".sender").inner_text()
            lines.append(f"{sender}: {item.locator('.text').inner_text()}")
    return lines


def test_three_people_group_chat_in_the_browser(
    people: dict[str, UserProcess], browser: Any
) -> None:
    alice = open_ui(browser, people["Alice"], DESKTOP)
    bob = open_ui(browser, people["Bob"], PHONE)
    carol = open_ui(browser, people["Carol"], PHONE)

    # Alice starts the group from the "+" menu, picking Bob and Carol.
    alice.get_by_role("button", name="New chat, group or broadcast").click()
    alice.get_by_role("menuitem", name="New group").click()
    form = alice.get_by_role("form", name="New group")
    form.get_by_label("Group name").fill(GROUP)
    form.get_by_label("Description (optional)").fill("Planning Saturday")
    for name in ("Bob", "Carol"):  # listed once the crossed requests are accepted
        form.get_by_label(name, exact=True).check()
    shot(alice, "new")
    alice.get_by_role("button", name="Create group").click()
    expect(alice.locator(".conv-name")).to_have_text(GROUP)
    expect(alice.locator(".conv-sub")).to_have_text("3 members")

    # Bob and Carol find it in their chat lists; everyone writes in turn.
    open_group(bob)
    open_group(carol)
    say(alice, "Hi both! Saturday at 9?")
    expect(bubble(bob, "Saturday at 9?")).to_be_visible()
    expect(bubble(carol, "Saturday at 9?")).to_be_visible()
    say(bob, "Works for me")
    expect(bubble(alice, "Works for me")).to_be_visible()
    expect(bubble(carol, "Works for me")).to_be_visible()
    say(carol, "Me too, I'll bring snacks")
    for page in (alice, bob):
        expect(bubble(page, "bring snacks")).to_be_visible()

    expected = {
        "Alice": [
            "You: Hi both! Saturday at 9?",
            "Bob: Works for me",
            "Carol: Me too, I'll bring snacks",
        ],
        "Bob": [
            "Alice: Hi both! Saturday at 9?",
            "You: Works for me",
            "Carol: Me too, I'll bring snacks",
        ],
        "Carol": [
            "Alice: Hi both! Saturday at 9?",
            "Bob: Works for me",
            "You: Me too, I'll bring snacks",
        ],
    }
    for name, page in (("Alice", alice), ("Bob", bob), ("Carol", carol)):
        said = [line for line in thread(page) if not line.startswith("-- ")]
        assert said == expected[name], (name, thread(page))
    # Bob and Carol see the membership events as centred rows.
    expect(bob.locator(".messages .event", has_text="Bob")).not_to_have_count(0)

    # Alice's first message: confirmed by the others' replies, and read by both.
    first = bubble(alice, "Saturday at 9?")
    expect(first.locator(".ticks")).to_have_attribute("data-state", "confirmed")
    expect(first.locator(".read-count")).to_have_text("Read by 2")

    # Carol goes back to her chat list; Bob mentions her through the "@" list.
    carol.get_by_role("link", name="Back to chats").click()
    composer = bob.get_by_label("Message", exact=True)
    composer.press_sequentially("@Ca", delay=30)
    option = bob.get_by_role("option", name="@Carol")
    expect(option).to_be_visible()
    expect(bob.get_by_role("option", name=re.compile("^@all"))).to_have_count(0)  # "Ca" ≠ "all"
    shot(bob, "mention-picker")
    composer.press("Enter")
    expect(composer).to_have_value("@Carol ")
    composer.press_sequentially("can you bring the map too?")
    composer.press("Enter")
    row = carol.locator(".group-row", has_text=GROUP)
    expect(row.locator(".mention-badge")).to_have_text("@")
    expect(row.locator(".unread")).to_have_text("1")
    shot(carol, "chats")
    row.click()
    mention = bubble(carol, "bring the map")
    expect(mention.locator("mark.mention.me")).to_have_text("@Carol")
    expect(carol.locator(".group-row .mention-badge")).to_have_count(0)  # read now
    expect(bubble(alice, "bring the map").locator("mark.mention")).to_have_text("@Carol")

    # Alice pins her first message: everyone sees it in the pinned bar.
    first.click()
    alice.get_by_role("button", name="Pin", exact=True).click()
    expect(alice.locator(".pin-bar")).to_contain_text("Saturday at 9?")
    expect(bob.locator(".pin-bar")).to_contain_text("Saturday at 9?")
    shot(alice, "conversation")
    shot(bob, "conversation-phone")

    # Alice removes Carol in the group info panel.
    alice.get_by_role("link", name="Group info").click()
    expect(alice.get_by_role("list", name="Members").locator(".member-row")).to_have_count(3)
    shot(alice, "info")
    alice.get_by_role("button", name="Remove Carol", exact=True).click()
    alice.get_by_role("button", name="Remove Carol from the group").click()
    expect(alice.get_by_role("list", name="Members").locator(".member-row")).to_have_count(2)
    expect(carol.locator(".composer-notice")).to_contain_text("no longer a member")
    expect(carol.get_by_label("Message", exact=True)).to_be_disabled()
    expect(carol.locator(".conv-sub")).to_have_text("not a member")

    # What Alice says next reaches Bob, never Carol.
    alice.get_by_role("link", name="Back to the group").click()
    say(alice, "Just the two of us now")
    expect(bubble(bob, "two of us now")).to_be_visible()
    say(bob, "See you Saturday")  # its causal history acknowledges Alice's message
    expect(bubble(alice, "See you Saturday")).to_be_visible()
    expect(bubble(alice, "two of us now").locator(".ticks")).to_have_attribute(
        "data-state", "confirmed"
    )
    shot(carol, "removed")
    for text in ("two of us now", "See you Saturday"):
        expect(bubble(carol, text)).to_have_count(0)
    texts = [m["text"] for m in people["Carol"].call("GET", f"/groups/{group_id(alice)}/messages")]
    assert not any("two of us" in t or "See you" in t for t in texts), texts
    assert any("bring the map" in t for t in texts), texts  # what she had before stays

    # Alice makes an invite link; Dave, whom nobody knows, joins by it.
    alice.get_by_role("link", name="Group info").click()
    alice.get_by_role("button", name="Invite link").click()
    link_box = alice.get_by_label("Invite link", exact=True)
    expect(link_box).to_have_value(re.compile(r"^boxless://g/"))
    alice.locator(".invite-link img.qr").evaluate(IMG_LOADED)  # no wait_for_function: CSP
    alice.locator(".invite-link").scroll_into_view_if_needed()
    shot(alice, "link")
    dave = open_ui(browser, people["Dave"], PHONE)
    dave.get_by_role("button", name="New chat, group or broadcast").click()
    dave.get_by_role("menuitem", name="Join a group by link").click()
    link = link_box.input_value()
    dave.get_by_label("Group invite link").fill(link[:-40])  # cut short: the API says why
    dave.get_by_role("button", name="Show the group").click()
    expect(dave.get_by_role("alert")).to_contain_text("group link")
    dave.get_by_label("Group invite link").fill(link)
    dave.get_by_role("button", name="Show the group").click()
    preview = dave.locator(".join-preview")
    expect(preview).to_contain_text(GROUP)
    expect(preview).to_contain_text("Invited by Alice")
    dave.get_by_role("button", name="Join group").click()
    # "Requested" until Alice's node lets him in (it may be quick), then a way in.
    expect(preview.locator(".join-state")).to_be_visible()
    shot(dave, "join")
    preview.get_by_role("link", name="Open the group").click()
    # Nobody else has the group open, so nobody acknowledges Dave's message yet:
    # it shows as unconfirmed, and turns confirmed live once Bob answers (his
    # message's causal history acknowledges it; read markers do not).
    bob.get_by_role("link", name="Back to chats").click()
    say(dave, "Hi all, Dave here")
    mine = bubble(dave, "Dave here").locator(".ticks")
    expect(mine).to_have_attribute("data-state", re.compile("^(queued|sent)$"))
    expect(mine.locator(".unconfirmed-label")).to_have_text("unconfirmed")
    shot(dave, "unconfirmed")
    open_group(bob)
    expect(bubble(bob, "Dave here").locator(".sender")).to_have_text("Dave")
    say(bob, "Welcome, Dave!")
    expect(bubble(dave, "Welcome, Dave!").locator(".sender")).to_have_text("Bob")
    expect(mine).to_have_attribute("data-state", "confirmed")
    expect(mine.locator(".unconfirmed-label")).to_have_count(0)
    alice.get_by_role("link", name="Back to the group").click()
    expect(bubble(alice, "Dave here").locator(".sender")).to_have_text("Dave")
    expect(alice.locator(".messages .event", has_text="Dave joined")).to_have_count(1)

    # Admin settings: announcements only silences Bob until Alice makes him an admin.
    alice.get_by_role("link", name="Group info").click()
    alice.get_by_label("Only admins can send messages").check()
    expect(bob.locator(".composer-notice")).to_have_text(
        "Only admins can send messages in this group."
    )
    alice.get_by_role("button", name="Make admin: Bob").click()
    expect(alice.locator(".member-row", has_text="Bob").locator(".role")).to_have_text("Admin")
    expect(bob.locator(".composer-notice")).to_be_hidden()
    # Bob mutes the group: his chat list shows it.
    bob.get_by_role("link", name="Group info").click()
    bob.get_by_label("Mute notifications").check()
    shot(bob, "info-phone")
    # Now an admin, Bob may manage Dave; the creator is nobody's to remove.
    expect(bob.get_by_role("button", name=re.compile("admin|Remove"))).to_have_count(2)
    bob.get_by_role("link", name="Back to the group").click()
    expect(bob.locator(".conv-sub")).to_have_text("3 members · muted")  # Alice, Bob, Dave
    bob.get_by_role("link", name="Back to chats").click()
    expect(bob.locator(".group-row", has_text=GROUP).locator(".muted-mark")).to_be_visible()

    # A broadcast list: one message to Bob and Carol, each as a 1:1 message.
    alice.get_by_role("button", name="New chat, group or broadcast").click()
    alice.get_by_role("menuitem", name="Broadcast lists").click()
    alice.get_by_role("link", name="New broadcast list").first.click()
    form = alice.get_by_role("form", name="New broadcast list")
    form.get_by_label("List name").fill("Neighbours")
    for name in ("Bob", "Carol"):
        form.get_by_label(name, exact=True).check()
    form.get_by_role("button", name="Create list").click()
    expect(alice.locator(".conv-name")).to_have_text("Neighbours")
    say(alice, "Street party on Sunday!")
    counts = bubble(alice, "Street party").locator(".broadcast-counts")
    expect(counts).to_have_text("Delivered 2/2 · Read 0/2")
    bob.locator(".chat-row:not(.group-row)", has_text="Alice").click()
    expect(bubble(bob, "Street party on Sunday!")).to_be_visible()
    expect(counts).to_have_text("Delivered 2/2 · Read 1/2")
    shot(alice, "broadcast")


def group_id(page: Page) -> str:
    match = re.search(r"#/group/([0-9a-f]+)", page.url)
    assert match, page.url
    return match.group(1)
