"""A loaded bundle: validated manifest + LiteRT trunk/head sessions; MC dropout per window.

Trunk and head run once per window. MC dropout samples one site, the head's last: the head
takes the window's features and metadata (batch 1) and T masks drawn here with numpy (values
{0, 1/(1-rate)}, per channel) and runs its deterministic part once. The output conv is
linear in the mask, so the mask of ones gives the exact MC mean. A moments-form head (what
``ecg12 convert`` writes) computes each channel's contribution to the output conv once and
the T masks' deviations from the mean as one batched matmul, and returns the mean, the MC
variance (mean squared deviation) and the deviations; a samples-form head runs the output
conv on the T masked copies plus the mask of ones and the mean and variance are reduced
here from views of its buffers. Both also give one predicted log-variance. Tensors are
matched by name through the signature's input/output details (falling back to the graph's
tensor names), never by index. LiteRT is imported lazily: ``ai_edge_litert`` then
``tflite_runtime``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from edge.atypicality import pool
from edge.errors import BundleInvalid, BundleNotFound, InputInvalid, RuntimeUnavailable
from edge.manifest import FileSpec, Manifest, load_manifest
from edge.metadata import is_clinical

#: clip range of a heteroscedastic head's log-variance (same as training.model)
LOGVAR_MIN, LOGVAR_MAX = -12.0, 4.0

DEFAULT_BUNDLE = Path(__file__).parent / "bundles" / "default"


def interpreter_class() -> type:
    """The LiteRT ``Interpreter`` class (ai-edge-litert, else tflite-runtime)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise RuntimeUnavailable("no TFLite runtime: neither ai_edge_litert nor "
                                     "tflite_runtime can be imported") from None
    return Interpreter


def _canonical(name: str) -> str:
    name = re.sub(r":\d+$", "", name)
    return re.sub(r"^serving_default_", "", name)


class _Session:
    """One interpreter with its tensors resolved by name (``{name: detail}``)."""

    def __init__(self, path: Path, spec: FileSpec, which: str, num_threads: int | None) -> None:
        self.which, self.spec = which, spec
        try:
            self.interp = interpreter_class()(model_path=str(path), num_threads=num_threads)
        except (ValueError, RuntimeError) as e:
            raise BundleInvalid(f"{path}: LiteRT cannot load the {which} model: {e}") from None
        if spec.reset_state:
            # a stateful (fused LSTM) model needs its tensors allocated before the first
            # reset_all_variables() (which precedes every invoke), and before a signature
            # runner (for the tensor names) takes references to them
            self.interp.allocate_tensors()
        ins, outs = self._details()
        want_in = [t.name for t in spec.inputs]
        want_out = [t.name for t in spec.outputs]
        self.inputs = self._match(ins, want_in, "input", path)
        self.outputs = self._match(outs, want_out, "output", path)
        self.interp.allocate_tensors()

    def _details(self) -> tuple[dict[str, dict], dict[str, dict]]:
        """Tensors by name: the signature's (its runner is then let go: while one exists,
        LiteRT refuses to invoke with a view of its buffers alive), else the graph's."""
        sigs = self.interp.get_signature_list() if hasattr(self.interp,
                                                          "get_signature_list") else {}
        if len(sigs) == 1:
            runner = self.interp.get_signature_runner(next(iter(sigs)))
            return runner.get_input_details(), runner.get_output_details()
        ins = {_canonical(d["name"]): d for d in self.interp.get_input_details()}
        outs = {_canonical(d["name"]): d for d in self.interp.get_output_details()}
        return ins, outs

    def _match(self, got: dict[str, dict], want: list[str], kind: str, path: Path) -> dict:
        out = {}
        for i, name in enumerate(want):
            if name in got:
                out[name] = dict(got[name])
            elif kind == "output" and f"output_{i}" in got:  # Keras default naming
                out[name] = dict(got[f"output_{i}"])
            else:
                raise BundleInvalid(f"{path}: {self.which} model has no {kind} named {name!r} "
                                    f"(found {sorted(got)})")
        return out

    def run(self, feed: dict[str, np.ndarray], views: bool = False) -> dict[str, np.ndarray]:
        """Feed inputs by name (resizing the batch when it changes), invoke, read outputs.

        ``views``: float outputs come back as views of the interpreter's buffers (no copy:
        the MC head's T residuals are the largest array of a window), valid only until this
        session runs again and to be dropped before it does (LiteRT refuses to invoke while
        a view is alive)."""
        if self.spec.reset_state:
            self.interp.reset_all_variables()
        q = {name: _quantize(arr, self.inputs[name]) for name, arr in feed.items()}
        resized = False
        for name, arr in q.items():
            d = self.inputs[name]
            if tuple(d["shape"]) != arr.shape:
                self.interp.resize_tensor_input(d["index"], list(arr.shape), strict=True)
                d["shape"] = np.asarray(arr.shape)
                resized = True
        if resized:
            self.interp.allocate_tensors()
        for name, arr in q.items():
            self.interp.set_tensor(self.inputs[name]["index"], arr)
        self.interp.invoke()
        if views:
            return {name: _dequantize(self.interp.tensor(d["index"])(), d)
                    for name, d in self.outputs.items()}
        return {name: _dequantize(self.interp.get_tensor(d["index"]), d)
                for name, d in self.outputs.items()}


def _quantize(x: np.ndarray, d: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(d["dtype"])
    if dtype.kind == "f":
        return np.ascontiguousarray(x, dtype=dtype)
    scale, zero = d.get("quantization", (0.0, 0))
    info = np.iinfo(dtype)
    q = np.round(x / (scale or 1.0)) + zero
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(x: np.ndarray, d: dict[str, Any]) -> np.ndarray:
    if x.dtype.kind == "f":  # a copy already (get_tensor) or a view by request
        return x.astype(np.float32, copy=False)
    scale, zero = d.get("quantization", (1.0, 0))
    return ((x.astype(np.float32) - zero) * (scale or 1.0)).astype(np.float32)


def dropout_masks(n: int, size: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """``(n, size)`` inverted-dropout masks: 0 with probability ``rate``, else 1/(1-rate)."""
    keep = rng.random((n, size)) >= rate
    return (keep / (1.0 - rate)).astype(np.float32)


class Bundle:
    """Manifest + trunk/head interpreters. ``predict_window`` gives MC mean/std per window."""

    #: the head gives the MC moments (mean, variance, deviations), not T sampled residuals
    moments: bool = False

    def __init__(self, manifest: Manifest, num_threads: int | None = None) -> None:
        self.manifest = manifest
        self.trunk = _Session(manifest.file_path("trunk"), manifest.trunk, "trunk", num_threads)
        self.head = _Session(manifest.file_path("head"), manifest.head, "head", num_threads)
        self.moments = "mc_var" in self.head.outputs
        u = manifest.uncertainty
        self.scale = np.asarray(u.scale, dtype=np.float32)
        self.scale_clinical = np.asarray(u.scale_clinical or u.scale, dtype=np.float32)
        self.flag_std_mv = np.asarray(u.flag_std_mv, dtype=np.float32)

    @classmethod
    def load(cls, path: str | Path | None = None, num_threads: int | None = None) -> Bundle:
        """Load the bundle at ``path`` (default: the shipped ``edge/bundles/default``)."""
        p = Path(path) if path is not None else DEFAULT_BUNDLE
        if path is None and not (p / "manifest.json").is_file():
            raise BundleNotFound(f"the default bundle is not installed ({p} has no "
                                 "manifest.json)", advice="pass a bundle path explicitly")
        return cls(load_manifest(p), num_threads=num_threads)

    @property
    def window(self) -> int:
        return self.manifest.model.window

    @property
    def hop(self) -> int:
        return self.manifest.model.hop

    @property
    def fs_hz(self) -> float:
        return self.manifest.model.fs_hz

    def masks(self, n: int, rng: np.random.Generator | None) -> np.ndarray:
        """Inverted-dropout masks ``(n, C)`` of the MC site; ``rng=None`` gives all ones."""
        site = self.manifest.mc.masks[0]
        if rng is None:
            return np.ones((n, site.size), np.float32)
        return dropout_masks(n, site.size, site.rate, rng)

    def head_samples(self, lead_i: np.ndarray, meta: np.ndarray, masks: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Trunk once, head on ``masks (T, C)``: skip ``(L, 7)``, residuals ``(T, L, 7)`` and
        the predicted variance ``(L, 7)`` (None for a head without log_var)."""
        return self._head(self._trunk(lead_i), meta, masks)

    def _trunk(self, lead_i: np.ndarray, views: bool = False) -> dict[str, np.ndarray]:
        L = self.window
        x = np.asarray(lead_i, dtype=np.float32)
        if x.shape != (L,):
            raise InputInvalid(f"window must have shape ({L},), got {x.shape}")
        return self.trunk.run({"lead_i": (x * self.manifest.model.input_scale)[None, :, None]},
                              views=views)

    def _head(self, out: dict[str, np.ndarray], meta: np.ndarray, masks: np.ndarray,
              views: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``views`` (``_Session.run``) where one head call takes every mask."""
        meta = self._meta(meta)
        if self.moments:  # samples = the exact mean + each mask's deviation
            head = self._moments(out, meta, masks)
            dev = head["deviation"].transpose(1, 0, 2).reshape(len(masks), *self._shape)
            res = head["residual_mean"] + dev
        else:
            head, res = self._samples(out, meta, masks, views)
        return out["skip"][0], res, self._variance(head)

    def _meta(self, meta: np.ndarray) -> np.ndarray:
        meta = np.asarray(meta, dtype=np.float32)
        if meta.shape != (self.manifest.metadata.encoded_size,):
            raise InputInvalid(f"meta vector must have shape "
                               f"({self.manifest.metadata.encoded_size},), got {meta.shape}")
        return meta

    def _moments(self, out: dict[str, np.ndarray], meta: np.ndarray, masks: np.ndarray,
                 views: bool = False) -> dict[str, np.ndarray]:
        site = self.manifest.mc.masks[0].name
        return self.head.run({"features": out["features"], "meta": meta[None], site: masks},
                             views=views)

    def _samples(self, out: dict[str, np.ndarray], meta: np.ndarray, masks: np.ndarray,
                 views: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """A samples-form head: ``(last call's outputs, residuals (T, L, 7))``."""
        site = self.manifest.mc.masks[0].name
        fixed = self.manifest.head.batch  # a head converted for a fixed T: pad with ones
        step = fixed or len(masks)
        views = views and step >= len(masks)  # parts of several calls must be copies
        parts, head = [], {}
        for s in range(0, len(masks), step):
            m = masks[s:s + step]
            if fixed and len(m) < fixed:
                m = np.concatenate([m, np.ones((fixed - len(m), m.shape[1]), np.float32)])
            head = self.head.run({"features": out["features"], "meta": meta[None], site: m},
                                 views=views)
            parts.append(head["residual"][:len(masks) - s])  # drop the padding rows
        return head, parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _variance(self, head: dict[str, np.ndarray]) -> np.ndarray | None:
        """The predicted (aleatoric) variance ``(L, 7)``, or None."""
        if not self.manifest.uncertainty.aleatoric:
            return None
        return np.exp(np.clip(head["log_var"][0], LOGVAR_MIN, LOGVAR_MAX))

    @property
    def _shape(self) -> tuple[int, int]:
        return self.window, len(self.manifest.model.predicted_leads)

    def predict_window(self, lead_i: np.ndarray, meta: np.ndarray, mc_samples: int,
                       rng: np.random.Generator | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``lead_i (L,)`` mV at the model rate -> (mean, calibrated std), each ``(L, 7)``.

        The mean is the exact MC mean: the output conv is linear in the masked hidden and the
        masks have expectation 1, so it is the pass with a mask of ones (the head's
        ``residual_mean``, or one extra row of a samples-form head). ``mc_samples = 0``: that
        pass only, std from the predicted variance.
        Otherwise std = sqrt(mean squared deviation of the T MC samples from the exact mean
        + predicted variance), times the calibration scale of the metadata's regime
        (``uncertainty.calibration.scale_clinical`` when it has an R or T axis).
        """
        mean, std, _ = self.run_window(lead_i, meta, mc_samples, rng)
        return mean, std

    def run_window(self, lead_i: np.ndarray, meta: np.ndarray, mc_samples: int,
                   rng: np.random.Generator | None = None
                   ) -> tuple[np.ndarray, np.ndarray, float | None]:
        """``predict_window``'s (mean, std) and the window's atypicality score
        (``edge.atypicality``; None for a bundle without an atypicality model)."""
        if not isinstance(mc_samples, int | np.integer) or mc_samples < 0:
            raise InputInvalid(f"mc_samples must be an integer >= 0, got {mc_samples!r}")
        if mc_samples > 0 and rng is None:
            raise InputInvalid("mc_samples > 0 needs an rng (numpy Generator)")
        t = int(mc_samples)
        out = self._trunk(lead_i, views=True)
        atyp = self.manifest.uncertainty.atypicality
        score = None if atyp is None else atyp.score(pool(out["features"][0]))
        if self.moments:  # one head call; T = 0 still feeds one mask (of ones)
            meta = self._meta(meta)
            head = self._moments(out, meta, self.masks(t, rng) if t else self.masks(1, None),
                                 views=True)
            mean = out["skip"][0] + head["residual_mean"][0]
            total = head["mc_var"][0] if t else np.zeros_like(mean)
            var = self._variance(head)
        else:
            ones = self.masks(1, None)
            masks = np.concatenate([self.masks(t, rng), ones]) if t else ones  # last: the mean
            skip, res, var = self._head(out, meta, masks, views=True)  # views: die on return
            res_mean = res[-1]
            mean = skip + res_mean
            if t:  # mean squared deviation from the exact mean, without temporaries
                d = np.subtract(res[:-1], res_mean, out=self._work(res[:-1].shape))
                total = np.einsum("tij,tij->ij", d, d) / np.float32(t)
            else:
                total = np.zeros_like(skip)
        if var is not None:
            total = total + var
        scale = self.scale_clinical if is_clinical(meta) else self.scale
        std = np.sqrt(total) * scale
        return mean.astype(np.float32, copy=False), std.astype(np.float32, copy=False), score

    def _work(self, shape: tuple[int, ...]) -> np.ndarray:
        """A reused float32 scratch array of ``shape`` (the centred MC residuals)."""
        w = getattr(self, "_scratch", None)
        if w is None or w.shape != shape:
            w = self._scratch = np.empty(shape, np.float32)
        return w
