"""Group test helpers shared by the in-memory and in-process group tests: who a
client sees in a group, its texts, and a group of an admin and its contacts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from boxless.client.core import Client
from boxless.client.groups import NotAMember
from tests.chat_fixtures import befriend

Wait = Callable[[Client, Callable[[], bool]], Awaitable[None]]


def members(client: Client, gid: bytes) -> set[bytes]:
    """The members ``client`` sees; none before it joined."""
    try:
        return set(client.groups.state(gid).members)
    except NotAMember:
        return set()


def texts(client: Client, gid: bytes) -> list[str]:
    """The group's texts as ``client`` stores them, oldest first."""
    return [m.text for _, m in client.groups.messages(gid, 500) if m.kind == "text"]


async def contacts_group(admin: Client, others: Sequence[Client], name: str, wait: Wait) -> bytes:
    """``admin`` befriends ``others``, creates the group ``name`` and invites them;
    returns once each of them sees every member (``wait``: the harness's wait)."""
    for other in others:
        await befriend(admin, other)
    gid = (await admin.groups.create(name)).group_id
    for other in others:
        await admin.groups.invite(gid, other.me)
    everyone = {admin.me, *(o.me for o in others)}
    for other in others:
        await wait(other, lambda o=other: members(o, gid) == everyone)  # type: ignore[misc]
    return gid
