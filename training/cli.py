"""`ecg12 data|train|evaluate` commands (workstation side). Heavy imports happen inside."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

#: the project's named errors (module, class): shown as one line, never a traceback
_NAMED_ERRORS = (("training.calibration", "CalibrationError"), ("training.config", "ConfigError"),
                 ("training.data", "DataError"), ("training.evaluate", "EvaluationError"))


def _named_errors() -> tuple[type[BaseException], ...]:
    """The named error classes of the modules already imported: an error of a module that
    was never imported cannot have been raised, and importing it here would pull in Keras
    (training.evaluate) for commands such as `ecg12 data summary` that do not need it."""
    import sys

    from edge.errors import EdgeError

    found: list[type[BaseException]] = [EdgeError]
    for module, name in _NAMED_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show the project's named errors (bad config, missing run file, data problem) as one
    clear line instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, _named_errors()):
                raise click.ClickException(" ".join(str(exc).split())) from None
            raise

    return wrapper


@click.group()
def data() -> None:
    """Inspect the ECG corpora under ECG12_DATA (default ../shared/data)."""


@data.command("summary")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Corpora folder (default: $ECG12_DATA or ../shared/data).")
@_friendly
def data_summary(data_root: Path | None) -> None:
    """Per corpus: records found/loaded/rejected by reason, rates, metadata coverage, splits."""
    from training.data.summary import run_summary

    run_summary(data_root)


@click.command()
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Run folder (default: runs/<config name> in the current folder; the "
                   "project's runs are in training/runs/).")
@click.option("--resume/--no-resume", default=True, help="Resume from the run folder's checkpoint.")
@_friendly
def train(config: Path, out_dir: Path | None, resume: bool) -> None:
    """Train a model from a config file; writes a run folder."""
    from training.config import TrainConfig

    TrainConfig.load(config)  # a bad config is named before TensorFlow is imported (and logs)
    from training.train import train_from_config

    train_from_config(config, out_dir=out_dir, resume=resume)


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--hop-s", type=float, default=None,
              help="Set the gateway's hop between windows (seconds; written to the run's "
                   "config.json, converted into the bundle) before refitting: the flag "
                   "threshold is fitted on the windows the gateway runs. The weights do not "
                   "depend on it.")
@_friendly
def calibrate(run_dir: Path, hop_s: float | None) -> None:
    """Refit a trained run's calibration.json on the validation split: std scale, flag
    thresholds, and the atypicality model with its flag risk."""
    from training.train import calibrate_run

    calibrate_run(run_dir, hop_s=hop_s)


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--mc-samples", default=30, show_default=True, help="MC dropout samples T.")
@click.option("--quick", is_flag=True, help="Fewer records and bootstrap draws (smoke test).")
@click.option("--compare", "compare", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Other evaluated run(s): also write RUN_DIR/comparison.md (repeatable).")
@_friendly
def evaluate(run_dir: Path, mc_samples: int, quick: bool, compare: tuple[Path, ...]) -> None:
    """Evaluate a run on the test split; writes report.md and figures into the run folder."""
    from training.evaluate import compare_runs, evaluate_run

    evaluate_run(run_dir, mc_samples=mc_samples, quick=quick)
    if compare:
        out = compare_runs([run_dir, *compare], run_dir / "comparison.md")
        click.echo(f"comparison table: {out}")
