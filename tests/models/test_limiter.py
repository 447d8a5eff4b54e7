import asyncio
import threading
import time

import pytest

from conftest import example, write_jsonl
from medops.models.base import SamplingParams, StopRequested
from medops.models.limiter import AdaptiveLimiter
from medops.models.openai_chat import OpenAIChatModel, RetryPolicy, retry_after_seconds
from medops.models.spec import parse_model_spec
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread


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


class Demand:
    """``n`` requests that take a slot each and keep it until released: the limiter's state
    moves only by the outcomes a test reports, so every step is exact."""

    def __init__(self, limiter: AdaptiveLimiter, n: int):
        self.limiter, self.release = limiter, asyncio.Event()
        self.tasks = [asyncio.create_task(self._hold()) for _ in range(n)]

    async def _hold(self):
        async with self.limiter:
            await self.release.wait()

    async def settle(self):
        for _ in range(3):
            await asyncio.sleep(0)
        return self.limiter.limit, self.limiter.in_flight

    async def finish(self):
        self.release.set()
        await asyncio.gather(*self.tasks)


def test_slow_start_then_the_ceiling_at_the_first_429():
    async def scenario():
        limiter = AdaptiveLimiter(64)
        demand = Demand(limiter, 100)
        assert await demand.settle() == (16, 16)  # starts low, not at the maximum
        for _ in range(10):
            limiter.on_success()
        assert await demand.settle() == (26, 26)  # one more per success: one waiter let in each time
        limiter.on_throttled()  # 26 in flight, the 26th refused: 25 is what the endpoint takes
        assert (limiter.limit, limiter.ceiling) == (25, 25)
        limiter.on_throttled()  # another of the same burst: in flight is over the limit, no lower
        assert limiter.limit == 25
        await demand.finish()
        return limiter.in_flight

    assert asyncio.run(scenario()) == 0


def test_probes_back_off_while_the_ceiling_holds_and_widen_while_capacity_grows():
    async def scenario():
        limiter = AdaptiveLimiter(64, initial=8)
        demand = Demand(limiter, 100)
        await demand.settle()
        limiter.on_throttled()  # 8 in flight, one refused: ceiling 7 (a holder stands in for it)
        assert limiter.limit == limiter.ceiling == 7
        probes = []
        for _ in range(4):  # each probe refused: waits of 1, 2, 4, 8 round trips of 7 successes
            steps = 0
            while limiter.limit == 7:
                limiter.on_success()
                steps += 1
            probes.append(steps)
            limiter.on_throttled()
        assert probes == [7, 14, 28, 56] and limiter.limit == limiter.ceiling == 7
        for _ in range(16 * 7):
            limiter.on_success()
        assert limiter.limit == 8  # the wait is capped at 16 round trips
        for _ in range(8):  # a round trip at 8 without a 429: capacity grew, 8 is the ceiling
            limiter.on_success()
        assert (limiter.limit, limiter.ceiling) == (8, 8)
        for _ in range(8):  # the next probe after one round trip, twice as far
            limiter.on_success()
        assert await demand.settle() == (10, 10) and limiter.ceiling == 8
        for _ in range(10):
            limiter.on_success()
        for _ in range(10):
            limiter.on_success()
        assert await demand.settle() == (14, 14) and limiter.ceiling == 10
        limiter.on_throttled()  # refused at 14 in flight: 13 taken, and probes start from +1 again
        assert (limiter.limit, limiter.ceiling, limiter._step) == (13, 13, 1)
        await demand.finish()

    asyncio.run(scenario())


def test_no_growth_without_demand():
    async def scenario():
        limiter = AdaptiveLimiter(64)
        demand = Demand(limiter, 4)  # fewer requests than the limit
        await demand.settle()
        for _ in range(100):
            limiter.on_success()
        limit = limiter.limit
        await demand.finish()
        return limit

    assert asyncio.run(scenario()) == 16


def test_a_retry_is_let_in_before_the_requests_already_waiting():
    async def scenario():
        limiter = AdaptiveLimiter(1)
        order = []

        async def request(name, front=False):
            await limiter.acquire(front=front)
            order.append(name)
            await asyncio.sleep(0)
            limiter.release()

        await limiter.acquire()  # the one slot is taken
        waiting = [asyncio.create_task(request(f"new {i}")) for i in range(3)]
        await asyncio.sleep(0)
        retry = asyncio.create_task(request("retry", front=True))
        await asyncio.sleep(0)
        limiter.release()
        await asyncio.gather(*waiting, retry)
        return order, limiter.in_flight

    assert asyncio.run(scenario()) == (["retry", "new 0", "new 1", "new 2"], 0)


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


def ask(running: ServerThread, prompts: list[str], concurrency: int, during=None):
    """Send every prompt at once through one model, as a run's workers do; returns the
    completions, the wall time and the model (its limiter's final state)."""
    spec = parse_model_spec("openai:fake-model", base_url=running.base_url)
    model = OpenAIChatModel(spec, role="model", concurrency=concurrency, retry=RetryPolicy(base_delay_s=0.05))

    async def go():
        started = time.perf_counter()
        calls = [model.complete([{"role": "user", "content": p}], SamplingParams()) for p in prompts]
        try:
            if during is not None:
                asyncio.get_running_loop().call_later(*during)
            return await asyncio.gather(*calls), time.perf_counter() - started
        finally:
            await model.aclose()

    completions, wall = asyncio.run(go())
    return completions, wall, model


def test_an_endpoint_in_flight_cap_is_found_and_held():
    """64 workers against an endpoint that serves 8 at a time (20 ms each) and answers 429
    beyond: about as fast as a client told the cap, and few requests refused."""
    prompts = [f"question {i}" for i in range(480)]
    behaviour = FakeBehaviour(latency_s=0.02, max_in_flight=8, retry_after="0.05")
    with ServerThread(FakeOpenAIServer(behaviour)) as running:
        _, told_wall, _ = ask(running, prompts, concurrency=8)  # the best any client can do here
        assert running.server.rejected_over_cap == 0
        completions, wall, model = ask(running, [p + "?" for p in prompts], concurrency=64)
        server = running.server
    assert all(c.ok for c in completions)
    calls, rejected = sum(c.calls for c in completions), sum(c.rejected for c in completions)
    assert calls == 480 and rejected == server.rejected_over_cap  # a 429 is counted apart, never as a call
    assert rejected / (calls + rejected) < 0.05
    assert server.peak_in_flight == 8 and model.limiter.limit == 8
    # Wall time against the same client told the cap, so a busy machine slows both alike
    # (idle, the told client takes 1.2-1.3 s against an ideal 480 x 20 ms / 8 = 1.2 s).
    assert wall < 1.2 * told_wall, f"{wall:.2f}s, a client told the cap {told_wall:.2f}s"


def test_capacity_that_grows_is_found_again():
    """The endpoint goes from 6 to 12 in flight mid-run: a probe finds it and slow start climbs."""
    behaviour = FakeBehaviour(latency_s=0.02, max_in_flight=6, retry_after="0.05")
    with ServerThread(FakeOpenAIServer(behaviour)) as running:

        def grow():
            behaviour.max_in_flight = 12

        completions, _, model = ask(
            running,
            [f"question {i}" for i in range(600)],
            concurrency=64,
            during=(0.4, lambda: threading.Thread(target=grow).start()),
        )
        server = running.server
    assert all(c.ok for c in completions)
    rejected = sum(c.rejected for c in completions)
    assert rejected == server.rejected_over_cap and rejected / (600 + rejected) < 0.05
    assert server.peak_in_flight == 12 and model.limiter.limit == 12


def test_attempts_refused_with_429_are_not_calls():
    with ServerThread(FakeOpenAIServer(FakeBehaviour(retry_after="0"))) as running:
        prompts = ["a {model-429:2}", "b {model-500:1}", "c {model-429:1} {model-500:2}"]  # c: 429, then 500, then 200
        completions, _, _ = ask(running, prompts, concurrency=4)
    assert [(c.calls, c.rejected) for c in completions] == [(1, 2), (2, 0), (2, 1)]


def test_a_run_against_a_rate_limited_endpoint_answers_every_call_and_counts_429s_apart(cli, tmp_path):
    """A whole run, model and grader on one endpoint that serves 8 at a time and answers 429
    beyond: every call is answered, few attempts are refused, and ``usage`` counts the refused
    attempts (stored per response and per grade) apart from the calls."""
    rows = [
        example(f"p{i}", [(f"Criterion {j} of case {i} {{met}}", 1, ["axis:completeness"]) for j in range(5)])
        for i in range(40)
    ]
    data = write_jsonl(tmp_path / "set.jsonl", rows)
    behaviour = FakeBehaviour(latency_s=0.02, max_in_flight=8, retry_after="0.05")
    with ServerThread(FakeOpenAIServer(behaviour)) as running:
        result = cli.run(*cli.eval_args(running, data, "--concurrency", "64"), "--json")
        server = running.server
    assert result.returncode == 0, result.stderr
    summary = result.json()
    assert summary["status"] == "completed" and summary["n_failed_calls"] == 0
    usage = summary["usage"]
    assert (usage["model"]["calls"], usage["grader"]["calls"]) == (40, 200)  # one answered call each
    rejected = usage["model"]["rejected"] + usage["grader"]["rejected"]
    assert rejected == server.rejected_over_cap > 0  # the first burst overshoots 8
    assert 240 + rejected == len(server.log)  # every attempt is either a call or a rejected one
    assert rejected / (240 + rejected) < 0.1
    assert server.peak_in_flight == 8
