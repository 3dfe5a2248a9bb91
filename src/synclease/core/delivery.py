"""What the server's answer means for a claimed batch, and how a refused batch is split. Pure.

The server accepts or refuses a batch as a whole. A permanent refusal (a 4xx other than 401/403,
which are auth, and 408/429, which are retryable) of a batch of several events says only that *some*
event in it is poison, so the batch is split in two and the halves are sent, left (older) first
(:class:`Bisection`); the good events flow and the refusal narrows down to one event. A single event
refused permanently is counted (durably, in its row) and kept; at its :data:`MAX_REJECTIONS`-th
refusal it is dead-lettered, so the events behind it are never blocked for longer than that.
A 413 is a permanent refusal too: it splits a batch, and an event that is too large alone is poison.

Batches are bounded by count (the worker's batch size) and by bytes (:data:`MAX_BATCH_BYTES` of
encoded batch, :func:`fit_count`); one event always fits, so an oversized event is sent alone and
meets its own 413.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from synclease.core.events import BATCH_ENVELOPE_BYTES, Event, OutcomeKind

#: A one-event batch refused permanently this many times is dead-lettered.
MAX_REJECTIONS = 3
#: The encoded batch (``{"events": [...]}``) is kept at or under this many bytes (unless one event
#: alone is larger: it is then sent alone).
MAX_BATCH_BYTES = 1024 * 1024
#: Stored reasons (rows, dead letters) are cut to this many characters.
MAX_REASON_CHARS = 160
#: 4xx statuses that do not say "this batch is wrong": auth (401, 403) and retry later (408, 429).
NOT_PERMANENT_4XX = frozenset({401, 403, 408, 429})


class BatchVerdict(enum.Enum):
    DELIVERED = "delivered"  # 2xx: delete the part
    SPLIT = "split"  # several events refused permanently: send each half
    REJECTED = "rejected"  # one event refused permanently, under the bound: count it, keep it, back off
    DEAD_LETTER = "dead_letter"  # one event refused permanently for the MAX_REJECTIONS-th time
    RETRY = "retry"  # transient or not the events' fault (5xx, network, 3xx, bad URL): keep all, back off
    AUTH = "auth"  # 401/403: keep all, report the auth problem


def is_permanent(status: int | None) -> bool:
    """A refusal of the request's content: a 4xx other than 401, 403, 408 and 429."""
    return status is not None and 400 <= status < 500 and status not in NOT_PERMANENT_4XX


def judge(kind: OutcomeKind, status: int | None, part: Sequence[Event]) -> BatchVerdict:
    """What to do with ``part`` (the events just sent) after an answer of ``kind``/``status``."""
    if kind == "ok":
        return BatchVerdict.DELIVERED
    if kind == "auth_failed":
        return BatchVerdict.AUTH
    if kind != "rejected" or not is_permanent(status) or not part:
        return BatchVerdict.RETRY
    if len(part) > 1:
        return BatchVerdict.SPLIT
    return BatchVerdict.DEAD_LETTER if part[0].rejections + 1 >= MAX_REJECTIONS else BatchVerdict.REJECTED


def fit_count(wire_sizes: Iterable[int], max_bytes: int = MAX_BATCH_BYTES) -> int:
    """How many leading events (each :func:`~synclease.core.events.event_wire_bytes` long) fit in one
    encoded batch of at most ``max_bytes``; at least 1 when there is any event at all."""
    total = BATCH_ENVELOPE_BYTES - 1  # the first event's "comma" is not sent
    count = 0
    for size in wire_sizes:
        if count and total + size > max_bytes:
            break
        total += size
        count += 1
    return count


def scrub(text: str, secret: str | None, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` on one line, ``secret`` masked, at most ``limit`` characters: safe to store or show."""
    if secret:
        text = text.replace(secret, "***")
    return " ".join(text.split())[:limit]


class Bisection:
    """The parts of one claimed batch still to send, oldest first. ``next`` gives the part to send;
    after a :attr:`BatchVerdict.SPLIT` answer, ``split`` puts its two halves in its place."""

    def __init__(self, batch: Sequence[Event]) -> None:
        self._stack: list[list[Event]] = [list(batch)] if batch else []

    def next(self) -> list[Event] | None:
        return self._stack.pop() if self._stack else None

    def split(self, part: Sequence[Event]) -> None:
        middle = len(part) // 2
        if middle == 0:
            raise ValueError("a part of one event cannot be split")
        self._stack.append(list(part[middle:]))
        self._stack.append(list(part[:middle]))  # the older half goes first

    def remaining(self) -> list[Event]:
        """Every event not yet sent, oldest first (to give back when the round ends early)."""
        return [event for part in reversed(self._stack) for event in part]
