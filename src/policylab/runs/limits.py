"""Requests-per-minute and tokens-per-minute limits (token buckets) and retry delays."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

# A bucket holds one second of its per-minute budget, so a run starts at the steady rate instead of
# spending a whole minute's quota in a burst that providers (which enforce per second) would reject.
BURST_SECONDS = 1.0


class TokenBucket:
    """A token bucket refilled at `per_minute / 60` per second, holding at most `capacity`.

    `acquire(n)` waits until the bucket holds `min(n, capacity)` and takes `n`; a request larger
    than the capacity leaves the bucket in debt, which later callers wait out. `settle(delta)`
    corrects an estimate once the true cost is known (a negative delta gives tokens back).
    """

    def __init__(
        self,
        per_minute: float,
        *,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = capacity if capacity is not None else max(1.0, self.rate * BURST_SECONDS)
        self.level = self.capacity
        self._clock = clock
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self, n: float) -> float:
        """Seconds until `n` may be taken (0 when it may be taken now)."""
        self._refill()
        need = min(n, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    async def acquire(self, n: float = 1.0) -> None:
        # The lock makes waiters queue in order instead of racing for each refill.
        async with self._lock:
            while (delay := self.wait_time(n)) > 0:
                await asyncio.sleep(delay)
            self.level -= n

    def settle(self, delta: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level - delta)


def estimate_tokens(text_chars: int, messages: int, max_tokens: int | None) -> int:
    """A pre-call token estimate: ~4 characters a token, 4 a message, plus the completion budget.

    Providers count `max_tokens` against a tokens-per-minute limit when the request arrives, so the
    completion budget is reserved up front; the true count settles the bucket afterwards.
    """
    return text_chars // 4 + 4 * messages + (max_tokens if max_tokens is not None else 256)


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed.

    Exponential backoff with full jitter: uniform in [0, min(cap, base·2^(attempt-1))]. When the
    server sent `Retry-After`, wait at least that long, plus up to `base` of jitter so the waiting
    requests do not all return in the same instant.
    """
    draw = (rng or random).uniform
    if retry_after is not None:
        return retry_after + draw(0.0, base)
    return draw(0.0, min(cap, base * 2 ** (attempt - 1)))
