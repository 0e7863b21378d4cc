"""Usage plan limits (the token bucket behind rate and burst, the daily request quota), and a
function's reserved concurrency.

API Gateway throttles each API key of a usage plan with a token bucket: the bucket holds at most
``burst`` tokens, refills at ``rate`` tokens a second and every request takes one; an empty bucket
is a 429. The quota counts requests per key per UTC day. A few lines of arithmetic, written here
because the rate-limiting libraries on PyPI either sleep instead of refusing or need Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Thread-safe token bucket; starts full. ``clock`` is injectable for tests."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        """Take one token if there is one; False means the request is throttled."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class DailyQuota:
    """At most ``limit`` requests per UTC day; ``clock`` returns epoch seconds."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = int(limit)
        self._clock = clock
        self._day = -1
        self._used = 0
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            day = int(self._clock() // 86_400)
            if day != self._day:
                self._day, self._used = day, 0
            if self._used >= self.limit:
                return False
            self._used += 1
            return True


class UsagePlan:
    """One usage plan's limits, kept per API and key (each router stack has its own API)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        quota_per_day: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._rate, self._burst, self._quota = rate, burst, quota_per_day
        self._clock, self._wall_clock = clock, wall_clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._quotas: dict[tuple[str, str], DailyQuota] = {}
        self._lock = threading.Lock()

    def admit(self, api: str, key: str) -> str | None:
        """None when the request may go on, else ``"throttled"`` or ``"quota"``."""
        with self._lock:
            bucket = self._buckets.get((api, key))
            if bucket is None:
                bucket = self._buckets[(api, key)] = TokenBucket(
                    self._rate, self._burst, self._clock
                )
            quota = self._quotas.get((api, key))
            if quota is None and self._quota is not None:
                quota = self._quotas[(api, key)] = DailyQuota(self._quota, self._wall_clock)
        if not bucket.try_take():
            return "throttled"
        if quota is not None and not quota.try_take():
            return "quota"
        return None


class ReservedConcurrency:
    """At most ``limit`` executions of one function at a time (None: no reservation).

    Lambda refuses an invocation beyond the function's reserved concurrency at once (the Invoke
    API's ``TooManyRequestsException``); it does not queue it. The local API holds a slot from
    the invocation's start to the handler's return, even after the gateway stopped waiting.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._running = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self.limit is not None and self._running >= self.limit:
                return False
            self._running += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._running -= 1
