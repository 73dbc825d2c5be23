"""How atypical a window's Lead I is for the model: a distance of its trunk features from
the training set's, and the flag risk that combines it with the expected r.

MC dropout and the variance head say how unsure the head is about its own output; they
do not know when the Lead I itself is unlike anything seen in training (an unusual QRS, a
pacemaker, another hospital's filters), where the model is confidently wrong. The trunk's
features of a window are pooled over time (mean, std and max |x| of each channel,
``pool``) and scored against a Gaussian fitted on the training windows' pooled features: a
Mahalanobis distance in the top ``k`` principal directions plus the residual outside them
(scaled by its mean variance), reported as ``log(d^2)`` (``Atypicality.score``).

The ``high_uncertainty`` flag of a window then uses one risk, an equal-weight sum of the
expected r's shortfall and the atypicality, each standardised on good validation windows
(``Atypicality.risk``); the threshold keeps a set share of the good validation windows
unflagged (``training.calibration.fit_atypicality``).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.errors import BundleInvalid

ARRAYS = ("mean", "scale", "components", "variances")
SCALARS = ("residual_var", "er_ref", "er_spread", "score_ref", "score_spread", "weight",
           "threshold")


def pool(features: np.ndarray) -> np.ndarray:
    """Trunk features ``(L', C)`` of one window -> ``(3C,)``: mean, std and max |x| over
    time per channel (float64 out). The sums are matrix-vector products in the features'
    own precision (float32 from the trunk: ~1e-7 off the float64 moments, features lie in
    (-1, 1)), about 2x faster than converting the window to float64 first."""
    f = np.asarray(features)
    if f.dtype not in (np.float32, np.float64):
        f = f.astype(np.float64)
    w = np.full(len(f), 1.0 / len(f), dtype=f.dtype)
    mu = w @ f
    var = np.maximum(w @ (f * f) - mu * mu, 0.0)
    return np.concatenate([mu, np.sqrt(var), np.abs(f).max(axis=0)]).astype(np.float64)


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


@dataclass(frozen=True)
class Atypicality:
    """A fitted atypicality model and the flag risk's parameters (see the module text)."""

    mean: np.ndarray  # (D,) pooled-feature mean of the training windows
    scale: np.ndarray  # (D,) their std (features are standardised first)
    components: np.ndarray  # (k, D) top principal directions of the standardised features
    variances: np.ndarray  # (k,) variance along each
    residual_var: float  # mean variance per dimension outside the k directions
    er_ref: float = 0.0  # expected r of good validation windows: mean
    er_spread: float = 1.0  # ... and std
    score_ref: float = 0.0  # atypicality score of good validation windows: mean
    score_spread: float = 1.0  # ... and std
    weight: float = 0.5  # share of the expected r in the risk
    threshold: float = math.inf  # flag a window whose risk exceeds this

    def score(self, pooled: np.ndarray) -> float:
        """``log(d^2)`` of one window's pooled features ``(D,)``."""
        y = (np.asarray(pooled, dtype=np.float64) - self.mean) / self.scale
        p = self.components @ y
        resid = y - p @ self.components
        d2 = float(np.sum(p * p / self.variances) + resid @ resid / self.residual_var)
        return math.log(max(d2, 1e-12))

    def risk(self, expected_r: float, score: float) -> float:
        """The flag risk of a window: standardised expected-r shortfall and atypicality."""
        w = self.weight
        return (w * (self.er_ref - expected_r) / self.er_spread
                + (1.0 - w) * (score - self.score_ref) / self.score_spread)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: arrays as base64 little-endian float32 (with their shapes)."""
        out: dict[str, Any] = {"pooling": "mean, std, max |x| over time per trunk channel",
                               "encoding": "base64 little-endian float32"}
        for name in ARRAYS:
            a = np.asarray(getattr(self, name))
            out[name] = {"shape": list(a.shape), "data": _encode(a)}
        out.update({name: float(getattr(self, name)) for name in SCALARS})
        return out

    @classmethod
    def from_dict(cls, d: Any, where: str = "manifest",
                  path: str = "uncertainty.atypicality") -> Atypicality:
        """Parse ``to_dict``'s form; a bad field raises ``BundleInvalid`` naming it."""
        def fail(field: str, problem: str) -> BundleInvalid:
            return BundleInvalid(f"{where}: {path}.{field}: {problem}")

        if not isinstance(d, dict):
            raise BundleInvalid(f"{where}: {path}: expected an object, got {type(d).__name__}")
        arrays: dict[str, np.ndarray] = {}
        for name in ARRAYS:
            e = d.get(name)
            if not isinstance(e, dict) or not isinstance(e.get("shape"), list) \
                    or not isinstance(e.get("data"), str):
                raise fail(name, "expected {\"shape\": [...], \"data\": \"<base64>\"}")
            shape = e["shape"]
            if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                       for s in shape):
                raise fail(f"{name}.shape", f"expected positive ints, got {shape!r}")
            try:
                raw = base64.b64decode(e["data"], validate=True)
            except ValueError:
                raise fail(f"{name}.data", "not valid base64") from None
            if len(raw) != 4 * math.prod(shape):
                raise fail(f"{name}.data", f"{len(raw)} bytes for shape {shape} (expected "
                                           f"{4 * math.prod(shape)})")
            a = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(shape)
            if not np.isfinite(a).all():
                raise fail(f"{name}.data", "holds NaN or infinite values")
            arrays[name] = a
        D = arrays["mean"].shape
        k = arrays["variances"].shape
        if len(D) != 1 or arrays["scale"].shape != D:
            raise fail("scale", f"shape {list(arrays['scale'].shape)} does not match mean "
                                f"{list(D)}")
        if len(k) != 1 or arrays["components"].shape != (k[0], D[0]):
            raise fail("components", f"shape {list(arrays['components'].shape)}, expected "
                                     f"[{k[0] if len(k) == 1 else '?'}, {D[0]}]")
        for name in ("scale", "variances"):
            if not (arrays[name] > 0).all():
                raise fail(name, "must be positive")
        scalars: dict[str, float] = {}
        for name in SCALARS:
            v = d.get(name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise fail(name, f"expected a finite number, got {v!r}")
            scalars[name] = float(v)
        for name in ("residual_var", "er_spread", "score_spread"):
            if scalars[name] <= 0:
                raise fail(name, f"must be positive, got {scalars[name]!r}")
        if not 0.0 <= scalars["weight"] <= 1.0:
            raise fail("weight", f"must lie in [0, 1], got {scalars['weight']!r}")
        return cls(**arrays, **scalars)
