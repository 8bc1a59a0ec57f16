"""Token buckets and retry delays, on a fake clock and a seeded random generator."""

from __future__ import annotations

import asyncio
import random

import pytest

from policylab.runs.limits import TokenBucket, backoff_delay, estimate_tokens


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_holds_one_second_and_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(120, clock=clock)  # 2 per second
    assert bucket.capacity == 2.0
    assert bucket.wait_time(1) == 0.0
    bucket.level -= 2
    assert bucket.wait_time(1) == pytest.approx(0.5)
    clock.now += 0.25
    assert bucket.wait_time(1) == pytest.approx(0.25)
    clock.now += 10
    bucket._refill()
    assert bucket.level == 2.0  # never above capacity


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket_and_leaves_debt() -> None:
    clock = Clock()
    bucket = TokenBucket(6000, clock=clock)  # 100 tokens a second, capacity 100
    assert bucket.wait_time(250) == 0.0  # a full bucket lets a big request through...
    bucket.level -= 250
    assert bucket.level == -150
    assert bucket.wait_time(10) == pytest.approx(1.6)  # ...and the next waits out the debt


def test_settle_corrects_an_estimate_both_ways() -> None:
    clock = Clock()
    bucket = TokenBucket(6000, clock=clock)
    bucket.level = 0.0
    bucket.settle(-40)  # used 40 fewer than estimated
    assert bucket.level == 40
    bucket.settle(70)  # used 70 more
    assert bucket.level == -30
    bucket.settle(-1000)
    assert bucket.level == bucket.capacity


async def test_acquire_spaces_requests_at_the_rate() -> None:
    bucket = TokenBucket(600)  # 10 a second, capacity 10
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(15):
        await bucket.acquire(1)
    # 10 from the full bucket, 5 more at 10 a second: at least 0.5 s (a lower bound, not a timing).
    assert loop.time() - start >= 0.45


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)


def test_full_jitter_stays_within_the_exponential_envelope() -> None:
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
        draws = [backoff_delay(attempt, base=0.5, cap=8.0, rng=rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.8 * ceiling  # the whole range is used, not just its bottom


def test_retry_after_is_a_floor_with_a_little_jitter() -> None:
    rng = random.Random(1)
    draws = [backoff_delay(1, base=0.5, cap=60, retry_after=3.0, rng=rng) for _ in range(100)]
    assert all(3.0 <= d <= 3.5 for d in draws)
    assert len(set(draws)) > 50


def test_token_estimates_reserve_the_completion_budget() -> None:
    assert estimate_tokens(400, 2, 100) == 100 + 8 + 100
    assert estimate_tokens(0, 1, None) == 4 + 256
