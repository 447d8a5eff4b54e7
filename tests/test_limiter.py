import asyncio

import pytest

from medops.models.base import StopRequested
from medops.models.limiter import AdaptiveLimiter
from medops.models.openai_chat import RetryPolicy, retry_after_seconds


def test_never_more_than_the_limit_in_flight():
    async def scenario():
        limiter = AdaptiveLimiter(3)
        peak = 0

        async def job():
            nonlocal peak
            async with limiter:
                peak = max(peak, limiter.in_flight)
                await asyncio.sleep(0.001)

        await asyncio.gather(*(job() for _ in range(50)))
        return peak, limiter.in_flight

    assert asyncio.run(scenario()) == (3, 0)


def test_throttling_halves_once_per_burst_and_recovers():
    limiter = AdaptiveLimiter(32, cooldown_s=60)
    limiter.on_throttled()
    limiter.on_throttled()  # same burst: counted once
    assert limiter.limit == 16
    for _ in range(16):
        limiter.on_success()
    assert limiter.limit == 17
    for _ in range(1000):
        limiter.on_success()
    assert limiter.limit == 32 and limiter.lowest_limit == 16


def test_close_refuses_waiters_but_lets_holders_finish():
    async def scenario():
        limiter = AdaptiveLimiter(1)
        results = []

        async def holder():
            async with limiter:
                await asyncio.sleep(0.05)
                results.append("held")

        async def waiter():
            try:
                async with limiter:
                    results.append("ran")
            except StopRequested:
                results.append("refused")

        first = asyncio.create_task(holder())
        await asyncio.sleep(0.01)
        second = asyncio.create_task(waiter())
        await asyncio.sleep(0.01)
        limiter.close()
        await asyncio.gather(first, second)
        return results, limiter.in_flight

    assert asyncio.run(scenario()) == (["refused", "held"], 0)


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_grows_with_jitter_and_is_capped():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    assert 0.5 <= policy.backoff(1) <= 1.0
    assert 2.0 <= policy.backoff(3) <= 4.0
    assert 4.0 <= policy.backoff(10) <= 8.0
    assert len({policy.backoff(2) for _ in range(20)}) > 1


@pytest.mark.parametrize("n", [1, 4])
def test_cancelled_waiter_gives_its_slot_back(n):
    async def scenario():
        limiter = AdaptiveLimiter(n)
        holders = [asyncio.create_task(hold(limiter, 0.05)) for _ in range(n)]
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(hold(limiter, 0))
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(*holders, waiter, return_exceptions=True)
        return limiter.in_flight

    async def hold(limiter, seconds):
        async with limiter:
            await asyncio.sleep(seconds)

    assert asyncio.run(scenario()) == 0
