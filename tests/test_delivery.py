"""The pure delivery decisions: which answers are permanent, how a refused batch is split, how many
events fit in a byte budget, and that the wire-size arithmetic matches the real encoder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synclease.core.delivery import (
    MAX_BATCH_BYTES,
    MAX_REJECTIONS,
    BatchVerdict,
    Bisection,
    fit_count,
    is_permanent,
    judge,
    scrub,
)
from synclease.core.events import (
    BATCH_ENVELOPE_BYTES,
    Event,
    classify_status,
    encode_batch,
    event_wire_bytes,
)


def ev(n: int, rejections: int = 0, data: object = None) -> Event:
    payload = json.dumps({"n": n} if data is None else data, separators=(",", ":"))
    return Event(f"{n:032x}", "t", payload, "2030-01-01T00:00:00.000000Z", 1, rejections)


def test_the_bound_and_the_budget_are_named() -> None:
    assert MAX_REJECTIONS == 3
    assert MAX_BATCH_BYTES == 1024 * 1024


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (404, True),
        (409, True),
        (413, True),
        (422, True),
        (499, True),
        (401, False),
        (403, False),
        (408, False),
        (429, False),
        (500, False),
        (503, False),
        (301, False),
        (200, False),
        (None, False),
    ],
)
def test_is_permanent(status: int | None, permanent: bool) -> None:
    assert is_permanent(status) is permanent


@pytest.mark.parametrize(
    ("status", "count", "rejections", "verdict"),
    [
        (200, 5, 0, BatchVerdict.DELIVERED),
        (204, 1, 2, BatchVerdict.DELIVERED),
        (401, 5, 0, BatchVerdict.AUTH),
        (403, 1, 2, BatchVerdict.AUTH),
        (408, 1, 2, BatchVerdict.RETRY),
        (429, 1, 2, BatchVerdict.RETRY),
        (503, 1, 2, BatchVerdict.RETRY),
        (302, 1, 2, BatchVerdict.RETRY),  # a redirect is configuration, not the event's fault
        (422, 5, 0, BatchVerdict.SPLIT),
        (413, 2, 0, BatchVerdict.SPLIT),
        (422, 1, 0, BatchVerdict.REJECTED),
        (422, 1, MAX_REJECTIONS - 2, BatchVerdict.REJECTED),
        (422, 1, MAX_REJECTIONS - 1, BatchVerdict.DEAD_LETTER),
        (413, 1, MAX_REJECTIONS - 1, BatchVerdict.DEAD_LETTER),
        (400, 1, MAX_REJECTIONS + 5, BatchVerdict.DEAD_LETTER),
    ],
)
def test_judge(status: int, count: int, rejections: int, verdict: BatchVerdict) -> None:
    part = [ev(n, rejections if n == 0 else 0) for n in range(count)]
    assert judge(classify_status(status), status, part) is verdict


def test_judge_without_a_status_is_a_retry() -> None:
    # A bad server URL or an invalid request header is "rejected" with no status: not the events' fault.
    assert judge("rejected", None, [ev(0)]) is BatchVerdict.RETRY
    assert judge("retryable", None, [ev(0), ev(1)]) is BatchVerdict.RETRY
    assert judge("rejected", 422, []) is BatchVerdict.RETRY


def test_bisection_finds_one_poison_and_sends_every_good_event_once() -> None:
    batch = [ev(n) for n in range(100)]
    poison = batch[37]
    plan = Bisection(batch)
    sent: list[list[Event]] = []
    delivered: list[Event] = []
    while (part := plan.next()) is not None:
        sent.append(part)
        if poison in part and len(part) > 1:
            plan.split(part)
        elif poison not in part:
            delivered.extend(part)
    assert delivered == [e for e in batch if e is not poison]  # oldest first, each once
    assert [poison] in sent
    assert len(sent) <= 2 * 7 + 1  # about two uploads per halving of 100


def test_bisection_remaining_is_oldest_first_and_one_event_cannot_split() -> None:
    batch = [ev(n) for n in range(5)]
    plan = Bisection(batch)
    first = plan.next()
    assert first == batch and plan.remaining() == []
    plan.split(first)
    assert plan.remaining() == batch
    left = plan.next()
    assert left == batch[:2] and plan.remaining() == batch[2:]
    with pytest.raises(ValueError):
        plan.split([batch[0]])
    assert Bisection([]).next() is None


def test_fit_count() -> None:
    assert fit_count([]) == 0
    assert fit_count([10**9]) == 1  # one event always goes, alone
    assert fit_count([10**9, 1]) == 1
    sizes = [100] * 10
    budget = BATCH_ENVELOPE_BYTES - 1 + 100 * 4
    assert fit_count(sizes, budget) == 4
    assert fit_count(sizes, budget - 1) == 3
    assert fit_count(sizes, 10**9) == 10


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_text.filter(bool), _json), min_size=1, max_size=8))
def test_wire_bytes_add_up_to_the_encoded_batch(pairs: list[tuple[str, object]]) -> None:
    events = [
        Event(f"{n:032x}", t, json.dumps(d, separators=(",", ":"), ensure_ascii=True), "2030-01-01T00:00Z", 1)
        for n, (t, d) in enumerate(pairs)
    ]
    sizes = [event_wire_bytes(e.id, e.type, len(e.data_json.encode()), e.created_at) for e in events]
    assert len(encode_batch(events)) == BATCH_ENVELOPE_BYTES - 1 + sum(sizes)
    for budget in (len(encode_batch(events[:k])) for k in range(1, len(events) + 1)):
        k = fit_count(sizes, budget)
        assert len(encode_batch(events[:k])) <= budget
        assert k == len(events) or len(encode_batch(events[: k + 1])) > budget


def test_scrub() -> None:
    assert scrub("HTTP 422  tok-SECRET\nhere", "tok-SECRET") == "HTTP 422 *** here"
    assert scrub("x" * 500, None) == "x" * 160
    assert scrub("a b", "") == "a b"
