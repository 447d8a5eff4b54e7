"""Bounded, self-adjusting concurrency for one endpoint.

An endpoint that takes C requests at once answers 429 to the next one. The limiter finds C and
stays there, spending few rejected requests to do so:

* **Slow start.** Begin at ``initial`` requests in flight (at most the configured maximum) and
  add one per success, so the limit doubles every round trip, until the first 429.
* **A 429 marks the ceiling.** The rejected request was one too many, so the limit becomes the
  number in flight less that one; a burst of k rejections lowers it by k. That value is the
  *ceiling*, and the limit holds there.
* **Probing.** After ``wait`` round trips at the ceiling (a round trip is ``limit`` successes),
  one more request is let in. If it is refused, the ceiling stands and the wait before the
  next probe doubles (1, 2, 4 ... 16 round trips), so a fixed endpoint costs fewer and fewer
  rejections. If a whole round trip passes without a 429, capacity has grown: that limit is
  the new ceiling, and the next probe comes after one round trip and goes twice as far (2, 4,
  8 ... above it) until one is refused. Slow start is not resumed: a probe can pass by chance
  (the client counts a request in flight until it has read the answer, the server only until
  it sent it), and doubling from there would cost a burst of rejections.
* **Growth needs demand.** Only successes while other requests wait for a slot count, so the
  limit never rises past what was actually used. Raising it lets in at most one waiting
  request per success, never a whole queue at once.

``Retry-After`` is the caller's: the rejected request sleeps it out outside the limiter, its
slot going to the next waiting request, and then asks again with ``acquire(front=True)``, so it
is the next to be let in rather than the last (a late retry would hold up its whole job).

The limit belongs to the endpoint, not to a model: ``shared_limiter`` gives every model that
sends to one endpoint the same limiter, so a model and a grader on one server share what it
takes, and a ceiling one of them found holds for both.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Hashable

from medops.models.base import StopRequested

INITIAL_LIMIT = 16
MAX_PROBE_WAIT = 16  # round trips


class AdaptiveLimiter:
    def __init__(self, max_concurrency: int, initial: int = INITIAL_LIMIT):
        if max_concurrency < 1 or initial < 1:
            raise ValueError("max_concurrency and initial must be at least 1")
        self.max_concurrency = max_concurrency
        self.limit = min(initial, max_concurrency)
        self.ceiling: int | None = None  # None: slow start (no 429 yet, or capacity grew past it)
        self.in_flight = 0
        self.throttles = 0  # 429s seen
        self._wait = 1  # round trips at the ceiling before the next probe
        self._step = 1  # how far above the ceiling the next probe goes
        self._successes = 0  # successes under demand since the limit last changed
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    def close(self) -> None:
        """Refuse every waiting and future acquirer; holders keep their slots until they exit."""
        self.closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(StopRequested())

    async def acquire(self, front: bool = False) -> None:
        """Take a slot, waiting for one in order; ``front``: before every request now waiting."""
        if self.closed:
            raise StopRequested()
        if self.in_flight < self.limit and (front or not self._waiters):
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        if front:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            await waiter  # the releaser hands its slot over: in_flight already counts us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # we were given a slot we will not use
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def on_throttled(self) -> None:
        """A 429 for a request that still holds its slot."""
        self.throttles += 1
        probing = self.ceiling is not None and self.limit > self.ceiling
        self.limit = max(1, min(self.limit, self.in_flight - 1))
        self.ceiling = self.limit
        self._step = 1
        if probing:  # the probe was refused: the ceiling stands, probe less often
            self._wait = min(2 * self._wait, MAX_PROBE_WAIT)
        self._successes = 0

    def on_success(self) -> None:
        """A 2xx for a request that still holds its slot."""
        if not self._waiters:
            return  # no demand beyond the limit: this success says nothing about a higher one
        if self.ceiling is None:  # slow start
            if self.limit < self.max_concurrency:
                self.limit += 1
                self._wake()
            return
        self._successes += 1
        if self.limit > self.ceiling:  # probing
            if self._successes >= self.limit:  # a round trip above the ceiling without a 429
                self.ceiling = self.limit  # capacity grew: probe again soon, twice as far
                self._wait = 1
                self._step *= 2
                self._successes = 0
        elif self._successes >= self._wait * self.limit and self.limit < self.max_concurrency:
            self.limit = min(self.ceiling + self._step, self.max_concurrency)
            self._successes = 0
            self._wake()


_SHARED: weakref.WeakValueDictionary[tuple[Hashable, int], AdaptiveLimiter] = weakref.WeakValueDictionary()


def shared_limiter(endpoint: Hashable, max_concurrency: int) -> AdaptiveLimiter:
    """The limiter of ``endpoint`` for as long as some model holds it; a closed one (its run
    stopped) is replaced by a fresh one."""
    key = (endpoint, max_concurrency)
    limiter = _SHARED.get(key)
    if limiter is None or limiter.closed:
        limiter = _SHARED[key] = AdaptiveLimiter(max_concurrency)
    return limiter
