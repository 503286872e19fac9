"""Forward messages to chats: each becomes a new text from us, sent in the original
order to every target we may write to; a target we may not (a group we left, a
contact who is blocked or has not accepted) is refused with the reason, the others
still get everything.

The envelope has no "forwarded" flag and adding one is a wire change, so a
forwarded message is just its text (as WeChat shows it).
"""

from __future__ import annotations

from dataclasses import dataclass

from boxless.client.conversations import Conversations
from boxless.client.groups import GroupManager
from boxless.client.search import Search, Source
from boxless.client.search_query import ChatRef, parse_chat
from boxless.errors import UsageError

__all__ = ["MAX_FORWARD_MESSAGES", "MAX_FORWARD_TARGETS", "Forwarded", "Forwarder"]

MAX_FORWARD_MESSAGES = 100
MAX_FORWARD_TARGETS = 20


@dataclass(frozen=True)
class Forwarded:
    sent: int  # messages sent, over all targets
    refused: dict[str, str]  # target chat -> why it was not sent to


class Forwarder:
    def __init__(self, search: Search, conversations: Conversations, groups: GroupManager) -> None:
        self.search = search
        self.conversations = conversations
        self.groups = groups

    def _refusal(self, target: ChatRef) -> str | None:
        """Why we may not write to ``target`` now, or None."""
        try:
            if target.is_group:
                state = self.groups.state(target.key)
                if not state.is_member(self.search.me):
                    return "you are not a member of this group"
                if state.announcements_only and not state.is_admin(self.search.me):
                    return "only admins can post in this group (announcements only)"
            else:
                self.conversations.accepted(target.key)
        except UsageError as exc:
            return str(exc)
        return None

    async def forward(self, messages: list[tuple[str, str]], targets: list[str]) -> Forwarded:
        """Send the texts of ``messages`` ((chat, id) pairs) to each chat in ``targets``.

        Every message and target is checked before anything is sent; a bad one is a
        UsageError. Cancellation stops between two sends (those sent stay sent).
        """
        if not messages or not targets:
            raise UsageError("choose at least one message and one chat to forward to")
        if len(messages) > MAX_FORWARD_MESSAGES:
            raise UsageError(f"forward at most {MAX_FORWARD_MESSAGES} messages at a time")
        if len(targets) > MAX_FORWARD_TARGETS:
            raise UsageError(f"forward to at most {MAX_FORWARD_TARGETS} chats at a time")
        sources: list[Source] = [self.search.source(c, m) for c, m in messages]
        refs = list({r.name: r for r in (parse_chat(t) for t in targets)}.values())
        refused = {r.name: why for r in refs if (why := self._refusal(r)) is not None}
        sent = 0
        for ref in refs:
            if ref.name in refused:
                continue
            for src in sources:
                if ref.is_group:
                    await self.groups.send_text(ref.key, src.text, mentions=(), mention_all=False)
                else:
                    await self.conversations.send_text(ref.key, src.text)
                sent += 1
        return Forwarded(sent, refused)
