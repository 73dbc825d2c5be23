"""The ecg12 command line on a gateway (base) install: workstation commands say what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_without_tensorflow(*args: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import sys
        for name in ("tensorflow", "keras", "tf_keras"):
            sys.modules[name] = None
        from edge.cli import main
        main({list(args)!r})
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_train_without_the_train_extra_names_the_fix() -> None:
    res = run_without_tensorflow("train", "training/configs/tiny.json", "--out", "/tmp/never")
    assert res.returncode == 1
    assert "'ecg12 train' needs" in res.stderr and "Traceback" not in res.stderr
    assert "pip install -e '.[train]'" in res.stderr  # from the checkout, not a registry
    assert len(res.stderr.strip().splitlines()) == 1


def test_help_lists_all_commands_without_tensorflow() -> None:
    res = run_without_tensorflow("--help")
    assert res.returncode == 0, res.stderr
    for name in ("stream", "reconstruct", "demo", "bench", "train", "calibrate", "evaluate",
                 "convert", "data", "device"):
        assert f"  {name} " in res.stdout


@pytest.mark.parametrize(("field", "value", "named"), [
    ("lr_schedule", "step", "lr_schedule 'step'"),
    ("model", {"head_layers": 0}, "model.head_layers 0"),
    ("weight_average_from", 1.0, "weight_average_from 1.0"),
    ("data", {"window_features": "yes"}, "data.window_features 'yes' must be true/false"),
    ("model", {"aleatoric": 1}, "model.aleatoric 1 must be true/false"),
    ("epochs", 1.5, "epochs 1.5 must be a whole number"),
    ("learning_rate", "fast", "learning_rate 'fast' must be a finite number"),
])
def test_train_config_with_a_bad_new_field_is_one_line(tmp_path, field, value, named) -> None:
    import json

    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"name": "bad", field: value}))
    res = subprocess.run([sys.executable, "-m", "edge.cli", "train", str(cfg), "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert str(cfg) in last and named in last, res.stderr


def test_calibrate_a_folder_that_is_not_a_trained_run_is_one_line(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text((REPO / "training/configs/tiny.json").read_text())
    res = subprocess.run([sys.executable, "-m", "edge.cli", "calibrate", str(run)],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (f"Error: {run}: no best.weights.h5 (not a "
                                                   "trained run folder)")


def test_calibrate_refuses_a_hop_longer_than_the_window(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    cfg_text = (REPO / "training/configs/tiny.json").read_text()
    (run / "config.json").write_text(cfg_text)
    (run / "best.weights.h5").write_bytes(b"")
    res = subprocess.run([sys.executable, "-m", "edge.cli", "calibrate", str(run),
                          "--hop-s", "9"], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert "data.hop_s 9 must give 1 to" in last, res.stderr
    assert (run / "config.json").read_text() == cfg_text  # nothing written


def test_the_gateway_hop_is_checked_and_leaves_the_training_hash_alone() -> None:
    from training.config import ConfigError, TrainConfig

    base = TrainConfig.load(REPO / "training/runs/default/config.json")
    raw = base.to_dict()
    for hop_s, hop in ((0.25, 25), (2.0, 200), (8.0, 800), (0.01, 1), (0.123, 12)):
        raw["data"]["hop_s"] = hop_s
        cfg = TrainConfig.from_dict(raw)
        assert cfg.hop == hop and cfg.sha256() == base.sha256()  # weights do not depend on it
    for bad in (0.0, 0.004, 8.01, -1.0, float("inf")):
        raw["data"]["hop_s"] = bad
        with pytest.raises(ConfigError, match="data.hop_s"):
            TrainConfig.from_dict(raw, "cfg.json")
    raw["data"]["hop_s"] = 2.0
    raw["data"]["window_s"] = 4.0  # a training setting still changes the hash
    assert TrainConfig.from_dict(raw).sha256() != base.sha256()


@pytest.mark.parametrize(("path", "value", "named"), [
    (("epochs",), -1, "epochs -1 must be >= 1"), (("epochs",), 0, "epochs 0 must be >= 1"),
    (("batch_size",), 0, "batch_size 0 must be >= 1"),
    (("learning_rate",), 0.0, "learning_rate 0.0 must be > 0"),
    (("regime",), "bogus", "regime 'bogus' is not 'mixed'"),
    (("data", "limit_per_source"), 0, "data.limit_per_source 0 must be >= 1"),
    (("data", "window_s"), 0.0, "data.window_s 0.0 must be > 0"),
])
def test_training_config_values_are_checked_before_training(path, value, named) -> None:
    """A value training cannot use is named when the config is read (it used to surface
    later as ZeroDivisionError, KeyError or a missing weights file)."""
    from training.config import ConfigError, TrainConfig

    raw = TrainConfig.load(REPO / "training/runs/default/config.json").to_dict()
    (raw if len(path) == 1 else raw[path[0]])[path[-1]] = value
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        TrainConfig.from_dict(raw, "cfg.json")


@pytest.mark.parametrize(("module", "argv", "named"), [
    ("training.evaluate_edge", ["--split", "val"], "--split val needs --out"),
    ("training.hop_sweep", ["--hops", "25,x"], "--hops '25,x': not comma-separated"),
    ("training.hop_sweep", ["--hops", "0"], "each hop must be >= 1 sample"),
])
def test_scoring_tools_refuse_bad_arguments_in_one_line(module, argv, named) -> None:
    res = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True,
                         text=True, cwd=REPO, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert named in res.stderr.strip().splitlines()[-1], res.stderr


def test_loco_edge_names_a_held_out_run_that_was_never_calibrated(tmp_path) -> None:
    (tmp_path / "ludb").mkdir()
    res = subprocess.run([sys.executable, "-m", "training.loco_edge", "--out", str(tmp_path),
                          "--corpus", "ludb"], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (f"{tmp_path / 'ludb'}: no calibration.json "
                                                   "(run python -m training.loco first)")


@pytest.mark.parametrize(("argv", "named"), [
    (["--report", "x.md"], "--report: only with --compare"),
    (["--records", "5"], "--records: only with --compare"),
    (["--compare", "--out", "b"], "--out: not with --compare"),
    (["--compare", "--quant", "int8"], "--quant: not with --compare"),
])
def test_convert_refuses_options_it_would_ignore(argv: list[str], named: str) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    run = str(REPO / "training" / "runs" / "default")
    res = CliRunner().invoke(main, ["convert", run, *argv])
    assert res.exit_code == 2 and named in res.output
