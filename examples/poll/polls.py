"""Group polls, sans-IO (the bot in bot.py does the I/O).

A member of a group the bot is in starts a poll with ``/poll Question? | A | B``
in the group; members vote in the Poll mini app (one vote each, changeable
until the poll closes); the creator closes it with ``/close N`` or it closes
by itself after ``DURATION_S``; the bot posts the results in the group. Who may
vote is the group's member list as the bot's client knows it, passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_OPTIONS = 10
MAX_TEXT = 200
MAX_OPEN_PER_GROUP = 20
DURATION_S = 600.0


class PollError(ValueError):
    """The request cannot be done; the message says why."""


@dataclass
class Poll:
    id: int
    group: str  # group id hex
    creator: str
    question: str
    options: list[str]
    closes_at: float
    votes: dict[str, int] = field(default_factory=dict)  # voter -> option index
    open: bool = True

    def counts(self) -> list[int]:
        counts = [0] * len(self.options)
        for i in self.votes.values():
            counts[i] += 1
        return counts

    def json(self, voter: str | None = None) -> dict[str, object]:
        return {
            "poll": self.id,
            "group": self.group,
            "question": self.question,
            "options": self.options,
            "counts": self.counts(),
            "open": self.open,
            "mine": None if voter is None else self.votes.get(voter),
        }

    def results(self) -> str:
        lines = [f"Poll {self.id} closed: {self.question}"]
        total = len(self.votes)
        for option, n in sorted(zip(self.options, self.counts(), strict=True), key=lambda x: -x[1]):
            lines.append(f"  {option}: {n} vote{'s' if n != 1 else ''}")
        lines.append(f"  ({total} voted)")
        return "\n".join(lines)


@dataclass
class PollBook:
    polls: dict[int, Poll] = field(default_factory=dict)
    next_id: int = 1

    def create(self, group: str, creator: str, command: str, now: float) -> Poll:
        """``command`` is what follows ``/poll``: ``Question | option | option ...``."""
        parts = [p.strip() for p in command.split("|")]
        question, options = parts[0], [p for p in parts[1:] if p]
        if not question or len(options) < 2:
            raise PollError("write /poll Question? | option 1 | option 2 (2 to 10 options)")
        if len(options) > MAX_OPTIONS or any(len(t) > MAX_TEXT for t in parts):
            raise PollError(f"at most {MAX_OPTIONS} options of {MAX_TEXT} characters")
        if sum(1 for p in self.polls.values() if p.group == group and p.open) >= MAX_OPEN_PER_GROUP:
            raise PollError(f"this group has {MAX_OPEN_PER_GROUP} open polls; close one first")
        poll = Poll(self.next_id, group, creator, question, options, now + DURATION_S)
        self.polls[poll.id] = poll
        self.next_id += 1
        return poll

    def vote(self, poll_id: object, voter: str, option: object, members: set[str]) -> Poll:
        poll = self._get(poll_id)
        if voter not in members:
            raise PollError("only the group's members vote in its polls")
        if not poll.open:
            raise PollError("this poll is closed")
        if (
            not isinstance(option, int)
            or isinstance(option, bool)
            or not 0 <= option < len(poll.options)
        ):
            raise PollError("no such option")
        poll.votes[voter] = option
        return poll

    def close(self, poll_id: object, by: str | None, group: str) -> Poll:
        """Close a poll: ``by`` its creator in its group (None: the timer)."""
        poll = self._get(poll_id)
        if poll.group != group or (by is not None and by != poll.creator):
            raise PollError("only the poll's creator closes it")
        if not poll.open:
            raise PollError("this poll is already closed")
        poll.open = False
        return poll

    def due(self, now: float) -> list[Poll]:
        return [p for p in self.polls.values() if p.open and now >= p.closes_at]

    def visible(self, groups: set[str]) -> list[Poll]:
        return [p for p in self.polls.values() if p.group in groups][-50:]

    def _get(self, poll_id: object) -> Poll:
        poll = self.polls.get(poll_id) if isinstance(poll_id, int) else None
        if poll is None:
            raise PollError("no such poll")
        return poll
