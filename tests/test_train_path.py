"""The whole workstation path on a few real records: train -> resume -> evaluate -> convert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "training" / "configs" / "tiny.json"


@pytest.mark.needs_data
def test_train_evaluate_convert_on_real_records(tmp_path: Path, data_root: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECG12_DATA", str(data_root))
    run = tmp_path / "run"
    cli = CliRunner()
    res = cli.invoke(main, ["train", str(TINY), "--out", str(run)])
    assert res.exit_code == 0, res.output
    for f in ("config.json", "best.weights.h5", "history.csv", "run.json", "calibration.json"):
        assert (run / f).is_file(), f
    info = json.loads((run / "run.json").read_text())
    assert info["epochs_run"] == 2 and len(info["split_sha256"]) == 64
    cal = json.loads((run / "calibration.json").read_text())
    assert len(cal["scale"]) == 7 and all(s > 0 for s in cal["scale"])
    assert len(cal["scale_clinical"]) == 7 and cal["scale_clinical"] != cal["scale"]

    again = cli.invoke(main, ["train", str(TINY), "--out", str(run)])  # resumes: nothing to do
    assert again.exit_code == 0, again.output
    after = json.loads((run / "run.json").read_text())
    # the training time survives a resume that had nothing to train
    assert after["epochs_run"] == 2 and after["train_seconds"] == info["train_seconds"] > 0

    res = cli.invoke(main, ["evaluate", str(run), "--quick", "--mc-samples", "4"])
    assert res.exit_code == 0, res.output
    assert "## Accuracy" in (run / "report.md").read_text()

    bundle = tmp_path / "bundle"
    res = cli.invoke(main, ["convert", str(run), "--quant", "float32", "--lstm", "fused",
                            "--out", str(bundle)])
    assert res.exit_code == 0, res.output
    import edge

    model = edge.load_bundle(bundle)
    assert model.bundle.window == 400


def test_train_rejects_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"kind": "transformer"}}))
    res = CliRunner().invoke(main, ["train", str(bad), "--out", str(tmp_path / "r")])
    assert res.exit_code != 0
    assert "model.kind 'transformer'" in str(res.exception) + res.output


def test_a_bad_config_is_one_line_before_tensorflow_starts(tmp_path: Path) -> None:
    """The config is checked before TensorFlow is imported: its start-up log lines do not
    bury the error, and the refusal is quick."""
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"kind": "transformer"}}))
    code = ("import sys\nfrom edge.cli import main\nmain(sys.argv[1:])\n")
    res = subprocess.run([sys.executable, "-c", code, "train", str(bad), "--out",
                          str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"Error: {bad}: model.kind 'transformer' is not edge/paper/unet"]


@pytest.mark.needs_data
def test_a_correlation_weighted_run_keeps_the_epoch_its_objective_prefers(
        tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a correlation term over the 11 scored leads, history.csv records val r and the
    best score is min over epochs of val MSE + w · (1 − val r) (the rule, by hand here)."""
    import csv

    monkeypatch.setenv("ECG12_DATA", str(data_root))
    raw = json.loads(TINY.read_text())
    raw["model"].update(aleatoric=True, correlation_loss=0.5, correlation_leads="all11")
    cfg = tmp_path / "corr.json"
    cfg.write_text(json.dumps(raw))
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", str(cfg), "--out", str(run)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert len(rows) == 2 and all(-1.0 <= float(r["val_r"]) <= 1.0 for r in rows)
    want = min(float(r["val_mse"]) + 0.5 * (1.0 - float(r["val_r"])) for r in rows)
    best = json.loads((run / "run.json").read_text())["best_val_loss"]
    assert best == pytest.approx(want, rel=1e-6)


class _Weights:
    """Stands in for a Keras model: ``get_weights`` returns what it was last set to."""

    def __init__(self) -> None:
        self.w: list = []

    def get_weights(self) -> list:
        return self.w


def test_the_weight_average_is_the_mean_of_the_late_epochs_and_survives_a_resume(
        tmp_path: Path) -> None:
    """Epochs before ceil(start * epochs) are left out; the rest are averaged (np.mean by
    hand); a resumed run continues the average and never counts an epoch twice."""
    import numpy as np

    from training.train import AVERAGE_FILE, WeightAverage

    rng = np.random.default_rng(0)
    per_epoch = [[rng.standard_normal((3, 2)), rng.standard_normal(4)] for _ in range(10)]
    fake, path = _Weights(), tmp_path / AVERAGE_FILE
    avg = WeightAverage(path, epochs=10, start=0.65)  # epochs 7, 8, 9 (0-based)
    for epoch in range(8):
        fake.w = per_epoch[epoch]
        avg.add(fake, epoch)
    again = WeightAverage(path, epochs=10, start=0.65)  # a resumed run
    again.load()
    for epoch in (7, 8, 9):  # epoch 7 is in the file already: not counted twice
        fake.w = per_epoch[epoch]
        again.add(fake, epoch)
    assert again.n == 3 and again.first == 7
    for j in range(2):
        want = np.mean([per_epoch[e][j] for e in (7, 8, 9)], axis=0)
        np.testing.assert_allclose(again.weights[j], want, rtol=1e-12)
    off = WeightAverage(tmp_path / "off.npz", epochs=10, start=0.0)
    off.add(fake, 9)
    assert off.weights is None and not (tmp_path / "off.npz").exists()


@pytest.mark.needs_data
def test_a_weight_averaged_run_keeps_the_average_only_when_it_scores_better(
        tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The average of the late epochs is scored by the same rule as every epoch; the best
    score is the better of the two, and the running average's file is gone afterwards."""
    import csv

    monkeypatch.setenv("ECG12_DATA", str(data_root))
    raw = json.loads(TINY.read_text())
    raw.update(epochs=3, patience=3, weight_average_from=0.3)  # averages epochs 2 and 3
    cfg = tmp_path / "swa.json"
    cfg.write_text(json.dumps(raw))
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", str(cfg), "--out", str(run)])
    assert res.exit_code == 0, res.output
    info = json.loads((run / "run.json").read_text())
    wa = info["weight_average"]
    assert wa["epochs_averaged"] == 2 and wa["from_epoch"] == 2
    best_epoch = min(float(r["val_mse"]) for r in csv.DictReader((run / "history.csv").open()))
    assert wa["best_epoch_val_score"] == pytest.approx(best_epoch, rel=1e-6)
    assert info["best_val_loss"] == pytest.approx(min(best_epoch, wa["val_score"]), rel=1e-6)
    assert wa["adopted"] == (wa["val_score"] < best_epoch)
    assert not (run / "average.weights.npz").exists()


@pytest.mark.parametrize("value", ["1000000000", "0"])
def test_convert_refuses_mc_samples_out_of_range_before_converting(tmp_path: Path,
                                                                    value: str) -> None:
    """T beyond what a gateway window can run (or 0) is refused up front, not written into a
    bundle that then runs out of memory on its first window."""
    out = tmp_path / "bundle"
    res = CliRunner().invoke(main, ["convert", str(tmp_path), "--mc-samples", value,
                                    "--out", str(out)])
    assert res.exit_code == 2 and "--mc-samples" in res.output and value in res.output
    assert "1<=x<=10000" in res.output and not out.exists()
