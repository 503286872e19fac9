"""The poll bot: ``boxless bot run examples.poll.bot:app``. Add it to a group; then
``/poll Question? | A | B`` in the group starts a poll, members vote in the Poll
mini app (``org.boxless.poll``), ``/close N`` (the creator) or the timer posts
the results in the group."""

from __future__ import annotations

from typing import Any

import trio

from boxless.bot import Bot, BotApp, Message, Request
from boxless.errors import BoxlessError
from examples.poll.polls import PollBook, PollError

APP_ID = "org.boxless.poll"

app = BotApp("poll")
book = PollBook()


def members(bot: Bot, group: str) -> set[str]:
    try:
        state = bot.client.groups.state(bytes.fromhex(group))
    except (ValueError, BoxlessError):
        return set()
    return {key.hex() for key in state.members}


def my_groups(bot: Bot, user: str) -> set[str]:
    return {
        g.group_id.hex() for g in bot.client.groups.groups() if bytes.fromhex(user) in g.members
    }


@app.on_message
async def command(bot: Bot, msg: Message) -> str | None:
    if not msg.chat.startswith("group:"):
        return "Add me to a group, then write /poll Question? | option | option there."
    group = msg.chat.removeprefix("group:")
    text = msg.text.strip()
    try:
        if text.startswith("/poll "):
            poll = book.create(group, msg.sender, text.removeprefix("/poll "), trio.current_time())
            options = "  ".join(f"{i + 1}) {o}" for i, o in enumerate(poll.options))
            return f"Poll {poll.id}: {poll.question}  {options}  — vote in the Poll app."
        if text.startswith("/close "):
            poll_id = int(text.removeprefix("/close ").strip() or "0")
            return book.close(poll_id, msg.sender, group).results()
    except (PollError, ValueError) as exc:
        return str(exc)
    return None


@app.on_request(APP_ID)
async def polls(bot: Bot, req: Request) -> Any:
    p = req.payload if isinstance(req.payload, dict) else {}
    try:
        if p.get("op") == "list":
            return {"polls": [x.json(req.user) for x in book.visible(my_groups(bot, req.user))]}
        if p.get("op") == "vote":
            pid = p.get("poll")
            poll = book.polls.get(pid) if isinstance(pid, int) else None
            group = poll.group if poll is not None else ""
            voted = book.vote(p.get("poll"), req.user, p.get("option"), members(bot, group))
            return voted.json(req.user)
    except PollError as exc:
        return {"error": str(exc)}
    return {"error": "op is list or vote"}


@app.every(5.0)
async def closing(bot: Bot) -> None:
    for poll in book.due(trio.current_time()):
        book.close(poll.id, None, poll.group)
        await bot.send(f"group:{poll.group}", poll.results())
