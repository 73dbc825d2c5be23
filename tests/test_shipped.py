"""The shipped default bundle: valid, loads and reconstructs with TensorFlow impossible."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import edge
from edge.manifest import load_manifest

BUNDLE = Path(edge.__file__).parent / "bundles" / "default"


def test_shipped_bundle_manifest_is_valid_and_small() -> None:
    man = load_manifest(BUNDLE)  # checks schema, shapes and file hashes
    assert man.model.fs_hz == 100 and man.mc.default_samples == 30
    assert man.provenance.get("run") == "training/runs/default"
    assert all(p.stat().st_size < 5_000_000 for p in BUNDLE.iterdir())


def test_shipped_bundle_runs_without_tensorflow() -> None:
    code = textwrap.dedent("""
        import sys
        for name in ("tensorflow", "keras", "tf_keras", "training", "converters"):
            sys.modules[name] = None  # any import of these now raises ImportError
        import json
        import numpy as np
        import edge
        from firmware_bridge.synth import synthetic_ecg
        x = synthetic_ecg(20, 130, seed=3)
        out = edge.load_bundle().reconstruct(x, fs=130, metadata={"age": 50, "sex": "M"},
                                             mc_samples=10, seed=1)
        print(json.dumps({"shape": list(out.leads.shape), "finite": bool(np.isfinite(
            out.leads).all()), "std_pos": bool((out.std[:, 1:] > 0).all()),
            "tf": "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None}))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got == {"shape": [2600, 12], "finite": True, "std_pos": True, "tf": False}


def test_shipped_bundle_same_seed_same_output() -> None:
    from firmware_bridge.synth import synthetic_ecg

    model = edge.load_bundle()
    x = synthetic_ecg(12, 250, seed=4)
    a = model.reconstruct(x, fs=250, mc_samples=8, seed=7)
    b = model.reconstruct(x, fs=250, mc_samples=8, seed=7)
    np.testing.assert_array_equal(a.leads, b.leads)
    np.testing.assert_array_equal(a.std, b.std)


def test_edge_path_evaluation_runs_on_real_records(data_root: Path) -> None:
    from training.evaluate_edge import evaluate_edge

    res = evaluate_edge(limit=12, mc_samples=2, progress=False)
    assert res["records"] == 12
    # against the recording itself (scipy zero-phase band-pass): Lead I is the input, on time
    assert res["lead_i_r"] >= 0.99
    assert res["lead_i_lag_samples"]["max_abs"] <= 1
    assert res["r_mean_11"] > 0.55
    assert 0.5 <= res["coverage_90"] <= 1.0


def test_edge_path_with_a_clinical_profile_uses_it(data_root: Path) -> None:
    """The profile's clinical fields (as `ecg12 enroll` measures them) reach the model and
    change the product's output: the same records, with and without them."""
    from training.evaluate_edge import clinical_profile, evaluate_edge

    plain = evaluate_edge(limit=6, mc_samples=2, progress=False)
    clin = evaluate_edge(limit=6, mc_samples=2, progress=False, profile="clinical")
    assert clin["profile"].startswith("clinical") and plain["profile"].startswith("none")
    assert clin["r_mean_11"] != plain["r_mean_11"]
    assert clin["lead_i_r"] >= 0.99  # Lead I is the input either way
    assert clinical_profile(np.zeros((5000, 12)), 500.0) == {}  # nothing measurable


def test_wearable_profile_takes_age_and_sex_from_the_record() -> None:
    """A wearer's profile holds age and sex (header values, absent or implausible ones left
    out); the clinical one adds the axes; Lead I only gives nothing."""
    from training.data.record import MISSING, Recording
    from training.evaluate_edge import profile_for, wearable_profile

    assert wearable_profile({"age": 54.0, "sex": "F", "r_axis": 30.0}) == {"age": 54.0,
                                                                          "sex": "F"}
    assert wearable_profile({"age": MISSING, "sex": "M"}) == {"sex": "M"}
    assert wearable_profile({"age": 300.0, "sex": MISSING}) == {}  # PTB-XL's old ">89" code
    rec = Recording(np.zeros((5000, 12)), 500.0, "r1", "p1", "test", {"age": 61.0, "sex": "M"})
    assert profile_for(rec, "lead_i") is None
    assert profile_for(rec, "wearable") == {"age": 61.0, "sex": "M"}
    assert profile_for(rec, "clinical") == {"age": 61.0, "sex": "M"}  # flat: no axes


def test_shipped_bundle_hop_and_flag_are_those_of_its_run() -> None:
    """The window flag's threshold is fitted on the windows of one hop: a bundle whose hop
    differs from its run's config, or whose flag is not the run's calibration, is stale."""
    man = json.loads((BUNDLE / "manifest.json").read_text())
    run = Path(__file__).parents[1] / man["provenance"]["run"]
    cfg = json.loads((run / "config.json").read_text())
    cal = json.loads((run / "calibration.json").read_text())
    assert man["model"]["hop"] == round(cfg["data"]["hop_s"] * cfg["data"]["fs_hz"])
    a_man, a_cal = man["uncertainty"]["atypicality"], cal["atypicality"]
    for key in ("weight", "threshold", "er_ref", "score_ref"):
        assert a_man[key] == a_cal[key], key
    for key in ("scale", "scale_clinical"):  # the run's calibration, both regimes
        assert man["uncertainty"]["calibration"][key] == cal[key], key
    assert "gateway windows of" in a_cal["fitted_on"]


def test_edge_path_scores_the_split_it_is_asked_for(data_root: Path) -> None:
    from training.data.splits import load_splits
    from training.evaluate_edge import evaluate_edge

    splits = load_splits()
    res = evaluate_edge(limit=3, mc_samples=2, progress=False, split="val")
    assert res["records"] == 3 and res["split"] == "val"
    assert [splits[k] for k in res["record_keys"]] == ["val"] * 3
    res = evaluate_edge(limit=2, mc_samples=2, progress=False, split="all", corpus="ludb")
    assert set(res["r_per_corpus"]) == {"ludb"} and res["records"] == 2
