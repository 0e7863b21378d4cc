"""Circuit breakers per model target, per warm function instance.

After ``failure_threshold`` failures within ``window_seconds`` a target's breaker opens: requests
skip that target (no call, no wait) and go straight to the next one. After ``cooldown_seconds`` one
trial call goes through (half-open); its success closes the breaker, its failure opens it again for
another cooldown. Only failures worth failing over for count (throttling, 5xx, timeouts): a request
Bedrock rejects as invalid says nothing about the target's health.

Written by hand (about 80 lines) rather than taken from pybreaker or circuitbreaker: those count
consecutive failures with no time window, decorate functions rather than name targets, and would
add a dependency to the Lambda layer; the router needs a per-model, time-windowed, thread-safe
breaker that can say *when* a skipped target will be tried again, for the 503's Retry-After.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import field

from ..config.settings import BreakerSettings
from ..records import record

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@record
class _TargetState:
    failures: deque[float] = field(default_factory=deque)
    state: str = CLOSED
    opened_at: float = 0.0
    trial_in_flight: bool = False


class BreakerBoard:
    """The breakers of every target this instance has called, keyed by model id."""

    def __init__(
        self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._targets: dict[str, _TargetState] = {}

    def allow(self, target: str) -> bool:
        """May a call go to ``target`` now? A half-open breaker admits one trial call at a time."""
        with self._lock:
            entry = self._targets.get(target)
            if entry is None or entry.state == CLOSED:
                return True
            if entry.state == OPEN:
                if self._clock() - entry.opened_at < self.settings.cooldown_seconds:
                    return False
                entry.state = HALF_OPEN
            if entry.trial_in_flight:
                return False
            entry.trial_in_flight = True
            return True

    def record_success(self, target: str) -> None:
        with self._lock:
            entry = self._targets.get(target)
            if entry is not None:
                entry.state, entry.trial_in_flight = CLOSED, False
                entry.failures.clear()

    def record_failure(self, target: str) -> bool:
        """Count a failure; True when this failure opened the breaker."""
        now = self._clock()
        with self._lock:
            entry = self._targets.setdefault(target, _TargetState())
            if entry.state == HALF_OPEN:
                entry.state, entry.opened_at, entry.trial_in_flight = OPEN, now, False
                return True
            entry.failures.append(now)
            while entry.failures and now - entry.failures[0] > self.settings.window_seconds:
                entry.failures.popleft()
            if entry.state == CLOSED and len(entry.failures) >= self.settings.failure_threshold:
                entry.state, entry.opened_at = OPEN, now
                entry.failures.clear()
                return True
            return False

    def state(self, target: str) -> str:
        with self._lock:
            entry = self._targets.get(target)
            return entry.state if entry else CLOSED

    def seconds_until_retry(self, target: str) -> float:
        """How long until an open breaker admits its trial call (0 when it admits calls now)."""
        with self._lock:
            entry = self._targets.get(target)
            if entry is None or entry.state != OPEN:
                return 0.0
            return max(0.0, self.settings.cooldown_seconds - (self._clock() - entry.opened_at))
