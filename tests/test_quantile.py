"""edge.quantile equals numpy's percentile and median bit for bit (numpy is the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.quantile import percentile


@pytest.mark.parametrize("q", [0, 1, 50, 90, 99, 99.9, 100])
def test_equals_numpy_bit_for_bit(q: float) -> None:
    rng = np.random.default_rng(int(q * 10))
    for i in range(2000):
        n = int(rng.integers(1, 900))
        x = rng.normal(size=n) * rng.choice([1e-3, 1.0, 1e3])
        if i % 5 == 0:
            x = np.round(x, 1)  # ties
        assert percentile(x, q) == float(np.percentile(x, q)), (n, q)


def test_median_equals_numpy_bit_for_bit() -> None:
    from edge.quantile import median

    rng = np.random.default_rng(7)
    for i in range(3000):
        n = int(rng.integers(1, 900))
        x = np.abs(rng.normal(size=n)) * rng.choice([1e-3, 1.0, 1e3])
        if i % 5 == 0:
            x = np.round(x, 1)  # ties
        assert median(x) == float(np.median(x)), n
    assert median(np.array([1.0, 2.0])) == 1.5 and median(np.array([3.0, 1.0, 2.0])) == 2.0


def test_percentiles_equal_numpy_bit_for_bit() -> None:
    """One partition for several percentiles gives numpy's values (of the input in float64:
    float32 input is interpolated in float64, as ``sorted_percentile`` does)."""
    from edge.quantile import percentiles

    rng = np.random.default_rng(11)
    for i in range(3000):
        n = int(rng.integers(1, 900))
        x = rng.normal(size=n) * rng.choice([1e-3, 1.0, 1e3])
        if i % 5 == 0:
            x = np.round(x, 1)  # ties
        if i % 3 == 0:
            x = x.astype(np.float32)
        qs = (1, 99) if i % 2 else (0, 37.5, 50, 100)
        want = [float(np.percentile(x.astype(np.float64), q)) for q in qs]
        assert percentiles(x, *qs) == want, (n, qs)
