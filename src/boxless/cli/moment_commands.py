"""``boxless moments ...``: post, read the feed, like, comment, delete -- through the
local API of a running ``boxless up`` (docs/moments.md).

A post is named by its id or any unambiguous start of it (as ``feed`` shows);
a contact by its name (any case) or identity key hex.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any

import typer

from boxless.cli.api_client import Api, api_for
from boxless.cli.app import app, fail, out
from boxless.cli.common import USER_HOME, HomeOption
from boxless.cli.safe import markup
from boxless.errors import BoxlessError, UsageError

moments_app = typer.Typer(
    help="Moments: posts only the audience you choose can read (needs `boxless up`).",
    no_args_is_help=True,
)
app.add_typer(moments_app, name="moments")

PostArg = Annotated[str, typer.Argument(help="A post id, or the start of one (see `feed`)")]


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except BoxlessError as exc:
        fail(exc)


def _names(api: Api) -> dict[str, str]:
    return {c["identity_key"]: c["name"] for c in api.call("GET", "/contacts")}


def _contact(names: dict[str, str], who: str) -> str:
    if who.lower() in names:
        return who.lower()
    found = [k for k, n in names.items() if n.lower() == who.lower()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"no contact called {who!r}: see `boxless contacts`")
    raise UsageError(f"{who!r} names {len(found)} contacts: use the identity key")


def _post(api: Api, prefix: str) -> str:
    prefix = prefix.lower()
    ids = [p["id"] for p in api.call("GET", "/moments?limit=200")["posts"]]
    found = [str(i) for i in ids if i.startswith(prefix)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"no post {prefix!r} in your feed: see `boxless moments feed`")
    raise UsageError(f"{prefix!r} starts {len(found)} post ids: give more of it")


@moments_app.command("post")
def moments_post(
    text: Annotated[str, typer.Argument(help="What to say")],
    place: Annotated[str, typer.Option("--place", help="A place name")] = "",
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Only these contacts see it (repeat)")
    ] = None,
    but: Annotated[
        list[str] | None, typer.Option("--except", help="Every contact but these (repeat)")
    ] = None,
    me: Annotated[bool, typer.Option("--me", help="Only me")] = False,
    mention: Annotated[
        list[str] | None, typer.Option("--mention", help="Notify a contact in the audience")
    ] = None,
    home: HomeOption = USER_HOME,
) -> None:
    """Post to all contacts, or --only some, or all --except some, or --me."""

    def run() -> None:
        if sum((bool(only), bool(but), me)) > 1:
            raise UsageError("choose one of --only, --except and --me")
        api = api_for(home)
        names = _names(api)
        audience, chosen = "all", list(only or but or [])
        if only:
            audience = "only"
        elif but:
            audience = "except"
        elif me:
            audience = "me"
        body: dict[str, Any] = {
            "text": text,
            "place": place,
            "audience": audience,
            "chosen": [_contact(names, w) for w in chosen],
            "mentions": [_contact(names, w) for w in mention or []],
        }
        got = api.call("POST", "/moments", body)
        out.print(f"posted {got['id'][:8]}")

    _run(run)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M")


@moments_app.command("feed")
def moments_feed(
    poster: Annotated[str | None, typer.Option("--from", help="Only this contact's")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    home: HomeOption = USER_HOME,
) -> None:
    """Posts you may read, newest first, with the likes and comments you may see."""

    def run() -> None:
        api = api_for(home)
        names = _names(api)
        me = api.call("GET", "/me")
        names[me["identity_key"]] = "you"
        query = f"/moments?limit={limit}"
        if poster:
            query += f"&poster={_contact(names, poster)}"
        got = api.call("GET", query)
        if not got["posts"]:
            out.print("No moments yet: `boxless moments post TEXT` to write one.")
        for p in got["posts"]:
            who = names.get(p["poster"], p["poster"][:8])
            place = f" · {markup(p['place'])}" if p["place"] else ""
            out.print(
                f"[bold]{markup(who)}[/bold] {_when(p['posted_at_ms'])}{place}  {p['id'][:8]}"
            )
            out.print(f"  {markup(p['text'])}")
            for m in p["media"]:
                out.print(f"  [{m['kind']}] {markup(m['name'])}")
            if p["likes"]:
                out.print("  ♡ " + ", ".join(markup(names.get(k, k[:8])) for k in p["likes"]))
            for c in p["comments"]:
                author = markup(names.get(c["author"], c["author"][:8]))
                out.print(f"  {author}: {markup(c['text'])}  ({c['id'][:8]})")
        api.call("POST", "/moments/read")

    _run(run)


@moments_app.command("like")
def moments_like(
    post: PostArg,
    undo: Annotated[bool, typer.Option("--undo", help="Take the like back")] = False,
    home: HomeOption = USER_HOME,
) -> None:
    """Like a post (its poster and your contacts among its audience see it)."""

    def run() -> None:
        api = api_for(home)
        api.call("POST", f"/moments/{_post(api, post)}/like", {"liked": not undo})
        out.print("unliked" if undo else "liked")

    _run(run)


@moments_app.command("comment")
def moments_comment(
    post: PostArg,
    text: Annotated[str, typer.Argument(help="The comment")],
    reply_to: Annotated[str | None, typer.Option("--reply-to", help="A comment's id")] = None,
    home: HomeOption = USER_HOME,
) -> None:
    """Comment on a post (optionally replying to a comment)."""

    def run() -> None:
        api = api_for(home)
        pid = _post(api, post)
        body: dict[str, Any] = {"text": text}
        if reply_to:
            full = [
                c["id"]
                for p in api.call("GET", "/moments?limit=200")["posts"]
                if p["id"] == pid
                for c in p["comments"]
                if c["id"].startswith(reply_to.lower())
            ]
            if len(full) != 1:
                raise UsageError(f"no single comment {reply_to!r} on that post")
            body["reply_to"] = full[0]
        got = api.call("POST", f"/moments/{pid}/comments", body)
        out.print(f"commented {got['id'][:8]}")

    _run(run)


@moments_app.command("delete")
def moments_delete(post: PostArg, home: HomeOption = USER_HOME) -> None:
    """Delete your post, for everyone who got it."""

    def run() -> None:
        api = api_for(home)
        api.call("DELETE", f"/moments/{_post(api, post)}")
        out.print("deleted")

    _run(run)
