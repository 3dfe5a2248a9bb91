"""Capped exponential backoff. Pure: the only randomness is an optional injected source."""

from __future__ import annotations

from collections.abc import Callable

DEFAULT_BASE_SECONDS = 0.5
DEFAULT_CAP_SECONDS = 30.0
#: Exponents beyond this already exceed any sane cap; clamping keeps ``2 ** n`` finite.
_MAX_EXPONENT = 62


def next_delay(
    consecutive_failures: int,
    base: float = DEFAULT_BASE_SECONDS,
    cap: float = DEFAULT_CAP_SECONDS,
    rand: Callable[[], float] | None = None,
) -> float:
    """Seconds to wait after ``consecutive_failures`` failures in a row: ``base * 2**(n-1)``, at most ``cap``.

    No failure means no wait (``0.0``). With ``rand`` (returning a float in ``[0, 1)``, e.g.
    ``random.random``) the delay is spread over ``[delay/2, delay)`` ("equal jitter"), so many clients
    failing together do not retry together; without it the result is deterministic.
    """
    if base < 0 or cap < 0:
        raise ValueError("base and cap must not be negative")
    if consecutive_failures <= 0:
        return 0.0
    exponent = min(consecutive_failures - 1, _MAX_EXPONENT)
    delay = min(cap, base * float(2**exponent))
    if rand is not None:
        delay = delay / 2 + (delay / 2) * min(max(rand(), 0.0), 1.0)
    return delay
