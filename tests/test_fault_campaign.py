"""The fault campaign's short mode (the full one: python -m firmware_bridge.campaign)."""

from __future__ import annotations

import pytest

from firmware_bridge.campaign import run


@pytest.fixture(scope="module")
def results() -> dict:
    return run(2000, 10, seed=1)


def test_ecg12_delivers_no_corrupt_or_shifted_sample(results: dict) -> None:
    r = results["ecg12"]
    assert r["damaged"] > 1900 and r["delivered"] > 0
    assert (r["wrong"], r["shifted"], r["unaccounted"]) == (0, 0, 0)
    assert r["counters"]["duplicates"] > 0 and r["gap_samples"] > 0


def test_link_drops_are_gaps_at_device_time(results: dict) -> None:
    r = results["polar-link"]
    assert r["damaged"] >= 10 and (r["wrong"], r["shifted"], r["unaccounted"]) == (0, 0, 0)
    assert r["gap_samples"] == r["damaged"] * r["counters"]["expected_gap_samples"]


def test_acceptance_rates_are_measured(results: dict) -> None:
    polar, ascii_ = results["polar"], results["ascii"]
    assert polar["altering"] > 500 and ascii_["altering"] > 500
    assert polar["accept_rate"] < 0.12  # 60 % without the plausibility checks (issue 13: 63 %)
    assert 0 < ascii_["accept_rate"] < 1
    assert polar["unaccounted"] == 0
