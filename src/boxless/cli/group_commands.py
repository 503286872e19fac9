"""``boxless group ...`` and ``boxless broadcast ...``: groups and broadcast lists
from the terminal, through the local API of a running ``boxless up``.

A group is named by its name (any case) or an id prefix; a member by their name
in the group or a key prefix; a contact as in ``boxless send``. Output goes to
stdout (tables with rich); errors to stderr, each saying what to do.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from boxless.cli.api_client import Api, api_for
from boxless.cli.app import app, fail, out
from boxless.cli.common import USER_HOME, HomeOption
from boxless.cli.safe import markup
from boxless.errors import BoxlessError, UsageError

group_app = typer.Typer(
    help="Group chats: create, invite, settings, links, messages (needs `boxless up`).",
    no_args_is_help=True,
)
broadcast_app = typer.Typer(
    help="Broadcast lists: one message to many contacts, each in their own chat.",
    no_args_is_help=True,
)
app.add_typer(group_app, name="group")
app.add_typer(broadcast_app, name="broadcast")

GroupArg = Annotated[str, typer.Argument(help="Group name or id prefix (see `boxless group list`)")]
MemberArg = Annotated[str, typer.Argument(help="Member name in the group, or key prefix")]
ListArg = Annotated[str, typer.Argument(help="List name or id prefix (`boxless broadcast list`)")]

_TICKS = {"queued": "·", "sent": "✓", "confirmed": "✓✓"}


def _run(action: Callable[[], None]) -> None:
    """Run a command's body; a BoxlessError becomes the one-line error and exit 2."""
    try:
        action()
    except BoxlessError as exc:
        fail(exc)


def _pick(
    items: list[dict[str, Any]], who: str, what: str, hint: str, key: str = "id"
) -> dict[str, Any]:
    """One item by name (case-insensitive) or ``key`` prefix (4+ hex characters)."""
    exact = [i for i in items if i["name"].lower() == who.lower()]
    by_id = [i for i in items if len(who) >= 4 and i[key].startswith(who.lower())]
    found = exact or by_id
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"no {what} called {who!r}: {hint}")
    raise UsageError(f"{who!r} matches {len(found)} {what}s: use an id prefix ({hint})")


def _group(api: Api, who: str) -> dict[str, Any]:
    return _pick(api.call("GET", "/groups"), who, "group", "see `boxless group list`")


def _member(group: dict[str, Any], who: str) -> str:
    hint = f"see `boxless group show {group['name']}`"
    return str(_pick(group["members"], who, "member", hint, "identity_key")["identity_key"])


def _list(api: Api, who: str) -> dict[str, Any]:
    return _pick(
        api.call("GET", "/broadcasts"), who, "broadcast list", "see `boxless broadcast list`"
    )


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M") if ms else ""


def _preview(m: dict[str, Any]) -> str:
    """A message in one short line (events already name who did what)."""
    text = m["text"] if m["kind"] == "event" else f"{m['sender_name']}: {m['text']}"
    return text[:60]


def _say(text: str) -> None:
    out.print(markup(text))


# -- groups -----------------------------------------------------------------------------


@group_app.command("list")
def group_list(home: HomeOption = USER_HOME) -> None:
    """Your groups, with unread messages and mentions."""

    def run() -> None:
        groups = api_for(home).call("GET", "/groups")
        if not groups:
            _say("No groups yet: `boxless group create NAME`, or join one with a link.")
            return
        table = Table()
        for col in ("name", "id", "members", "you", "unread", "last message"):
            table.add_column(col)
        for g in groups:
            unread = str(g["unread"] or "") + (f" (@{g['mentions']})" if g["mentions"] else "")
            you = g["my_role"] or "left"
            last = g["last_message"]
            table.add_row(
                markup(g["name"]) + (" [dim](muted)[/dim]" if g["muted"] else ""),
                g["id"][:8],
                str(len(g["members"])),
                you,
                unread,
                markup(_preview(last)) if last else "",
            )
        out.print(table)

    _run(run)


@group_app.command("create")
def group_create(
    name: str,
    description: Annotated[str, typer.Option(help="What the group is for")] = "",
    home: HomeOption = USER_HOME,
) -> None:
    """Create a group with you as its admin; then `boxless group invite`."""

    def run() -> None:
        g = api_for(home).call("POST", "/groups", {"name": name, "description": description})
        _say(f"created {g['name']} ({g['id'][:8]}). Invite contacts: boxless group invite ...")

    _run(run)


@group_app.command("show")
def group_show(group: GroupArg, home: HomeOption = USER_HOME) -> None:
    """A group's settings and members."""

    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        _say(f"{g['name']}  ({g['id']})")
        if g["description"]:
            _say(g["description"])
        you = g["my_role"] or "not a member any more"
        _say(
            f"you: {you}; announcements only: {_yes(g['announcements_only'])};"
            f" new members see history: {_yes(g['history_sharing'])}; muted: {_yes(g['muted'])}"
        )
        table = Table()
        for col in ("member", "role", "key"):
            table.add_column(col)
        for m in g["members"]:
            table.add_row(markup(m["name"]), m["role"], m["identity_key"][:16])
        out.print(table)
        if g["member"]:
            pins = api.call("GET", f"/groups/{g['id']}/pins")
            for m in pins:
                _say(f"pinned: {m['sender_name']}: {m['text']}")

    _run(run)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@group_app.command("invite")
def group_invite(
    group: GroupArg,
    contacts: Annotated[list[str], typer.Argument(help="Accepted contacts (names or prefixes)")],
    home: HomeOption = USER_HOME,
) -> None:
    """Invite accepted contacts (admins only)."""

    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        for who in contacts:
            key = api.contact_key(who)
            api.call("POST", f"/groups/{g['id']}/members", {"identity_key": key})
            _say(f"invited {who} to {g['name']}")

    _run(run)


def _member_action(
    group: str, member: str, home: Path, act: Callable[[Api, str, str], str]
) -> None:
    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        _say(act(api, g["id"], _member(g, member)))

    _run(run)


@group_app.command("remove")
def group_remove(group: GroupArg, member: MemberArg, home: HomeOption = USER_HOME) -> None:
    """Remove a member (admins only); the group's keys change so they read nothing after."""

    def act(api: Api, gid: str, key: str) -> str:
        api.call("DELETE", f"/groups/{gid}/members/{key}")
        return f"removed {member}"

    _member_action(group, member, home, act)


def _set_role(role: str) -> Callable[[Api, str, str], str]:
    def act(api: Api, gid: str, key: str) -> str:
        g = api.call("PUT", f"/groups/{gid}/members/{key}/role", {"role": role})
        name = next(m["name"] for m in g["members"] if m["identity_key"] == key)
        return f"{name} is now {'an admin' if role == 'admin' else 'a member'}"

    return act


@group_app.command("promote")
def group_promote(group: GroupArg, member: MemberArg, home: HomeOption = USER_HOME) -> None:
    """Make a member an admin (admins only)."""
    _member_action(group, member, home, _set_role("admin"))


@group_app.command("demote")
def group_demote(group: GroupArg, member: MemberArg, home: HomeOption = USER_HOME) -> None:
    """Make an admin a plain member again (admins only)."""
    _member_action(group, member, home, _set_role("member"))


def _patch(group: str, home: Path, change: dict[str, Any]) -> dict[str, Any]:
    api = api_for(home)
    g = _group(api, group)
    return dict(api.call("PATCH", f"/groups/{g['id']}", change))


@group_app.command("rename")
def group_rename(group: GroupArg, name: str, home: HomeOption = USER_HOME) -> None:
    """Rename the group (admins only)."""
    _run(lambda: _say(f"renamed to {_patch(group, home, {'name': name})['name']}"))


@group_app.command("describe")
def group_describe(
    group: GroupArg,
    description: Annotated[str, typer.Argument(help='The new description ("" clears it)')],
    home: HomeOption = USER_HOME,
) -> None:
    """Set the group's description (admins only)."""
    _run(
        lambda: _say(
            f"description: {_patch(group, home, {'description': description})['description']}"
        )
    )


@group_app.command("avatar")
def group_avatar(
    group: GroupArg,
    picture: Annotated[
        Path | None, typer.Argument(help="A PNG, JPEG, WebP or GIF; leave out with --remove")
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the group's picture")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """Set the group's picture (admins only): a 512 px square, sent as an encrypted
    attachment that the members fetch."""

    def run() -> None:
        if remove == (picture is not None):
            raise UsageError("give a picture file, or --remove")
        image = b""
        if picture is not None:
            from boxless.media.images import prepare_avatar  # Pillow: loaded only here

            try:
                raw = picture.read_bytes()
            except OSError as exc:
                raise UsageError(f"cannot read {picture}: {exc.strerror}") from None
            image = prepare_avatar(raw).data  # shrunk here, so the request stays small
        api = api_for(home)
        g = _group(api, group)
        body = {"image": base64.b64encode(image).decode()}
        done = api.call("PUT", f"/groups/{g['id']}/avatar", body)
        _say(f"{done['name']}: picture {'set' if image else 'removed'}")

    _run(run)


@group_app.command("settings")
def group_settings(
    group: GroupArg,
    announcements_only: Annotated[
        bool | None,
        typer.Option("--announcements-only/--no-announcements-only", help="Only admins post"),
    ] = None,
    history: Annotated[
        bool | None,
        typer.Option("--history/--no-history", help="New members can read earlier messages"),
    ] = None,
    home: HomeOption = USER_HOME,
) -> None:
    """Show or change the group's settings (changes: admins only)."""

    def run() -> None:
        change: dict[str, Any] = {}
        if announcements_only is not None:
            change["announcements_only"] = announcements_only
        if history is not None:
            change["history_sharing"] = history
        g = _patch(group, home, change) if change else _group(api_for(home), group)
        _say(
            f"{g['name']}: announcements only: {_yes(g['announcements_only'])};"
            f" new members see history: {_yes(g['history_sharing'])}"
        )

    _run(run)


@group_app.command("link")
def group_link(
    group: GroupArg,
    days: Annotated[float, typer.Option(help="How long the link works", min=0.001, max=365)] = 7,
    qr: Annotated[bool, typer.Option("--qr/--no-qr", help="Print the QR code")] = False,
    png: Annotated[Path | None, typer.Option(help="Save the QR code as a PNG here")] = None,
    home: HomeOption = USER_HOME,
) -> None:
    """A link anyone can use to ask to join (admins only); your client lets them in."""

    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        body = {"validity_s": max(60, int(days * 86_400))}
        link = api.call("POST", f"/groups/{g['id']}/link", body)
        _say(link["link"])
        until = datetime.fromtimestamp(link["expires_at"]).strftime("%Y-%m-%d %H:%M")
        _say(f"(works until {until}; share it only with people you want in {g['name']})")
        if qr:
            from boxless.identity.contact_code import qr_terminal

            typer.echo(qr_terminal(link["link"]), nl=False)
        if png is not None:
            png.write_bytes(base64.b64decode(link["qr_png"].split(",", 1)[1]))
            _say(f"QR code saved to {png}")

    _run(run)


@group_app.command("join")
def group_join(
    link: Annotated[str, typer.Argument(help="The boxless://g/... link")],
    home: HomeOption = USER_HOME,
) -> None:
    """Ask to join a group by its link; it shows in `boxless group list` once you are in."""

    def run() -> None:
        api = api_for(home)
        p = api.call("POST", "/groups/preview", {"link": link})
        api.call("POST", "/groups/join", {"link": link})
        _say(
            f"asked {p['admin_name']} to let you into {p['name']}; it appears in"
            " `boxless group list` once their client admits you (they need to be online)"
        )

    _run(run)


@group_app.command("leave")
def group_leave(group: GroupArg, home: HomeOption = USER_HOME) -> None:
    """Leave the group; its history stays on this device."""

    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        api.call("POST", f"/groups/{g['id']}/leave")
        _say(f"you left {g['name']}")

    _run(run)


def mentions_in(text: str, members: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """The members ``text`` names as ``@name`` (longest names first), and whether it says @all."""
    lowered = text.casefold()
    found = []
    for m in sorted(members, key=lambda m: -len(m["name"])):
        name = m["name"].casefold()
        if name and re.search(r"(?<![\w@])@" + re.escape(name) + r"(?!\w)", lowered):
            found.append(m)
    return found, re.search(r"(?<![\w@])@all\b", lowered) is not None


TextArg = Annotated[str, typer.Argument(help="The message; @name mentions a member, @all all")]


@group_app.command("send")
def group_send(
    group: GroupArg,
    text: TextArg,
    reply_to: Annotated[
        str | None,
        typer.Option("--reply-to", help="Answer this message (id prefix, `boxless group history`)"),
    ] = None,
    home: HomeOption = USER_HOME,
) -> None:
    """Send a message to the group (@name and @all mention members)."""
    _send(group, text, reply_to, home)


def _send(group: str, text: str, reply_to: str | None, home: Path) -> None:
    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        named, everyone = mentions_in(text, g["members"])
        body: dict[str, Any] = {
            "text": text,
            "mentions": [m["identity_key"] for m in named],
            "mention_all": everyone,
        }
        if reply_to is not None:
            body["reply_to"] = _message(api, g, reply_to)["id"]
        m = api.call("POST", f"/groups/{g['id']}/messages", body)
        note = "everyone" if everyone else ", ".join(x["name"] for x in named)
        _say(f"{m['id'][:12]} {m['state']}" + (f" (mentioned {note})" if note else ""))

    _run(run)


def _message(api: Api, g: dict[str, Any], prefix: str) -> dict[str, Any]:
    """One text of the group's last 500 messages by id prefix."""
    history = api.call("GET", f"/groups/{g['id']}/messages?limit=500")
    found = [m for m in history if m["id"].startswith(prefix.lower()) and m["kind"] == "text"]
    if len(found) != 1:
        raise UsageError(
            f"{'no' if not found else len(found)} recent messages match {prefix!r}:"
            f" use an id prefix from `boxless group history {g['name']}`"
        )
    return dict(found[0])


def _line(m: dict[str, Any]) -> str:
    when = _when(m["sent_at_ms"])
    if m["kind"] == "event":
        return f"[dim]{when}  {markup(m['text'])}[/dim]"
    tick = f"  {_TICKS.get(m['state'], '')}" if m["outgoing"] else ""
    reads = f" read by {m['read_count']}" if m["outgoing"] and m["read_count"] else ""
    pin = " 📌" if m["pinned"] else ""
    text = markup(m["text"])
    if m.get("deleted"):
        text = "[dim italic]message deleted[/dim italic]"
    elif m["mentions_me"]:
        text = f"[bold yellow]{text}[/bold yellow]"
    if m.get("edited") and not m.get("deleted"):
        text += " [dim](edited)[/dim]"
    if m.get("reply_to"):
        text = f"[dim]↪ {m['reply_to'][:8]}[/dim] {text}"
    reactions = m.get("reactions") or {}
    said = (
        "  " + " ".join(f"{markup(e)}{len(who)}" for e, who in reactions.items())
        if reactions
        else ""
    )
    who = "me" if m["outgoing"] else markup(m["sender_name"])
    return f"[dim]{when} {m['id'][:8]}[/dim] {who}: {text}{tick}{reads}{pin}{said}"


@group_app.command("history")
def group_history(
    group: GroupArg,
    limit: Annotated[
        int, typer.Option(help="How many of the newest messages", min=1, max=500)
    ] = 30,
    before: Annotated[
        int | None, typer.Option(help="Only messages before this seq (paging back)")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="The whole history")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """The newest messages (with their id prefixes, for pin/unpin); older with
    --before <seq of the oldest shown>, or all of them with --all."""
    from boxless.cli.history import history

    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        path = f"/groups/{g['id']}/messages"
        rows = history(
            api, path, lambda m: int(m["seq"]), limit=limit, before=before, everything=everything
        )
        for m in rows:
            out.print(_line(m))

    _run(run)


def _mute(group: str, home: Path, muted: bool) -> None:
    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        api.call("PUT", f"/groups/{g['id']}/mute", {"muted": muted})
        _say(f"{g['name']} is {'muted (mentions still notify)' if muted else 'unmuted'}")

    _run(run)


@group_app.command("mute")
def group_mute(group: GroupArg, home: HomeOption = USER_HOME) -> None:
    """Mute the group: only mentions of you notify."""
    _mute(group, home, True)


@group_app.command("unmute")
def group_unmute(group: GroupArg, home: HomeOption = USER_HOME) -> None:
    """Unmute the group."""
    _mute(group, home, False)


def _pin(group: str, message: str, home: Path, pinned: bool) -> None:
    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        m = _message(api, g, message)
        api.call("PUT", f"/groups/{g['id']}/pins/{m['id']}", {"pinned": pinned})
        _say(f"{'pinned' if pinned else 'unpinned'}: {m['text'][:60]}")

    _run(run)


MessageArg = Annotated[str, typer.Argument(help="Message id prefix (see `boxless group history`)")]


@group_app.command("reply")
def group_reply(
    group: GroupArg, message: MessageArg, text: TextArg, home: HomeOption = USER_HOME
) -> None:
    """Answer a message (the reply quotes it in every member's chat)."""
    _send(group, text, message, home)


@group_app.command("react")
def group_react(
    group: GroupArg,
    message: MessageArg,
    emoji: Annotated[str, typer.Argument(help="One emoji, e.g. 👍")],
    remove: Annotated[bool, typer.Option("--remove", help="Take back this reaction")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """React to a message with an emoji (or take it back with --remove)."""

    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        m = _message(api, g, message)
        body = {"emoji": emoji, "remove": remove}
        m = api.call("POST", f"/groups/{g['id']}/messages/{m['id']}/reactions", body)
        now = " ".join(f"{e}{len(who)}" for e, who in m["reactions"].items()) or "none"
        _say(f"reactions on {m['id'][:8]}: {markup(now)}")

    _run(run)


@group_app.command("edit")
def group_edit(
    group: GroupArg,
    message: MessageArg,
    text: Annotated[str, typer.Argument(help="The new text")],
    home: HomeOption = USER_HOME,
) -> None:
    """Change the text of one of your messages, for every member."""

    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        m = _message(api, g, message)
        m = api.call("POST", f"/groups/{g['id']}/messages/{m['id']}/edit", {"text": text})
        _say(f"edited {m['id'][:8]}: {m['text'][:60]}")

    _run(run)


@group_app.command("delete")
def group_delete(group: GroupArg, message: MessageArg, home: HomeOption = USER_HOME) -> None:
    """Delete a message for everyone: yours, or anyone's if you are an admin."""

    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        m = _message(api, g, message)
        api.call("DELETE", f"/groups/{g['id']}/messages/{m['id']}")
        _say(f"deleted {m['id'][:8]} for everyone")

    _run(run)


@group_app.command("pin")
def group_pin(group: GroupArg, message: MessageArg, home: HomeOption = USER_HOME) -> None:
    """Pin a message for every member."""
    _pin(group, message, home, True)


@group_app.command("unpin")
def group_unpin(group: GroupArg, message: MessageArg, home: HomeOption = USER_HOME) -> None:
    """Unpin a message."""
    _pin(group, message, home, False)


@group_app.command("read")
def group_read(group: GroupArg, home: HomeOption = USER_HOME) -> None:
    """Mark everything in the group read (members see your read marker)."""

    def run() -> None:
        api = api_for(home)
        g = _group(api, group)
        newest = api.call("GET", f"/groups/{g['id']}/messages?limit=1")
        if not newest:
            _say("nothing to read")
            return
        api.call("POST", f"/groups/{g['id']}/read", {"seq": newest[-1]["seq"]})
        _say(f"{g['name']}: all read")

    _run(run)


# -- broadcast lists ------------------------------------------------------------------


@broadcast_app.command("list")
def broadcast_list(home: HomeOption = USER_HOME) -> None:
    """Your broadcast lists."""

    def run() -> None:
        lists = api_for(home).call("GET", "/broadcasts")
        if not lists:
            _say("No broadcast lists yet: `boxless broadcast create NAME CONTACT...`")
            return
        table = Table()
        for col in ("name", "id", "members", "last broadcast", "delivered", "read"):
            table.add_column(col)
        for bl in lists:
            last = bl["last_broadcast"]
            table.add_row(
                markup(bl["name"]),
                bl["id"][:8],
                str(len(bl["members"])),
                markup(last["text"][:40]) if last else "",
                f"{last['delivered']}/{last['sent']}" if last else "",
                f"{last['read']}/{last['sent']}" if last else "",
            )
        out.print(table)

    _run(run)


@broadcast_app.command("create")
def broadcast_create(
    name: str,
    contacts: Annotated[list[str], typer.Argument(help="Accepted contacts (up to 200)")],
    home: HomeOption = USER_HOME,
) -> None:
    """Make a list of accepted contacts to send one message to, each in their own chat."""

    def run() -> None:
        api = api_for(home)
        keys = [api.contact_key(who) for who in contacts]
        bl = api.call("POST", "/broadcasts", {"name": name, "members": keys})
        _say(f"created {bl['name']} ({bl['id'][:8]}) with {len(bl['members'])} contacts")

    _run(run)


@broadcast_app.command("show")
def broadcast_show(
    blist: ListArg,
    limit: Annotated[int, typer.Option(help="How many recent broadcasts", min=1, max=500)] = 10,
    home: HomeOption = USER_HOME,
) -> None:
    """A list's members and its recent broadcasts with delivered/read counts."""

    def run() -> None:
        api = api_for(home)
        bl = _list(api, blist)
        _say(f"{bl['name']}  ({bl['id']}): " + ", ".join(m["name"] for m in bl["members"]))
        sent = api.call("GET", f"/broadcasts/{bl['id']}/messages?limit={limit}")
        table = Table()
        for col in ("sent", "text", "delivered", "read"):
            table.add_column(col)
        for b in sent:
            n = b["sent"]
            table.add_row(
                _when(b["sent_at_ms"]),
                markup(b["text"][:60]),
                f"{b['delivered']}/{n}",
                f"{b['read']}/{n}",
            )
        out.print(table)

    _run(run)


@broadcast_app.command("send")
def broadcast_send(
    blist: ListArg,
    text: Annotated[str, typer.Argument(help="The message")],
    home: HomeOption = USER_HOME,
) -> None:
    """Send to everyone on the list: each gets it in your 1:1 chat, not seeing the others."""

    def run() -> None:
        api = api_for(home)
        bl = _list(api, blist)
        b = api.call("POST", f"/broadcasts/{bl['id']}/messages", {"text": text})
        _say(f"sent to {b['sent']} contacts of {bl['name']}")
        if b["skipped"]:
            names = {m["identity_key"]: m["name"] for m in bl["members"]}
            skipped = ", ".join(names.get(k, k[:8]) for k in b["skipped"])
            _say(f"skipped (no longer accepted contacts): {skipped}")

    _run(run)


@broadcast_app.command("delete")
def broadcast_delete(blist: ListArg, home: HomeOption = USER_HOME) -> None:
    """Delete the list (the messages it sent stay in each chat)."""

    def run() -> None:
        api = api_for(home)
        bl = _list(api, blist)
        api.call("DELETE", f"/broadcasts/{bl['id']}")
        _say(f"deleted {bl['name']}")

    _run(run)
