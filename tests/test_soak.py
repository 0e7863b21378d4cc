"""scripts/soak.py's verdict: RSS is flat when it stays within the tolerance after the warm-up.
(The soak itself runs for a minute with 50 clients, too long and machine-dependent for the suite;
the README reports a run.)"""

from __future__ import annotations

import os

import pytest
from soak import assess, percentile, rss_mib

pytestmark = pytest.mark.generic  # holds for any valid routes file


def test_growth_is_measured_from_the_end_of_the_warm_up() -> None:
    samples = [(0.0, 100.0), (5.0, 180.0), (10.0, 200.0), (20.0, 215.0), (30.0, 205.0)]
    verdict = assess(samples, warmup=10, tolerance=0.10)
    assert (verdict.baseline_mib, verdict.peak_mib, verdict.last_mib) == (200.0, 215.0, 205.0)
    assert verdict.growth == pytest.approx(0.075)
    assert verdict.flat


def test_growth_beyond_the_tolerance_is_not_flat() -> None:
    verdict = assess([(0.0, 100.0), (10.0, 200.0), (60.0, 230.0)], warmup=10, tolerance=0.10)
    assert verdict.growth == pytest.approx(0.15)
    assert not verdict.flat


def test_no_sample_after_the_warm_up_is_an_error() -> None:
    with pytest.raises(ValueError, match="warm-up"):
        assess([(0.0, 100.0)], warmup=10, tolerance=0.1)


def test_percentile_and_rss() -> None:
    assert percentile([float(n) for n in range(1, 101)], 50) == pytest.approx(50.5)
    assert percentile([1.0], 99) == 0
    if os.path.exists("/proc/self/status"):
        assert rss_mib(os.getpid()) > 1
