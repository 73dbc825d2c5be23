"""Evaluation output: PNG figures and the Markdown report of a run, and run comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.leads import LEADS, RECONSTRUCTED

FIG_LEADS = ("II", "V1", "V2", "V3", "V4", "V5", "V6")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def heatmap_figure(path: Path, title: str, truth: np.ndarray, mean: np.ndarray,
                   std: np.ndarray, fs: float) -> None:
    """Per lead: true (black) and MC mean (red) over a heatmap of the predicted std."""
    plt = _plt()
    t = np.arange(truth.shape[0]) / fs
    vmax = float(np.nanmax(std[:, [LEADS.index(n) for n in FIG_LEADS]])) or 1e-3
    fig, axes = plt.subplots(len(FIG_LEADS), 1, figsize=(11, 1.3 * len(FIG_LEADS)),
                             sharex=True)
    for ax, name in zip(axes, FIG_LEADS, strict=True):
        k = LEADS.index(name)
        lo = min(truth[:, k].min(), mean[:, k].min()) - 0.1
        hi = max(truth[:, k].max(), mean[:, k].max()) + 0.1
        im = ax.imshow(std[None, :, k], aspect="auto", cmap="magma_r", vmin=0, vmax=vmax,
                       extent=(t[0], t[-1], lo, hi), alpha=0.8)
        ax.plot(t, truth[:, k], "k", lw=0.8)
        ax.plot(t, mean[:, k], "r", lw=0.8)
        ax.set_ylabel(f"{name}\nmV")
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(f"{title} — black: true, red: MC mean, shading: std (mV)")
    fig.colorbar(im, ax=axes, shrink=0.6, label="std (mV)")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def calibration_figure(path: Path, unc: dict[str, Any]) -> None:
    """Spread-error curve before and after calibration (RMSE vs mean predicted std)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    top = 0.0
    for key, label in (("spread_error_before", "raw MC std"),
                       ("spread_error_after", "calibrated std")):
        c = unc[key]
        ax.plot(c["std"], c["rmse"], "o-", label=label)
        top = max([top, *c["std"], *c["rmse"]])
    ax.plot([0, top], [0, top], "k--", lw=0.8, label="ideal")
    ax.set_xlabel("predicted std (mV), bin mean")
    ax.set_ylabel("RMSE (mV) in bin")
    ax.set_title("Spread-error calibration (test, wearable)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_figures(run_dir: Path, arr: Any, mean12: np.ndarray, std12: np.ndarray,
                  picks: dict[str, int], unc: dict[str, Any], fs: float) -> dict[str, str]:
    """All figures into ``run_dir/figures``; returns name -> path relative to run_dir."""
    fig_dir = Path(run_dir) / "figures"
    fig_dir.mkdir(exist_ok=True)
    out = {}
    for kind, i in picks.items():
        rel = f"figures/uncertainty_{kind}.png"
        heatmap_figure(Path(run_dir) / rel, f"{kind}: {arr.keys[i]}", arr.leads12[i],
                       mean12[i], std12[i], fs)
        out[kind] = rel
    calibration_figure(Path(run_dir) / "figures/calibration.png", unc)
    out["calibration"] = "figures/calibration.png"
    return out


# ----------------------------------------------------------------------------- Markdown
def _ci(c: dict[str, Any] | None, digits: int = 3) -> str:
    if not c or c.get("mean") is None or not np.isfinite(c["mean"]):
        return "–"
    return f"{c['mean']:.{digits}f} [{c['lo']:.{digits}f}, {c['hi']:.{digits}f}]"


def _f(v: Any, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if isinstance(v, int | float) and np.isfinite(v) else "–"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def _per_lead(block: dict[str, Any]) -> list[str]:
    rows = []
    for lead in [*RECONSTRUCTED, "mean"]:
        rows.append([f"**{lead}**" if lead == "mean" else lead,
                     *(_ci(block[seg][m].get(lead), 3 if m == "pearson" else 4)
                       for seg in ("whole", "qrs", "t") for m in ("pearson", "rmse"))])
    return _table(["lead", "r whole", "RMSE whole (mV)", "r QRS", "RMSE QRS", "r T", "RMSE T"],
                  rows)


def _group_rows(label: str, groups: dict[str, Any]) -> list[list[str]]:
    return [[label, g, str(b["n_records"]), _ci(b["whole"]["pearson"]["mean"]),
             _ci(b["whole"]["rmse"]["mean"], 4), _ci(b["qrs"]["pearson"]["mean"]),
             _ci(b["t"]["pearson"]["mean"])] for g, b in groups.items()]


GROUP_HEADER = ["model / regime", "corpus", "records", "r (11-lead mean)", "RMSE (mV)",
                "r QRS", "r T"]


def write_report(run_dir: Path, res: dict[str, Any]) -> Path:
    """``report.md``: setup, accuracy, ablation, baseline, amplitude, uncertainty, figures."""
    reg = res["regimes"]
    lines = [f"# Evaluation of run `{res['run']}`", "",
             f"Config `{res['config']}` (model kind `{res['kind']}`, outputs `{res['outputs']}`). "
             f"Test split; 95% bootstrap CIs over records ({res['n_boot']} draws); metrics per "
             "record, then averaged over records (and over the 11 reconstructed leads for "
             f"'mean'). MC dropout T = {res['mc_samples']}." + (" **Quick mode.**"
                                                               if res["quick"] else ""), "",
             res["segments_note"], "",
             "## Accuracy (wearable regime, all corpora)", "", *_per_lead(
                 reg["wearable"]["overall"]),
             "## By corpus and metadata regime (ablation)", ""]
    rows = []
    for regime, groups in reg.items():
        rows += _group_rows(f"model / {regime}", groups)
    rows += _group_rows("linear baseline", res["baselines"]["linear"])
    lines += _table(GROUP_HEADER, rows)
    lines += ["## Linear baseline (per-lead least squares on lagged Lead I)", "",
              *_per_lead(res["baselines"]["linear"]["overall"])]
    lines += ["## Amplitude fidelity (R-wave amplitude, reconstructed vs true)", "",
              "Slope < 1 means regression to the mean (amplitudes shrunk toward the average).",
              ""]
    amp = res["amplitude_fidelity"]
    lines += _table(["lead", "slope (model)", "R² (model)", "slope (linear)", "R² (linear)",
                     "records"],
                    [[lead, _f(amp["model"][lead]["slope"]), _f(amp["model"][lead]["r2"]),
                      _f(amp["linear"][lead]["slope"]), _f(amp["linear"][lead]["r2"]),
                      str(amp["model"][lead]["n"])] for lead in amp["model"]])
    u = res["uncertainty"]
    lines += ["## Uncertainty (MC dropout, wearable regime)", "",
              "Spearman correlation between predicted std and absolute error, at sample level "
              "and record level (record means).", ""]
    lines += _table(["lead", "Spearman (samples)", "Spearman (records)"],
                    [[lead, _f(u["spearman_sample"][lead]), _f(u["spearman_record"][lead])]
                     for lead in [*RECONSTRUCTED, "mean"]])
    cal_note = ("calibration.json of the run (fitted on the validation split)"
                if u["calibrated"] else "no calibration.json in the run: scale 1")
    lines += [f"Coverage of nominal 90% intervals (mean ± 1.645·std) before and after the "
              f"per-lead scale calibration ({cal_note}).", ""]
    lines += _table(["lead", "scale", "coverage before", "coverage after"],
                    [[lead, _f(s, 2), _f(u["coverage_before"][lead]),
                      _f(u["coverage_after"][lead])]
                     for lead, s in zip(u["target_leads"], u["scale"], strict=True)]
                    + [["**mean**", "", _f(u["coverage_before"]["mean"]),
                        _f(u["coverage_after"]["mean"])]])
    lines += ["## Figures", ""]
    for name, rel in res["figures"].items():
        lines += [f"### {name}", "", f"![{name}]({rel})", ""]
    path = Path(run_dir) / "report.md"
    path.write_text("\n".join(lines))
    return path


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """Markdown comparing evaluated runs (wearable regime, overall) plus the linear baseline."""
    out = ["# Model comparison (test split, wearable regime, all corpora)", ""]
    body = []
    for res in rows:
        body += _group_rows(f"{res['run']} ({res['kind']}, {res['outputs']})",
                            {"overall": res["regimes"]["wearable"]["overall"]})
        ab = [res["regimes"][r]["overall"]["whole"]["pearson"]["mean"] for r in res["regimes"]]
        body[-1][0] += " — r none/wear/clin: " + "/".join(_f(a.get("mean")) for a in ab)
    if rows:
        body += _group_rows("linear baseline", {"overall": rows[0]["baselines"]["linear"]
                                                ["overall"]})
    out += _table(GROUP_HEADER, body)
    paired = _paired_lines(rows)
    if paired:
        out += ([] if out[-1] == "" else [""]) + paired
    return "\n".join(out)


def _paired_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The first run against each other one on the same records (paired bootstrap of the
    per-record 11-lead r, wearable): what the overlapping CIs above cannot tell."""
    from training.metrics import paired_difference

    first = rows[0].get("per_record", {}).get("r_mean_11") if rows else None
    if not first:
        return []
    out = [f"Paired difference of r (wearable, per record): {rows[0]['run']} minus each "
                "other run on the records both score, mean [95 % bootstrap CI]:", ""]
    for res in rows[1:]:
        other = res.get("per_record", {}).get("r_mean_11")
        if not other:
            out.append(f"- {res['run']}: n/a (evaluated before per-record r was stored)")
            continue
        d = paired_difference(first, other, n_boot=int(rows[0].get("n_boot", 1000)))
        out.append(f"- {res['run']}: {d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] "
                   f"({d['n']} records)")
    return out
