"""Moments' rules, with no I/O: audiences, windows, and who may do what.

Theory of operation
-------------------
The plug-in (:mod:`boxless.client.moments`) asks this module before anything
a peer sent changes state. Each ``authorise_*`` function takes the sender,
the body and what the store knows (a :class:`PostFacts`, or ``None`` for an
unknown post) and returns ``None`` (allowed) or a :data:`Reason` that the
plug-in counts in :class:`Drops` and drops. Audiences are resolved here from
the mode the poster chose (never sent to anyone) and the account-wide "hide
my moments from" list; relay targets come from the blinded contact tags an
act carries (docs/moments.md).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from boxless.chat.moment import ActKind, MomentAct, MomentKey, contact_tag
from boxless.errors import UsageError

__all__ = [
    "MAX_ACTS_PER_AUTHOR",
    "MAX_ACTS_PER_POST",
    "MAX_POSTS_PER_POSTER",
    "MAX_BACKFILL",
    "MAX_FEEDS_PER_POSTER",
    "MAX_NOTICES",
    "AudienceMode",
    "Drops",
    "FeedState",
    "PostFacts",
    "ReaderPlan",
    "Window",
    "authorise_act",
    "authorise_delete",
    "authorise_key",
    "authorise_relay",
    "joinable_as",
    "may_join",
    "notice_for",
    "plan_readers",
    "relay_targets",
    "resolve_audience",
    "visible",
]

MAX_POSTS_PER_POSTER: Final = 500  # kept per contact; the oldest go first
MAX_ACTS_PER_POST: Final = 1000  # likes and comments a post keeps
MAX_ACTS_PER_AUTHOR: Final = 50  # comments one person keeps on one post
MAX_AUDIENCE_CHOICE: Final = 5000
DAY_MS: Final = 86_400_000

Reason = Literal[
    "no_such_post",
    "not_audience",
    "not_poster",
    "not_author",
    "post_deleted",
    "muted_poster",
    "full",
    "own_post_key",
    "stale",
    "not_contact",
    "bad_shares",
    "forged_share",
    "reader_in_shares",
]


class AudienceMode(enum.StrEnum):
    ALL = "all"  # every contact
    ONLY = "only"  # only the chosen contacts
    EXCEPT = "except"  # every contact except the chosen
    ME = "me"  # only me: no key shares


class Window(enum.StrEnum):
    """How far back contacts may see my posts (WeChat's 3 days / 6 months / all)."""

    DAYS3 = "3d"
    MONTHS6 = "6m"
    ALL = "all"

    def until(self, posted_at_ms: int) -> int:
        """The ``visible_until_ms`` a post made at ``posted_at_ms`` carries (0: always)."""
        match self:
            case Window.DAYS3:
                return posted_at_ms + 3 * DAY_MS
            case Window.MONTHS6:
                return posted_at_ms + 182 * DAY_MS
            case Window.ALL:
                return 0


def resolve_audience(
    mode: AudienceMode,
    chosen: Collection[bytes],
    contacts: Collection[bytes],
    hidden_from: Collection[bytes],
) -> frozenset[bytes]:
    """Who gets the post's key: decided here, on the poster's device, never sent."""
    if len(chosen) > MAX_AUDIENCE_CHOICE:
        raise UsageError(f"choose at most {MAX_AUDIENCE_CHOICE} contacts")
    mine = frozenset(contacts)
    if mode in (AudienceMode.ONLY, AudienceMode.EXCEPT):
        strangers = set(chosen) - mine
        if strangers:
            raise UsageError("choose only among your contacts")
        if mode is AudienceMode.ONLY and not chosen:
            raise UsageError("'only' needs at least one chosen contact")
    match mode:
        case AudienceMode.ALL:
            audience = mine
        case AudienceMode.ONLY:
            audience = frozenset(chosen)
        case AudienceMode.EXCEPT:
            audience = mine - frozenset(chosen)
        case AudienceMode.ME:
            audience = frozenset()
    return audience - frozenset(hidden_from)


def visible(visible_until_ms: int, now_ms: int) -> bool:
    return visible_until_ms == 0 or now_ms < visible_until_ms


@dataclass(frozen=True, slots=True)
class PostFacts:
    """What the store knows of a post when a peer's body about it arrives."""

    poster: bytes
    mine: bool
    deleted: bool
    in_audience: bool = False  # the sender got its key (poster side only)
    acts: int = 0  # likes + comments kept
    acts_by_sender: int = 0  # comments kept from this sender
    target_author: bytes | None = None  # the author of the comment an act names


class Drops:
    """Counted reasons for dropped peer input (exposed on the API for diagnosis)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, reason: str) -> None:
        self.counts[reason] += 1

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)


def authorise_key(
    sender: bytes, me: bytes, body: MomentKey, post: PostFacts | None, muted: Collection[bytes]
) -> Reason | None:
    """May ``sender`` (a contact: the channel gated it) give us this post key?"""
    if sender == me:
        return "own_post_key"
    if sender in muted:
        return "muted_poster"
    if post is not None and post.poster != sender:
        return "not_poster"  # someone else's post id: never overwrite
    if post is not None and post.deleted:
        return "post_deleted"
    return None


def authorise_act(
    sender: bytes, me: bytes, act: MomentAct, post: PostFacts | None
) -> Reason | None:
    """May ``sender`` like / comment / delete a comment on our post ``post``?"""
    if post is None or not post.mine:
        return "no_such_post"
    if post.deleted:
        return "post_deleted"
    if sender != me and not post.in_audience:
        return "not_audience"
    if act.kind is ActKind.UNCOMMENT:
        if post.target_author is None:
            return "no_such_post"
        if sender not in (post.target_author, me):
            return "not_author"
    if act.kind is ActKind.COMMENT:
        if post.acts >= MAX_ACTS_PER_POST or post.acts_by_sender >= MAX_ACTS_PER_AUTHOR:
            return "full"
    if act.kind is ActKind.LIKE and post.acts >= MAX_ACTS_PER_POST:
        return "full"
    return None


def authorise_relay(
    sender: bytes, post: PostFacts | None, kind: ActKind | None = None
) -> Reason | None:
    """May ``sender`` pass on an act (of ``kind``) on ``post`` (only its poster may,
    and even the poster only up to :data:`MAX_ACTS_PER_POST` likes and comments)?"""
    if post is None:
        return "no_such_post"
    if post.poster != sender or post.mine:
        return "not_poster"
    if post.deleted:
        return "post_deleted"
    if kind in (ActKind.LIKE, ActKind.COMMENT) and post.acts >= MAX_ACTS_PER_POST:
        return "full"
    return None


def authorise_delete(sender: bytes, post: PostFacts | None) -> Reason | None:
    """May ``sender`` delete ``post`` for us (only its poster may)?"""
    if post is None:
        return "no_such_post"
    if post.poster != sender or post.mine:
        return "not_poster"
    return None


def relay_targets(
    key: bytes, audience: Iterable[bytes], tags: Collection[bytes], author: bytes
) -> list[bytes]:
    """The audience members who are the author's contacts (by blinded tag), not the author."""
    wanted = frozenset(tags)
    return sorted(m for m in audience if m != author and contact_tag(key, m) in wanted)


# -- keying: who gets a post key how (docs/moments.md "Keying") ---------------------------------

MAX_FEEDS_PER_POSTER: Final = 2  # a reader keeps a poster's newest feed epochs (in-flight posts)


@dataclass(frozen=True, slots=True)
class FeedState:
    """The poster's feed secret (names its feed topic) and its epoch."""

    secret: bytes
    epoch: int

    def as_json(self) -> dict[str, object]:
        return {"secret": self.secret.hex(), "epoch": self.epoch}

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> FeedState:
        return cls(bytes.fromhex(str(raw["secret"])), int(str(raw["epoch"])))


@dataclass(frozen=True, slots=True)
class ReaderPlan:
    """How one post reaches its audience."""

    feed: FeedState  # to keep (rotated if a reader went)
    stale: frozenset[bytes]  # readers to forget: no longer contacts, or hidden from
    by_olm: frozenset[bytes]  # get the post key with a (re)issued reader key, over Olm
    by_shares: tuple[bytes, ...]  # hold our current reader key: one record each
    reader_keys: dict[bytes, bytes]  # member -> reader key, for both groups


def plan_readers(
    readers: Mapping[bytes, tuple[bytes, int]],
    feed: FeedState,
    eligible: Collection[bytes],
    audience: Collection[bytes],
    *,
    new_key: Callable[[], bytes],
) -> ReaderPlan:
    """Decide, for one post, who gets its key in the shares message and who over Olm.

    A reader who is no longer ``eligible`` (removed, blocked, hidden from) is
    forgotten and the feed secret rotates, so it can't even watch our feed topic;
    every remaining reader then gets the new secret over Olm once. A member with
    no reader key yet gets one over Olm. Everyone else costs one record.
    """
    stale = frozenset(m for m in readers if m not in eligible)
    if stale:
        feed = FeedState(new_key(), feed.epoch + 1)
    keys: dict[bytes, bytes] = {}
    by_olm, by_shares = set(), []
    for member in sorted(audience):
        have = readers.get(member)
        if have is not None and member not in stale and have[1] == feed.epoch:
            keys[member] = have[0]
            by_shares.append(member)
        else:
            keys[member] = have[0] if have is not None and member not in stale else new_key()
            by_olm.add(member)
    return ReaderPlan(feed, stale, frozenset(by_olm), tuple(by_shares), keys)


MAX_BACKFILL: Final = 20  # earlier posts a contact who joins later gets keys for


def may_join(member: bytes, mode: str, chosen: Collection[bytes]) -> bool:
    """May a contact who joined after a post (added later) read it? Only if the
    poster's choice would have included it then: "all", or "all except" others."""
    match mode:
        case AudienceMode.ALL:
            return True
        case AudienceMode.EXCEPT:
            return member not in chosen
        case _:
            return False  # "only" named its readers; "me" has none


MAX_NOTICES: Final = 500  # notifications kept (the newest)


def notice_for(
    me: bytes, post_mine: bool, author: bytes, kind: ActKind, reply_to_author: bytes | None
) -> str | None:
    """The notification an applied act makes for us, if any: a like or comment on
    our post, a reply to our comment (on any post we can read). Our own acts: none."""
    if author == me:
        return None
    if kind is ActKind.COMMENT and reply_to_author == me:
        return "reply"
    if post_mine and kind is ActKind.COMMENT:
        return "comment"
    if post_mine and kind is ActKind.LIKE:
        return "like"
    return None


def joinable_as(
    mode: AudienceMode, chosen: Collection[bytes], hidden: Collection[bytes]
) -> tuple[AudienceMode, frozenset[bytes]]:
    """The mode and chosen set a post keeps for :func:`may_join`: contacts the
    account-wide "hide my moments from" list excluded then stay excluded (un-hiding
    someone later does not hand them what was posted while they were hidden)."""
    if mode in (AudienceMode.ALL, AudienceMode.EXCEPT) and hidden:
        return AudienceMode.EXCEPT, frozenset(chosen) | frozenset(hidden)
    return mode, frozenset(chosen)
