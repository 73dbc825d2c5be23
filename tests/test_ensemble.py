"""The deep-ensemble comparison: the mixture it scores, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras")


def test_mixture_of_gaussians_moments() -> None:
    """Equal mixture of N(0, 1) and N(2, 1): mean 1, variance 1 + 1 (law of total variance);
    checked against samples drawn from the mixture."""
    from training.ensemble import mixture

    m, s = mixture([np.zeros((3, 4)), np.full((3, 4), 2.0)], [np.ones((3, 4))] * 2)
    np.testing.assert_allclose(m, 1.0)
    np.testing.assert_allclose(s, np.sqrt(2.0))
    rng = np.random.default_rng(0)
    draws = np.where(rng.random(200_000) < 0.5, 0.0, 2.0) + rng.standard_normal(200_000)
    assert abs(draws.std() - s[0, 0]) < 0.01
    one, same = mixture([np.full(5, 0.3)], [np.full(5, 0.2)])  # one member: itself
    np.testing.assert_allclose(one, 0.3)
    np.testing.assert_allclose(same, 0.2)
    with pytest.raises(ValueError, match="means"):
        mixture([np.zeros(2)], [])


def test_needs_two_trained_runs(tmp_path) -> None:
    from training.ensemble import main

    with pytest.raises(SystemExit, match="no best.weights.h5"):
        main([str(tmp_path), str(tmp_path)])
    with pytest.raises(SystemExit, match="at least two runs"):
        from training.ensemble import evaluate_ensemble

        evaluate_ensemble([tmp_path])


def test_selection_refuses_untrained_runs(tmp_path) -> None:
    from training.selection import main

    with pytest.raises(SystemExit, match="no best.weights.h5"):
        main([str(tmp_path)])


def test_members_with_other_data_are_refused_before_loading(tmp_path) -> None:
    """Runs scored on different test arrays (here another model rate) cannot be mixed; the
    check comes before any data is prepared or weights are read (these are not weights)."""
    import dataclasses
    import json

    from training.config import TrainConfig
    from training.ensemble import main

    base = TrainConfig.load("training/configs/default.json")
    other = dataclasses.replace(base, data=dataclasses.replace(base.data, fs_hz=125.0))
    for name, cfg in (("a", base), ("b", other)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(cfg.to_dict()))
        (tmp_path / name / "best.weights.h5").write_bytes(b"not weights")
    with pytest.raises(SystemExit, match="differ from"):
        main([str(tmp_path / "a"), str(tmp_path / "b")])
