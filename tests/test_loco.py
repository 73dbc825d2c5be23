"""Leave-one-corpus-out helpers: the flag rule and catch rates, by hand."""

from __future__ import annotations

import numpy as np

from training.evaluate_edge import catch_rates
from training.loco import flag_records


def test_flag_records_needs_a_long_enough_run() -> None:
    std = np.zeros((3, 100, 2))
    std[0, 10:29, 0] = 2.0  # 19 samples above: too short for min_n = 20
    std[1, 50:70, 1] = 2.0  # 20 samples: flagged
    std[2, 0:15, 0] = 2.0
    std[2, 16:31, 0] = 2.0  # two runs of 15 with a hole: not one run of 20
    got = flag_records(std, np.array([1.0, 1.0]), 20)
    assert got.tolist() == [False, True, False]


def test_catch_rates_by_hand() -> None:
    r = np.array([0.2, 0.4, 0.45, 0.6, 0.85, 0.9, 0.95, 0.99])
    flagged = np.array([True, True, False, True, True, False, False, False])
    res = catch_rates(r, flagged)
    assert res["catch_rate"] == 2 / 3 and res["records_r_below_0_5"] == 3
    assert res["false_flag_rate"] == 1 / 4 and res["records_r_above_0_8"] == 4
