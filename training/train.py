"""Training: config in, run folder out (config, split hash, history, best weights, calibration).

Readable top to bottom: prepare data -> build model -> epoch loop with fresh augmentation,
validation, checkpointing and early stopping -> best weights -> MC calibration on validation.
Resumable: the run folder keeps the last weights and the loop state after every epoch.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from training.config import ConfigError, TrainConfig
from training.data.splits import split_hash
from training.dataset import (
    Prepared,
    eval_arrays,
    fit_target,
    prepare_corpora,
    training_batch_arrays,
)
from training.model import build_model

console = Console(stderr=True)
CALIBRATION_T = 30
FIDELITY_BUDGET = 0.10  # share of good validation windows (r > 0.8) the fidelity flag may hit


class _BatchProgress(keras.callbacks.Callback):
    def __init__(self, bar: Progress, task: Any) -> None:
        super().__init__()
        self.bar, self.task = bar, task

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss", float("nan"))
        self.bar.update(self.task, advance=1, loss=f"{loss:.4f}")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def mean_pearson(target: np.ndarray, pred: np.ndarray) -> float:
    """Mean Pearson r over windows and leads (flat windows count as 0)."""
    from training.metrics import pearson_per_record

    return float(np.nan_to_num(pearson_per_record(target, pred), nan=0.0).mean())


def selection_loss(val_mse: float, val_r: float | None, correlation_weight: float) -> float:
    """What best weights and early stopping go by: validation MSE of the mean, plus
    ``w · (1 − r)`` when the loss has a correlation term of weight ``w`` (the same objective
    the mean is trained on; MSE alone picks an early epoch of such a run)."""
    if correlation_weight <= 0:
        return val_mse
    if val_r is None:
        raise ValueError("a correlation-weighted selection needs the validation r")
    return val_mse + correlation_weight * (1.0 - val_r)


def _validation_scores(cfg: TrainConfig, model: keras.Model, val: Any, val_y: np.ndarray
                       ) -> tuple[float, float, float | None]:
    """Validation loss, MSE of the mean and (for a correlation-weighted run) mean r, from
    one forward pass: r over the predicted leads, or over the 11 scored ones ("all11")."""
    if cfg.model.correlation_loss <= 0:
        scores = model.evaluate([val.lead_i, val.meta], val_y, batch_size=128, verbose=0,
                                return_dict=True)
        return float(scores["loss"]), float(scores.get("mse", scores["loss"])), None
    from training.mc import n_model_outputs, to_12_lead

    full = np.asarray(model.predict([val.lead_i, val.meta], batch_size=128, verbose=0))
    pred = full[..., :n_model_outputs(model)]
    total = float(np.mean(np.asarray(model.loss(val_y, full))))
    mse = float(np.mean(np.square(val.target - pred)))
    if cfg.model.correlation_leads == "all11":
        leads12 = to_12_lead(val.lead_i, pred, cfg.model.outputs)[0]
        return total, mse, mean_pearson(val.leads12[..., 1:], leads12[..., 1:])
    return total, mse, mean_pearson(val.target, pred)


def train(cfg: TrainConfig, out_dir: Path, resume: bool = True, progress: bool = True,
          data: dict[str, list[Prepared]] | None = None) -> Path:
    """Train `cfg` into `out_dir`; returns the run folder."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_file = out_dir / "config.json"
    if cfg_file.exists() and resume:
        old = TrainConfig.load(cfg_file)
        if old.sha256() != cfg.sha256():
            raise ConfigError(f"{out_dir} holds a run of a different config; use another "
                              "--out or --no-resume")
    cfg.save(cfg_file)
    keras.utils.set_random_seed(cfg.seed)
    t_start = time.perf_counter()

    data = data or prepare_corpora(cfg, progress=progress)
    train_set, val_set = data["train"], data["val"]
    if not train_set or not val_set:
        raise ValueError(f"empty split: {len(train_set)} train / {len(val_set)} val records")
    val = eval_arrays(cfg, val_set, "wearable")
    console.print(f"[bold]{cfg.name}[/]: {len(train_set)} train / {len(val_set)} val records, "
                  f"window {cfg.window} samples at {cfg.data.fs_hz:g} Hz, kind={cfg.model.kind}")

    model = build_model(cfg)
    state_file = out_dir / "state.json"
    state = {"epoch": 0, "best_val": float("inf"), "wait": 0, "history": []}
    if resume and state_file.exists() and (out_dir / "last.weights.h5").exists():
        state = json.loads(state_file.read_text())
        model.load_weights(out_dir / "last.weights.h5")
        console.print(f"resuming at epoch {state['epoch']} (best val {state['best_val']:.5f})")

    val_y = fit_target(cfg, val.target, val.leads12[..., 0])
    average = WeightAverage(out_dir / AVERAGE_FILE, cfg.epochs, cfg.weight_average_from)
    if state["epoch"]:  # resumed: continue the average
        average.load()
    else:  # a fresh run: no stale average from an earlier one
        average.path.unlink(missing_ok=True)
    steps = int(np.ceil(len(train_set) / cfg.batch_size))
    cols = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn()]
    with Progress(*cols, console=console, disable=not progress) as bar:
        epochs_task = bar.add_task("epochs", total=cfg.epochs, completed=state["epoch"], loss="-")
        while state["epoch"] < cfg.epochs and state["wait"] < cfg.patience:
            epoch = state["epoch"]
            t_epoch = time.perf_counter()
            rng = np.random.default_rng([cfg.seed, epoch])
            x, m, y = training_batch_arrays(cfg, train_set, rng)
            model.optimizer.learning_rate.assign(cfg.learning_rate_at(epoch))
            batch_task = bar.add_task(f"epoch {epoch + 1}", total=steps, loss="-")
            hist = model.fit([x, m], y, batch_size=cfg.batch_size, epochs=1, verbose=0,
                             shuffle=True, callbacks=[_BatchProgress(bar, batch_task)])
            bar.remove_task(batch_task)
            average.add(model, epoch)
            # early stopping / best weights on the accuracy of the mean (MSE, plus the
            # correlation term when the loss has one); for a heteroscedastic model the NLL
            # keeps improving by sharpening the variance
            val_total, val_mse, val_r = _validation_scores(cfg, model, val, val_y)
            val_loss = selection_loss(val_mse, val_r, cfg.model.correlation_loss)
            train_loss = float(hist.history["loss"][-1])
            state["history"].append({"epoch": epoch + 1, "loss": train_loss,
                                     "val_loss": val_total,
                                     "val_mse": val_mse,
                                     **({"val_r": val_r} if val_r is not None else {})})
            if val_loss < state["best_val"]:
                state["best_val"], state["wait"] = val_loss, 0
                model.save_weights(out_dir / "best.weights.h5")
            else:
                state["wait"] += 1
            state["epoch"] = epoch + 1
            # training time over every call (a resumed run adds to it; a finished one keeps it)
            state["seconds"] = state.get("seconds", 0.0) + time.perf_counter() - t_epoch
            model.save_weights(out_dir / "last.weights.h5")
            _write_json(state_file, state)
            bar.update(epochs_task, advance=1, loss=f"{val_loss:.4f} (val)")
            console.print(f"epoch {epoch + 1:3d}: loss {train_loss:.5f}  val {val_loss:.5f}  "
                          f"val mse {state['history'][-1]['val_mse']:.5f}"
                          + ("  *" if state["wait"] == 0 else ""))

    with (out_dir / "history.csv").open("w", newline="") as f:
        names = ["epoch", "loss", "val_loss", "val_mse"]
        if any("val_r" in h for h in state["history"]):
            names.append("val_r")
        w = csv.DictWriter(f, fieldnames=names,
                           restval="")
        w.writeheader()
        w.writerows(state["history"])
    _adopt_average(cfg, model, val, val_y, average, state, out_dir)
    model.load_weights(out_dir / "best.weights.h5")
    _calibrate(cfg, model, val, out_dir, eval_arrays(cfg, train_set, "none").lead_i,
               val_set)
    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:  # trained on another Keras backend (e.g. JAX on a GPU box)
        tf_version = None
    _write_json(out_dir / "run.json", {
        "name": cfg.name, "config_sha256": cfg.sha256(), "split_sha256": split_hash(),
        "epochs_run": state["epoch"], "best_val_loss": state["best_val"],
        "n_train": len(train_set), "n_val": len(val_set),
        "keras_version": keras.__version__, "keras_backend": keras.backend.backend(),
        "tf_version": tf_version,
        **({"weight_average": state["weight_average"]} if "weight_average" in state else {}),
        "train_seconds": round(_train_seconds(out_dir, state, time.perf_counter() - t_start), 1),
        "trained_as": _trained_as(),
    })
    console.print(f"[green]done[/]: {state['epoch']} epochs, best val score "
                  f"{state['best_val']:.5f}, run folder {out_dir}")
    return out_dir


AVERAGE_FILE = "average.weights.npz"  # the running weight average while a run trains


class WeightAverage:
    """Running mean of the end-of-epoch weights of the epochs after ``start * epochs``
    (0-based epoch >= ceil(start * epochs)), kept in ``path`` with its count and last epoch
    after every epoch, so that a resumed run continues it (an epoch is never counted
    twice). ``start`` 0: off."""

    def __init__(self, path: Path, epochs: int, start: float) -> None:
        self.path = path
        self.first = int(np.ceil(start * epochs)) if start > 0 else None
        self.weights: list[np.ndarray] | None = None
        self.n = 0
        self.last = -1

    def load(self) -> None:
        if self.first is None or not self.path.exists():
            return
        with np.load(self.path) as f:
            self.n, self.last = int(f["n"]), int(f["last"])
            self.weights = [f[f"w{i}"] for i in range(len(f.files) - 2)]

    def add(self, model: keras.Model, epoch: int) -> None:
        if self.first is None or epoch < self.first or epoch <= self.last:
            return
        w = [np.asarray(a, np.float64) for a in model.get_weights()]
        self.n += 1
        self.weights = w if self.weights is None else [
            a + (b - a) / self.n for a, b in zip(self.weights, w, strict=True)]
        self.last = epoch
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, n=self.n, last=self.last,
                 **{f"w{i}": a for i, a in enumerate(self.weights)})
        tmp.replace(self.path)


def _adopt_average(cfg: TrainConfig, model: keras.Model, val: Any, val_y: np.ndarray,
                   average: WeightAverage, state: dict, out_dir: Path) -> None:
    """Score the weight average on validation by the selection rule; it becomes
    best.weights.h5 when it beats the best epoch. Recorded in ``state['weight_average']``;
    the running average's file is removed afterwards (a finished run does not need it)."""
    if average.weights is None:
        return
    model.set_weights([a.astype(np.float32) for a in average.weights])
    _, mse, r = _validation_scores(cfg, model, val, val_y)
    score = selection_loss(mse, r, cfg.model.correlation_loss)
    adopted = score < state["best_val"]
    state["weight_average"] = {"epochs_averaged": average.n, "from_epoch": average.first + 1,
                               "val_score": score, "best_epoch_val_score": state["best_val"],
                               "adopted": adopted,
                               **({"val_r": r} if r is not None else {})}
    if adopted:
        model.save_weights(out_dir / "best.weights.h5")
        state["best_val"] = score
    _write_json(out_dir / "state.json", state)
    average.path.unlink(missing_ok=True)
    console.print(f"weight average of {average.n} epochs: val score {score:.5f} "
                  + ("(adopted)" if adopted else "(the best epoch kept)"))


def _train_seconds(out_dir: Path, state: dict, this_call_s: float) -> float:
    """Seconds spent in the epoch loop over all calls (``state['seconds']``); for a run whose
    state predates that count, the time already in its run.json plus this call."""
    if "seconds" in state:
        return float(state["seconds"])
    try:
        before = float(json.loads((out_dir / "run.json").read_text())["train_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        before = 0.0
    return before + this_call_s


def _trained_as() -> str:
    """The command that ran this training and where (written into run.json, not typed)."""
    import os
    import platform
    import shlex
    import sys

    cmd = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    cpu = platform.processor() or platform.machine()
    return (f"{cmd} (Keras {keras.__version__}, {keras.backend.backend()} backend, {cpu}, "
            f"{os.cpu_count()} CPUs)")


def _calibrate(cfg: TrainConfig, model: keras.Model, val: Any, out_dir: Path,
               train_lead_i: np.ndarray | None = None,
               val_preps: list[Prepared] | None = None) -> None:
    """Fit the per-lead std scale on validation (MC T=CALIBRATION_T) and flag thresholds;
    with the validation records, the clinical regime's own scale (``scale_clinical``); with
    the training windows' Lead I, the atypicality model and its flag risk too."""
    from training.calibration import (
        CalibrationError,
        fit_corpus_robust_scale,
        fit_fidelity_threshold,
    )
    from training.mc import mc_predict

    mean, std = mc_predict(model, val.lead_i, val.meta, CALIBRATION_T, seed=cfg.seed)
    err = np.abs(mean - val.target)
    corpora = [k.split("/")[0] for k in val.keys]  # keys are "<corpus>/<record>"
    scale = fit_corpus_robust_scale(std, err, corpora, nominal=0.9)
    cal_std = std * np.asarray(scale)[None, None, :]
    # flag a stretch when calibrated std exceeds the 95th percentile seen on validation
    flag = np.percentile(cal_std.reshape(-1, cal_std.shape[-1]), 95, axis=0)
    # and a window whose expected r is below what 5 % of the good (r > 0.8) windows show
    try:
        fidelity = fit_fidelity_threshold(mean, cal_std, val.target, FIDELITY_BUDGET)
    except CalibrationError as exc:  # e.g. a tiny run without good validation windows
        console.print(f"[yellow]no fidelity flag threshold: {exc}[/]")
        fidelity = None
    # the clinical regime (R/T axes in the profile) has its own errors: its own scale
    scale_clinical = None
    if val_preps:
        clin = eval_arrays(cfg, val_preps, "clinical")
        c_mean, c_std = mc_predict(model, clin.lead_i, clin.meta, CALIBRATION_T, seed=cfg.seed)
        scale_clinical = fit_corpus_robust_scale(c_std, np.abs(c_mean - clin.target), corpora,
                                                 nominal=0.9)
    atypicality = (None if train_lead_i is None or not val_preps else
                   _fit_atypicality(cfg, model, train_lead_i, val_preps, scale))
    _write_json(out_dir / "calibration.json", {
        **({"atypicality": atypicality} if atypicality else {}),
        "method": "scale", "nominal": 0.9, "mc_samples": CALIBRATION_T,
        "scale": [float(s) for s in scale], "flag_std_mv": [float(f) for f in flag],
        **({"scale_clinical": [float(s) for s in scale_clinical]}
           if scale_clinical is not None else {}),
        "flag_expected_r": fidelity, "fidelity_budget": FIDELITY_BUDGET,
        "fitted_on": f"validation split, {len(val.keys)} records, wearable regime",
        "scale_fit": "corpus-robust: geometric mean of the pooled and the corpus-balanced "
                     f"90 % quantile ({', '.join(sorted(set(corpora)))})",
    })


def _fit_atypicality(cfg: TrainConfig, model: keras.Model, train_lead_i: np.ndarray,
                     val_preps: list[Prepared], scale: np.ndarray) -> dict[str, Any] | None:
    """``edge.atypicality`` fitted on the training windows' trunk features, its flag risk
    on every window the gateway runs on the validation records (wearable regime, MC
    T=CALIBRATION_T, the std calibrated by ``scale``), the risk's weight chosen there
    (``select_atypicality_flag``); None for a model without the edge trunk or with too few
    good windows."""
    from edge.fidelity import expected_r
    from training.calibration import (
        CalibrationError,
        fit_atypicality_model,
        select_atypicality_flag,
    )
    from training.dataset import gateway_arrays
    from training.mc import mc_predict, pooled_trunk_features
    from training.metrics import pearson_per_record

    pooled = pooled_trunk_features(model, train_lead_i)
    if pooled is None:
        return None
    val, record = gateway_arrays(cfg, val_preps, "wearable")
    try:
        atyp = fit_atypicality_model(pooled)
        scores = [atyp.score(p) for p in pooled_trunk_features(model, val.lead_i)]
        mean, std = mc_predict(model, val.lead_i, val.meta, CALIBRATION_T, seed=cfg.seed)
        cal_std = std * np.asarray(scale)[None, None, :]
        r = np.nan_to_num(pearson_per_record(val.target, mean), nan=0.0).mean(axis=1)
        atyp, table = select_atypicality_flag(atyp, expected_r(mean, cal_std), scores, r,
                                              record, FIDELITY_BUDGET)
    except CalibrationError as exc:
        console.print(f"[yellow]no atypicality flag: {exc}[/]")
        return None
    return {**atyp.to_dict(), "weight_selection": table,
            "fitted_on": f"trunk features of {len(train_lead_i)} training windows; risk on "
                         f"{len(val.keys)} gateway windows of {len(val_preps)} validation "
                         "records; weight: the most bad validation records caught"}


def calibrate_run(run_dir: Path, progress: bool = True, hop_s: float | None = None) -> None:
    """(Re)fit calibration.json of a run folder, e.g. one trained on another machine;
    ``hop_s`` sets the gateway hop (the weights do not depend on it, the flag threshold
    does): the fit uses it, and config.json gets it once calibration.json is written."""
    run_dir = Path(run_dir)
    cfg = TrainConfig.load(run_dir / "config.json")
    if not (run_dir / "best.weights.h5").is_file():
        raise ConfigError(f"{run_dir}: no best.weights.h5 (not a trained run folder)")
    if hop_s is not None:
        raw = cfg.to_dict()
        raw["data"]["hop_s"] = float(hop_s)
        cfg = TrainConfig.from_dict(raw, source="--hop-s")  # refused here when out of range
    model = build_model(cfg)
    model.load_weights(run_dir / "best.weights.h5")
    data = prepare_corpora(cfg, progress=progress)
    val = eval_arrays(cfg, data["val"], "wearable")
    _calibrate(cfg, model, val, run_dir, eval_arrays(cfg, data["train"], "none").lead_i,
               data["val"])
    if hop_s is not None:
        cfg.save(run_dir / "config.json")
    console.print(f"calibration written to {run_dir / 'calibration.json'}")


def train_from_config(path: Path, out_dir: Path | None = None, resume: bool = True) -> Path:
    cfg = TrainConfig.load(path)
    return train(cfg, out_dir or Path("runs") / cfg.name, resume=resume)
