"""Personalisation: enrol a wearer once from a standard 12-lead ECG, then reconstruct *their*
12 leads from Lead I (or from their wearable's own single lead).

Method (chosen by measurement, see ``training.evaluate_personalization``): the generic model
is run on the enrolment's Lead I (or on the wearable's simultaneous lead); then, per output
lead, a ridge-regularised linear map from the generic output rows -- Lead I, II, V1-V6 and the
same columns 10, 20 and 40 ms earlier (a short *causal* FIR, so it runs chunk by chunk) -- to
the enrolment's true lead, band-passed 0.5-40 Hz zero-phase (``edge.conditioning.condition``).
The ridge shrinks toward the identity (the generic output). Its strength is chosen per lead by
split-half cross-validation of the enrolment, and a lead whose held-out r does not improve by
``MIN_GAIN_R`` (with a lower RMSE), or stays below ``MIN_R``, falls back to the generic model,
with the reason recorded.
III, aVR, aVL and aVF are derived from the corrected I and II (Einthoven/Goldberger).

The fitted map is then shrunk toward the identity by ``CROSS_RECORD_SHRINK`` (0.9): within one
record the split-half CV trusts the map more than another day's record earns (PTB-XL pairs:
0.8-0.9 give the largest gain on the patient's other record, and a wrong person's profile
costs 13 % less r than unshrunk; below 0.9 the chest amplitude slopes drop under 0.6).

Uncertainty: the std of a personalised lead is the generic std times a per-lead factor that
gives 90 % coverage of the held-out (shrunk) enrolment residuals, times ``STD_INFLATION``
(held-out halves of one record are easier than another day's record; measured on PTB-XL pairs).

Wrong wearer: the enrolment's single-lead median beat (at the model rate, from the model's
conditioned input) is stored in the profile; the streaming pipeline compares every model
window's median beat with it (``edge.stages.identity``: shape r and amplitude ratio) and
outputs the generic rows, flagged ``personalization_mismatch``, where it does not match.
Offline ``reconstruct`` is the same pipeline, so both give the same verdicts.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import InputInvalid
from edge.leads import LEAD_INDEX, LEADS
from edge.stages.identity import (
    MATCH_MAX_LOG_AMP,
    MATCH_MIN_R,
    beat_template,
    compare,
    make_template,
)

__all__ = ["Personalization", "PersonalizationError", "Applier", "fit_personalization",
           "lag_features", "load_personalization", "check_enrolment", "SCHEMA_VERSION",
           "MATCH_MIN_R", "MATCH_MAX_LOG_AMP", "CROSS_RECORD_SHRINK", "template_match"]

SCHEMA_VERSION = "1"
#: Columns of the generic 12-lead rows the correction reads (the independent leads).
FEATURE_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
#: Leads the correction may replace (Lead I only when fitted on a wearable's own lead).
FIT_LEADS: tuple[str, ...] = ("II", "V1", "V2", "V3", "V4", "V5", "V6")
#: Past offsets (s) of the feature columns used besides the current row (causal FIR).
LAGS_S: tuple[float, ...] = (0.01, 0.02, 0.04)
#: Ridge strengths tried (relative to the mean feature energy), per lead by split-half CV.
LAMBDAS: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: Held-out r gain a lead needs to be personalised (otherwise: generic, and say so).
MIN_GAIN_R = 0.01
#: Held-out r a personalised lead must reach at all (below: the fit is mostly noise).
MIN_R = 0.5
#: Extra factor on the recalibrated std (cross-record error exceeds within-record error).
STD_INFLATION = 1.4  # median factor for 90 % on other-record tests: 1.32 / 1.24 (PTB-XL)
#: Share of the fitted correction kept (the rest: the generic output), see the module docstring.
CROSS_RECORD_SHRINK = 0.9
#: Enrolment edges left out of the fit (s), where zero-phase filters see mirrored signal.
EDGE_S = 0.5
Z90 = 1.6448536269514722
_FEAT = [LEAD_INDEX[n] for n in FEATURE_LEADS]
_DERIVED = ("III", "aVR", "aVL", "aVF")


class PersonalizationError(InputInvalid):
    """An enrolment or a personalisation file is unusable; the message says why."""


# ---------------------------------------------------------------------------- features
def _history(fs_hz: float, lags_s: tuple[float, ...]) -> int:
    return int(math.ceil(max(lags_s, default=0.0) * fs_hz)) + 1 if lags_s else 0


def lag_features(rows: np.ndarray, fs_hz: float, lags_s: tuple[float, ...] = LAGS_S,
                 past: np.ndarray | None = None) -> np.ndarray:
    """Feature matrix ``(n, f * (1 + len(lags_s)))`` from rows ``(n, f)``: the rows, then each
    lag (linear interpolation at ``fs_hz``). ``past`` = the ``_history`` rows before (default:
    the first row repeated). A NaN lagged value is replaced by the current row's value."""
    x = np.asarray(rows, dtype=np.float64)
    h = _history(fs_hz, lags_s)
    if not lags_s or len(x) == 0:
        return x.copy()
    if past is None:
        past = np.repeat(x[:1], h, axis=0)
    full = np.concatenate([np.asarray(past, dtype=np.float64), x])
    n = len(x)
    cols = [x]
    for lag in lags_s:
        d = lag * fs_hz
        i0 = int(math.floor(d))
        frac = d - i0
        a = full[h - i0: h - i0 + n]
        b = full[h - i0 - 1: h - i0 - 1 + n]
        y = a * (1.0 - frac) + b * frac if frac > 1e-9 else a
        cols.append(np.where(np.isnan(y), x, y))
    return np.concatenate(cols, axis=1)


def derive_limb(out: np.ndarray) -> None:
    """Fill III, aVR, aVL, aVF of ``out`` ``(n, 12)`` from its I and II, in place."""
    i, ii = out[:, 0], out[:, 1]
    out[:, 2] = ii - i
    out[:, 3] = -(i + ii) / 2
    out[:, 4] = i - ii / 2
    out[:, 5] = ii - i / 2


def derive_limb_std(std: np.ndarray) -> None:
    """Std of III, aVR, aVL, aVF from the std of I and II (independent errors), in place."""
    si2, sii2 = std[:, 0] ** 2, std[:, 1] ** 2
    std[:, 2] = np.sqrt(sii2 + si2)
    std[:, 3] = np.sqrt(si2 + sii2) / 2
    std[:, 4] = np.sqrt(si2 + sii2 / 4)
    std[:, 5] = np.sqrt(sii2 + si2 / 4)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else float("nan")


def _ridge(a: np.ndarray, b: np.ndarray, lam: float, w0: np.ndarray) -> np.ndarray:
    """argmin ||y - x w||^2 + lam * s * ||w - w0||^2 from a = x'x, b = x'y; s = mean diagonal
    of a (so ``lam`` is relative to the feature energy)."""
    s = float(np.trace(a)) / len(a) or 1.0
    return np.linalg.solve(a + lam * s * np.eye(len(a)), b + lam * s * w0)


def _gram(x: np.ndarray, t: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xr = x[rows]
    return xr.T @ xr, xr.T @ t[rows]


# ---------------------------------------------------------------------------- the object
@dataclass
class Personalization:
    """A wearer's fitted correction of the generic output (see the module docstring).

    ``weights[lead]`` holds the coefficients over ``lag_features`` columns, or is absent where
    that lead falls back to the generic model (``fallback[lead]`` says why)."""

    weights: dict[str, list[float]]
    std_scale: dict[str, float]
    lags_s: tuple[float, ...] = LAGS_S
    feature_leads: tuple[str, ...] = FEATURE_LEADS
    source: str = "lead_i"  # or "wearable": the single lead was the wearer's device
    lead_i_std_mv: float | None = None  # std of the corrected Lead I (wearable mode)
    fallback: dict[str, str] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    clinical: dict[str, float] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ application
    def applier(self, fs_hz: float) -> Applier:
        """A stateful per-segment applier at ``fs_hz`` (for streaming)."""
        return Applier(self, fs_hz)

    def apply(self, leads: np.ndarray, std: np.ndarray, fs_hz: float
              ) -> tuple[np.ndarray, np.ndarray]:
        """Generic rows ``(n, 12)`` and std of one contiguous segment -> personalised ones."""
        return self.applier(fs_hz).push(leads, std)

    @property
    def personalised_leads(self) -> list[str]:
        return [lead for lead in LEADS if lead in self.weights]

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "kind": "ecg12.personalization",
            "method": "per-lead ridge on generic output rows + causal lags, shrunk to identity",
            "source": self.source, "lags_s": list(self.lags_s),
            "feature_leads": list(self.feature_leads),
            "weights": {k: [float(v) for v in w] for k, w in self.weights.items()},
            "std_scale": {k: float(v) for k, v in self.std_scale.items()},
            "lead_i_std_mv": self.lead_i_std_mv, "fallback": dict(self.fallback),
            "quality": self.quality, "metadata": self.metadata, "clinical": self.clinical,
            "template": self.template, "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "personalization") -> Personalization:
        if not isinstance(d, dict):
            raise PersonalizationError(f"{where}: expected an object, got {type(d).__name__}")
        ver = d.get("schema_version")
        if ver != SCHEMA_VERSION:
            raise PersonalizationError(f"{where}: schema_version={ver!r}; this ecg12 reads "
                                       f"{SCHEMA_VERSION!r} (re-enrol with `ecg12 enroll`)")
        try:
            lags = tuple(float(v) for v in d["lags_s"])
            feats = tuple(str(v) for v in d["feature_leads"])
            weights = {str(k): [float(v) for v in w] for k, w in d["weights"].items()}
            scale = {str(k): float(v) for k, v in d.get("std_scale", {}).items()}
            lead_i_std = d.get("lead_i_std_mv")
            lead_i_std = None if lead_i_std is None else float(lead_i_std)
        except KeyError as e:
            raise PersonalizationError(f"{where}: field {e.args[0]!r} is missing") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise PersonalizationError(f"{where}: malformed field ({e})") from None
        if feats != FEATURE_LEADS:
            raise PersonalizationError(f"{where}: feature_leads={list(feats)} differ from "
                                       f"{list(FEATURE_LEADS)}")
        if any(not (math.isfinite(v) and 0 <= v <= 1.0) for v in lags):
            raise PersonalizationError(f"{where}: lags_s={list(lags)} must be in [0, 1] s")
        nf = len(feats) * (1 + len(lags))
        for k, w in weights.items():
            if k not in ("I",) + FIT_LEADS:
                raise PersonalizationError(f"{where}: weights for unknown lead {k!r}")
            if len(w) != nf or not all(math.isfinite(v) for v in w):
                raise PersonalizationError(f"{where}: weights[{k!r}] must be {nf} finite "
                                           f"numbers, got {len(w)}")
        for k, v in scale.items():
            if not (math.isfinite(v) and v > 0):
                raise PersonalizationError(f"{where}: std_scale[{k!r}]={v!r} must be > 0")
        if "I" in weights and not (lead_i_std is not None and lead_i_std > 0):
            raise PersonalizationError(f"{where}: lead_i_std_mv must be > 0 when Lead I is "
                                       f"corrected")
        return cls(weights=weights, std_scale=scale, lags_s=lags, feature_leads=feats,
                   source=str(d.get("source", "lead_i")), lead_i_std_mv=lead_i_std,
                   fallback=dict(d.get("fallback", {})), quality=dict(d.get("quality", {})),
                   metadata=dict(d.get("metadata", {})), clinical=dict(d.get("clinical", {})),
                   template=dict(d.get("template", {})), info=dict(d.get("info", {})))

    def save(self, path: str | Path) -> Path:
        """Write a JSON profile (``--profile``): ``patient`` (the profile fields of the
        enrolment metadata), ``clinical`` (12-lead measurements), ``personalization``."""
        from edge.profile import PROFILE_FIELDS

        p = Path(path)
        patient = {k: v for k, v in self.metadata.items() if k in PROFILE_FIELDS}
        doc = {"patient": patient, "clinical": self.clinical, "personalization": self.to_dict()}
        p.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Personalization:
        p = load_personalization(path)
        if p is None:
            raise PersonalizationError(f"{path}: no 'personalization' object in the file")
        return p

    def summary(self) -> str:
        """A few lines: what was fitted, on how much signal, and how well (held-out r)."""
        q = self.quality
        lines = [f"personalisation ({self.source}): {q.get('duration_s', 0):.1f} s enrolment, "
                 f"{q.get('beats', '?')} beats at {q.get('fs_hz', 0):g} Hz"]
        kept = self.personalised_leads
        lines.append(f"personalised leads: {', '.join(kept) or 'none'} (ridge on I, II, V1-V6 "
                     f"+ lags {', '.join(f'{1000 * v:g}' for v in self.lags_s)} ms)")
        cv_g, cv_p = q.get("cv_r_generic", {}), q.get("cv_r_personal", {})
        if cv_p:
            mg = np.nanmean([cv_g[k] for k in kept]) if kept else float("nan")
            mp = np.nanmean([cv_p[k] for k in kept]) if kept else float("nan")
            lines.append(f"held-out r on the enrolment (split-half): generic {mg:.3f} -> "
                         f"personalised {mp:.3f} over the personalised leads")
        if self.template.get("beat"):
            lo = math.exp(-MATCH_MAX_LOG_AMP)
            amp = (f", amplitude x{lo:.2f}-{1 / lo:.2f}" if "ptp_mv" in self.template else "")
            lines.append(f"wearer check: each model window's median beat vs the enrolment's "
                         f"(r >= {MATCH_MIN_R:g}{amp}); otherwise generic output, flagged")
        else:
            lines.append("wearer check: off (no beats in the enrolment's single lead)")
        for lead, why in self.fallback.items():
            lines.append(f"  {lead}: generic model kept ({why})")
        for w in q.get("warnings", []):
            lines.append(f"  warning: {w}")
        return "\n".join(lines)


class Applier:
    """Applies a ``Personalization`` to consecutive row blocks of one segment (causal lags)."""

    def __init__(self, p: Personalization, fs_hz: float) -> None:
        self.p, self.fs_hz = p, float(fs_hz)
        self._h = _history(self.fs_hz, p.lags_s)
        self._past: np.ndarray | None = None
        self._rows = [(LEAD_INDEX[k], np.asarray(w, dtype=np.float64))
                      for k, w in p.weights.items()]

    def push(self, leads: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        leads = np.asarray(leads)
        std = np.asarray(std)
        if len(leads) == 0 or not self._rows:
            return leads, std
        f = leads[:, _FEAT].astype(np.float64)
        if self._past is None and self._h:
            self._past = np.repeat(f[:1], self._h, axis=0)
        x = lag_features(f, self.fs_hz, self.p.lags_s, self._past)
        if self._h:
            self._past = np.concatenate([self._past, f])[-self._h:]
        out = leads.astype(np.float64)
        sd = std.astype(np.float64)
        for j, w in self._rows:
            out[:, j] = x @ w
            name = LEADS[j]
            if name == "I":
                sd[:, 0] = np.where(np.isfinite(out[:, 0]), self.p.lead_i_std_mv, np.nan)
            else:
                sd[:, j] = sd[:, j] * self.p.std_scale.get(name, 1.0)
        derive_limb(out)
        derive_limb_std(sd)
        return out.astype(leads.dtype), sd.astype(std.dtype)


def load_personalization(path: str | Path) -> Personalization | None:
    """The ``personalization`` object of a JSON profile file, or None if it has none."""
    p = Path(path)
    if not p.is_file():
        raise PersonalizationError(f"personalisation file not found: {p}")
    if p.suffix.lower() == ".toml":
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PersonalizationError(f"{p}: cannot parse JSON ({e})") from None
    if not isinstance(doc, dict) or "personalization" not in doc:
        return None
    return Personalization.from_dict(doc["personalization"], f"{p}: personalization")


# ---------------------------------------------------------------------------- checks
def check_enrolment(ecg_mv: Any, fs_hz: float, min_n: int) -> np.ndarray:
    """Validate a 12-lead enrolment ``(n, 12)`` mV; returns float64. Named errors for shape,
    non-finite samples, flat leads, µV units, swapped/missing limb leads, too short."""
    try:
        x = np.asarray(ecg_mv, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise PersonalizationError(f"enrolment ecg is not numeric: {e}") from None
    if x.ndim != 2 or x.shape[1] != 12:
        raise PersonalizationError(f"enrolment ecg must be (n, 12) mV in the order "
                                   f"{', '.join(LEADS)}; got shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise PersonalizationError(f"enrolment ecg has {int(bad.sum())} non-finite value(s); "
                                   f"first in lead {LEADS[c]} at sample {int(r)}")
    if len(x) < min_n:
        raise PersonalizationError(f"enrolment has {len(x)} samples at {fs_hz:g} Hz "
                                   f"({len(x) / fs_hz:.2f} s); at least {min_n} "
                                   f"({min_n / fs_hz:.2f} s, one model window) are needed")
    c = x - np.median(x, axis=0)
    amp = np.percentile(np.abs(c), 99.9, axis=0)
    for j, lead in enumerate(LEADS):
        if amp[j] == 0:
            raise PersonalizationError(f"enrolment lead {lead} is flat (missing?)")
    if float(np.median(amp)) > 30.0:
        raise PersonalizationError(f"enrolment amplitude {float(np.median(amp)):.0f} (median "
                                   f"lead) looks like µV, not mV: divide by 1000")
    c = x - x.mean(axis=0)
    i, ii = c[:, 0], c[:, 1]
    checks = {"III": ii - i, "aVR": -(i + ii) / 2, "aVL": i - ii / 2, "aVF": ii - i / 2}
    for lead, want in checks.items():
        got = c[:, LEAD_INDEX[lead]]
        den = max(float(np.sqrt(np.mean(got ** 2))), float(np.sqrt(np.mean(want ** 2))), 1e-6)
        err = float(np.sqrt(np.mean((got - want) ** 2))) / den
        if err > 0.25:
            raise PersonalizationError(
                f"enrolment lead {lead} disagrees with its derivation from I and II "
                f"(relative RMS error {err:.2f} > 0.25): leads missing, swapped or "
                f"mis-ordered? expected order {', '.join(LEADS)}")
    return x


# ---------------------------------------------------------------------------- fitting
def fit_personalization(generic: np.ndarray, generic_std: np.ndarray, target: np.ndarray,
                        fs_hz: float, *, fit_lead_i: bool = False,
                        lags_s: tuple[float, ...] = LAGS_S,
                        lambdas: tuple[float, ...] = LAMBDAS, min_gain_r: float = MIN_GAIN_R,
                        min_r: float = MIN_R,
                        std_inflation: float = STD_INFLATION, edge_s: float = EDGE_S,
                        shrink: float = CROSS_RECORD_SHRINK) -> Personalization:
    """Fit the correction from the generic rows ``(n, 12)`` (+ std) to ``target`` ``(n, 12)``
    (the enrolment band-passed zero-phase), all at ``fs_hz`` and aligned in time. The ridge
    strength is chosen per lead by split-half CV; the fall-back test and the std use the
    held-out prediction of the final, shrunk map ``w0 + shrink * (w - w0)``."""
    if not 0.0 < shrink <= 1.0:
        raise PersonalizationError(f"shrink={shrink!r} must be in (0, 1]")
    g = np.asarray(generic, dtype=np.float64)
    gs = np.asarray(generic_std, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if g.shape != t.shape or g.ndim != 2 or g.shape[1] != 12 or gs.shape != g.shape:
        raise PersonalizationError(f"generic {g.shape}, std {gs.shape} and target {t.shape} "
                                   f"must all be (n, 12)")
    n = len(g)
    x = lag_features(g[:, _FEAT], fs_hz, lags_s)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(t).all(axis=1)
    e = min(int(edge_s * fs_hz), n // 10)
    ok[:e] = False
    ok[n - e:] = False
    nf = x.shape[1]
    halves = np.arange(n) < np.flatnonzero(ok)[len(np.flatnonzero(ok)) // 2] if ok.any() else ok
    parts = [(ok & halves, ok & ~halves), (ok & ~halves, ok & halves)]
    if min(int(a.sum()) for a, _ in parts) < max(4 * nf, int(fs_hz)):
        raise PersonalizationError(f"enrolment has too few usable samples ({int(ok.sum())}) "
                                   f"after the model's poor-quality windows")
    leads = (("I",) if fit_lead_i else ()) + FIT_LEADS
    weights: dict[str, list[float]] = {}
    scale: dict[str, float] = {}
    fallback: dict[str, str] = {}
    cv_g: dict[str, float] = {}
    cv_p: dict[str, float] = {}
    lam_of: dict[str, float] = {}
    lead_i_std = None
    grams = [_gram(x, t, tr) for tr, _ in parts]  # x'x and x't once per half, all leads
    gram_all = _gram(x, t, ok)
    for lead in leads:
        j = LEAD_INDEX[lead]
        w0 = np.zeros(nf)
        w0[_FEAT.index(j)] = 1.0
        rg = float(np.mean([_pearson(g[te, j], t[te, j]) for _, te in parts]))
        eg = float(np.sqrt(np.mean([np.mean((g[te, j] - t[te, j]) ** 2) for _, te in parts])))
        best: tuple[float, float, float, np.ndarray] | None = None
        for lam in lambdas:
            pred = np.full(n, np.nan)
            for (a, bt), (_, te) in zip(grams, parts, strict=True):
                pred[te] = x[te] @ _ridge(a, bt[:, j], lam, w0)
            r = float(np.mean([_pearson(pred[te], t[te, j]) for _, te in parts]))
            if best is None or r > best[0]:
                best = (r, lam, float(np.sqrt(np.nanmean((pred[ok] - t[ok, j]) ** 2))), pred)
        assert best is not None
        _, lam, _, pred = best
        pred = np.where(ok, g[:, j] + shrink * (pred - g[:, j]), np.nan)  # the shrunk map
        rp = float(np.mean([_pearson(pred[te], t[te, j]) for _, te in parts]))
        ep = float(np.sqrt(np.nanmean((pred[ok] - t[ok, j]) ** 2)))
        cv_g[lead], cv_p[lead] = round(rg, 4), round(rp, 4)
        rg_ = rg if math.isfinite(rg) else -1.0
        if not (math.isfinite(rp) and rp >= min_r and ep < eg and rp >= rg_ + min_gain_r):
            why = (f"held-out r {rp:.3f} < {min_r:g}" if not rp >= min_r else
                   f"held-out RMSE {ep:.3f} >= generic {eg:.3f} mV" if not ep < eg else
                   f"held-out r gain {rp - rg_:+.3f} < {min_gain_r:g}")
            fallback[lead] = f"{why}: no gain (r {rp:.3f} vs generic {rg:.3f})"
            continue
        w = _ridge(gram_all[0], gram_all[1][:, j], lam, w0)
        weights[lead] = [float(v) for v in w0 + shrink * (w - w0)]
        lam_of[lead] = lam
        res = np.abs(pred[ok] - t[ok, j])
        if lead == "I":
            lead_i_std = float(np.quantile(res, 0.9) / Z90 * std_inflation)
        else:
            s = gs[ok, j]
            good = np.isfinite(s) & (s > 0)
            scale[lead] = float(np.quantile(res[good] / s[good], 0.9) / Z90 * std_inflation)
    quality = {"fs_hz": float(fs_hz), "duration_s": round(n / fs_hz, 3),
               "samples_fitted": int(ok.sum()), "cv_r_generic": cv_g, "cv_r_personal": cv_p,
               "lambda": lam_of, "shrink": shrink, "warnings": []}
    return Personalization(weights=weights, std_scale=scale, lags_s=tuple(lags_s),
                           source="wearable" if fit_lead_i else "lead_i",
                           lead_i_std_mv=lead_i_std, fallback=fallback, quality=quality,
                           info={"created": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def align_wearable(wear_rows: np.ndarray, fs_w: float, n: int, fs: float, ref_i: np.ndarray,
                   max_lag_s: float = 2.0) -> tuple[np.ndarray, float, float]:
    """Rows of the wearable ``(m, k)`` at ``fs_w`` -> ``(n, k)`` on the enrolment's time axis at
    ``fs`` (NaN outside), shifted by the lag (within +-``max_lag_s``, 10 ms steps) that best
    matches |r| of its first column with ``ref_i``. Returns (rows, lag_s, |r|)."""
    tw = np.arange(len(wear_rows)) / fs_w
    te = np.arange(n) / fs
    best, best_lag = -1.0, 0.0
    for lag in np.arange(-max_lag_s, max_lag_s + 1e-9, 0.01):
        y = np.interp(te + lag, tw, wear_rows[:, 0], left=np.nan, right=np.nan)
        ok = np.isfinite(y)
        if ok.sum() < n // 2:
            continue
        r = abs(_pearson(y[ok], ref_i[ok]))
        if r > best:
            best, best_lag = r, float(lag)
    rows = np.stack([np.interp(te + best_lag, tw, wear_rows[:, c], left=np.nan, right=np.nan)
                     for c in range(wear_rows.shape[1])], axis=1)
    return rows, best_lag, best


def template_match(p: Personalization, lead_mv: Any, fs_hz: float,
                   conditioning: dict[str, Any] | None = None, model_fs_hz: float = 100.0
                   ) -> tuple[float, float] | None:
    """(shape r, amplitude ratio) of a whole single-lead recording's median beat vs the
    enrolment's, after the model's conditioning to ``model_fs_hz`` (a diagnostic; the product
    judges each model window). None when either has no beats."""
    from edge.conditioning import ConditioningConfig, condition

    ref = p.template.get("beat") or []
    cfg = ConditioningConfig.from_dict(conditioning) if conditioning else None
    x = condition(np.asarray(lead_mv, dtype=np.float64).reshape(-1), fs_hz, model_fs_hz, cfg)
    cur = beat_template(x, model_fs_hz)
    if len(ref) < 8 or cur is None:
        return None
    return compare(np.asarray(ref, dtype=np.float64), cur, p.template.get("ptp_mv"))


def personalize(model: Any, ecg_mv: Any, fs: float, wearable_lead_i: Any = None,
                metadata: dict[str, Any] | None = None, *, wearable_fs: float | None = None,
                mc_samples: int = 30, seed: int = 0) -> Personalization:
    """Enrol a wearer (see ``ReconstructionModel.personalize``)."""
    from edge.conditioning import ConditioningConfig, condition
    from edge.features import detect_r_peaks
    from edge.measurements12 import twelve_lead_measurements

    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise PersonalizationError(f"fs={fs!r} is not a number") from None
    if not (math.isfinite(fs) and 100.0 <= fs <= 1000.0):
        raise PersonalizationError(f"fs={fs!r} Hz outside the supported 100-1000 Hz")
    b = model.bundle
    min_n = int(math.ceil(b.window / b.fs_hz * fs))
    x = check_enrolment(ecg_mv, fs, min_n)
    cfg = ConditioningConfig.from_dict(b.manifest.conditioning)
    target = condition(x, fs, fs, cfg).astype(np.float64)
    warnings: list[str] = []
    if wearable_lead_i is None:
        rec = model.reconstruct(x[:, 0], fs, metadata, mc_samples, seed)
        generic, gstd = rec.leads.astype(np.float64), rec.std.astype(np.float64)
        single, single_fs = x[:, 0], fs
        lag_s = 0.0
    else:
        wfs = fs if wearable_fs is None else float(wearable_fs)
        try:
            w = np.asarray(wearable_lead_i, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as e:
            raise PersonalizationError(f"wearable_lead_i is not numeric: {e}") from None
        rec = model.reconstruct(w, wfs, metadata, mc_samples, seed)
        rows = np.concatenate([rec.leads, rec.std], axis=1).astype(np.float64)
        rows, lag_s, r_i = align_wearable(rows, wfs, len(x), fs, target[:, 0])
        generic, gstd = rows[:, :12], rows[:, 12:]
        gstd[:, 0] = 0.0
        single, single_fs = w, wfs
        if r_i < 0.5:
            warnings.append(f"the wearable's lead matches the enrolment's Lead I poorly (|r| "
                            f"{r_i:.2f} at the best lag {lag_s:+.2f} s): not simultaneous, or "
                            f"not the same person?")
    p = fit_personalization(generic, gstd, target, fs, fit_lead_i=wearable_lead_i is not None)
    p.quality["beats"] = int(len(detect_r_peaks(x[:, 0], fs)))
    p.quality["warnings"] = warnings + p.quality.get("warnings", [])
    if wearable_lead_i is not None:
        p.quality["wearable_lag_s"] = lag_s
    if not p.weights:
        p.quality["warnings"].append("no lead improved on held-out enrolment data: the "
                                     "generic model is used (enrolment too noisy or short?)")
    p.metadata = dict(metadata or {})
    try:
        p.clinical = {k: round(v, 1) for k, v in twelve_lead_measurements(x, fs).items()}
    except ValueError:
        p.clinical = {}
    # the wearer check's reference: the median beat of the model's own conditioned input
    p.template = make_template(condition(single, single_fs, b.fs_hz, cfg), b.fs_hz)
    if not p.template["beat"]:
        p.quality["warnings"].append("no beats found in the enrolment's single lead: the "
                                     "wearer check is off for this profile")
    p.info.update({"bundle": b.manifest.name, "enrolment_fs_hz": fs})
    return p
