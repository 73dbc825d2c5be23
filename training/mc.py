"""MC-dropout prediction with a Keras training model, and assembly into 12 leads.

``mc_predict`` returns the mean and std over T stochastic passes in model-output space
``(N, L, n_out)``. An edge model is sampled as the gateway samples it: only its last dropout
site, with numpy masks (``edge.bundle.dropout_masks``), the rest at the expectation and the
log-variance from the unmasked hidden (``edge_mc``); other kinds run T passes with every
dropout layer active (``training=True``).
``to_12_lead`` turns model outputs into ``(N, L, 12)`` leads and stds: for "independent"
models the limb leads are derived from I and II (``edge.leads``); for "all11" the 11 outputs
are the reconstructed leads themselves. Lead I is the measured input (std 0).
"""

from __future__ import annotations

import keras
import numpy as np

from edge.bundle import dropout_masks
from edge.leads import assemble_12_lead, derived_std
from training.model import LOGVAR_MAX, LOGVAR_MIN, is_aleatoric


class PredictionError(ValueError):
    """Model inputs have unexpected shapes or a bad sample count."""


def _check(lead_i: np.ndarray, meta: np.ndarray) -> None:
    if lead_i.ndim != 3 or lead_i.shape[2] != 1:
        raise PredictionError(f"lead_i must be (N, L, 1); got {lead_i.shape}")
    if meta.ndim != 2 or meta.shape[0] != lead_i.shape[0]:
        raise PredictionError(f"meta must be (N, M) with N={lead_i.shape[0]}; got {meta.shape}")


def predict(model: keras.Model, lead_i: np.ndarray, meta: np.ndarray, batch: int = 64
            ) -> np.ndarray:
    """Deterministic prediction (dropout off) -> ``(N, L, n_out)`` float32."""
    _check(lead_i, meta)
    k = n_model_outputs(model)
    if lead_i.shape[0] == 0:
        return np.zeros((0, lead_i.shape[1], k), np.float32)
    out = np.asarray(model.predict([lead_i, meta], batch_size=batch, verbose=0), np.float32)
    return out[..., :k]


def n_model_outputs(model: keras.Model) -> int:
    """Number of predicted leads (a heteroscedastic model also outputs their log-variance)."""
    k = model.output_shape[-1]
    return k // 2 if is_aleatoric(model) else k


def _reseed(model: keras.Model, seed: int) -> None:
    """Reset every dropout layer's seed generator so that a seed gives the same masks."""
    keras.utils.set_random_seed(seed)
    for i, layer in enumerate(model.layers):
        gen = getattr(layer, "seed_generator", None)
        if gen is not None:
            dtype = keras.backend.standardize_dtype(gen.state.dtype)
            gen.state.assign(np.array([seed, i + 1], dtype=dtype))


class EdgeMC:
    """The Keras MC model of an edge model: ``parts`` gives skip, the hidden before the last
    dropout (and the FiLM gain); the output convs are applied to the masked hidden."""

    def __init__(self, model: keras.Model) -> None:
        names = {layer.name for layer in model.layers}
        outs = [model.get_layer("skip_proj").output, model.get_layer("drop_mask_head").input]
        self.film = "lead_gain" in names
        if self.film:
            outs.append(model.get_layer("lead_gain").output)
        self.parts = keras.Model(model.inputs, outs)
        self.rate = float(model.get_layer("drop_mask_head").rate)
        self.head_out = model.get_layer("head_out")
        self.head_logvar = model.get_layer("head_logvar") if is_aleatoric(model) else None

    @staticmethod
    def applies(model: keras.Model) -> bool:
        return any(layer.name == "drop_mask_head" for layer in model.layers)

    def samples(self, lead_i: np.ndarray, meta: np.ndarray, masks: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions ``(N, T, L, k)`` for masks ``(N, T, C)``, and the predicted variance
        ``(N, L, k)`` (None without a log-variance head)."""
        out = self.parts([lead_i, meta], training=False)
        skip, h = (keras.ops.convert_to_numpy(o) for o in out[:2])
        n, t, c = masks.shape
        L, k = skip.shape[1:]
        hm = (h[:, None] * masks[:, :, None, :]).reshape(n * t, *h.shape[1:])
        res = keras.ops.convert_to_numpy(self.head_out(hm)).reshape(n, t, L, k)
        if self.film:
            res = res * keras.ops.convert_to_numpy(out[2])[:, None, None, :]
        pred = skip[:, None].astype(np.float64) + res
        var = None
        if self.head_logvar is not None:
            lv = keras.ops.convert_to_numpy(self.head_logvar(h)).reshape(n, L, k)
            var = np.exp(np.clip(lv, LOGVAR_MIN, LOGVAR_MAX)).astype(np.float64)
        return pred, var


def pooled_trunk_features(model: keras.Model, lead_i: np.ndarray, batch: int = 256
                          ) -> np.ndarray | None:
    """Pooled trunk features (``edge.atypicality.pool``) of each window ``(N, L, 1)`` ->
    ``(N, D)``; None for a model without the edge trunk (no ``bilstm`` layer)."""
    from edge.atypicality import pool

    if not any(layer.name == "bilstm" for layer in model.layers):
        return None
    trunk = keras.Model(model.inputs[0], model.get_layer("bilstm").output)
    out = []
    for s in range(0, len(lead_i), batch):
        f = keras.ops.convert_to_numpy(trunk(lead_i[s:s + batch], training=False))
        out.extend(pool(w) for w in f)
    return np.stack(out) if out else np.zeros((0, 0))


def mc_predict(model: keras.Model, lead_i: np.ndarray, meta: np.ndarray, T: int,
               seed: int = 0, batch: int = 512, aleatoric: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over ``T`` dropout passes -> two ``(N, L, n_out)`` float32 arrays.

    An edge model is sampled as ``edge.bundle.Bundle.run_window`` samples it: the mean is the
    pass with a mask of ones (exact: the output conv is linear in the mask), the MC variance
    the mean squared deviation of the T masked passes from it.

    For a heteroscedastic model the std is the total sqrt(var_MC(mean) + predicted variance)
    unless ``aleatoric=False`` (MC spread only). ``batch`` bounds windows x passes per call.
    """
    _check(lead_i, meta)
    if T < 2:
        raise PredictionError(f"MC dropout needs T >= 2 samples; got {T}")
    n, L = lead_i.shape[:2]
    k = n_model_outputs(model)
    het = is_aleatoric(model)
    mean = np.zeros((n, L, k), np.float32)
    std = np.zeros((n, L, k), np.float32)
    per = max(1, batch // T)
    edge = EdgeMC(model) if EdgeMC.applies(model) else None
    rng = np.random.default_rng(seed)
    if edge is None:
        _reseed(model, seed)
    for s in range(0, n, per):
        e = min(n, s + per)
        if edge is not None:  # T masks and a mask of ones (the exact mean), as the gateway
            c = edge.head_out.input.shape[-1]
            masks = dropout_masks((e - s) * T, c, edge.rate, rng).reshape(e - s, T, c)
            ones = np.ones((e - s, 1, c), np.float32)
            mu, pvar = edge.samples(lead_i[s:e], meta[s:e], np.concatenate([masks, ones], 1))
            mean[s:e] = mu[:, -1]
            var = np.mean((mu[:, :-1] - mu[:, -1:]) ** 2, axis=1)
        else:
            x = np.repeat(lead_i[s:e], T, axis=0)
            m = np.repeat(meta[s:e], T, axis=0)
            out = keras.ops.convert_to_numpy(model([x, m], training=True))
            out = out.reshape(e - s, T, L, -1).astype(np.float64)
            mu = out[..., :k]
            pvar = (np.exp(np.clip(out[..., k:], LOGVAR_MIN, LOGVAR_MAX)).mean(axis=1)
                    if het else None)
            mean[s:e] = mu.mean(axis=1)
            var = mu.var(axis=1, ddof=1)
        if pvar is not None and aleatoric:
            var = var + pvar
        std[s:e] = np.sqrt(var)
    return mean, std


def to_12_lead(lead_i: np.ndarray, out: np.ndarray, outputs: str,
               std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Model outputs (and their std) -> ``(N, L, 12)`` leads (and std; Lead I std = 0)."""
    n, L = lead_i.shape[:2]
    if outputs == "independent":
        leads = np.stack([assemble_12_lead(lead_i[i, :, 0], out[i]) for i in range(n)]) \
            if n else np.zeros((0, L, 12), np.float32)
    elif outputs == "all11":
        leads = np.concatenate([lead_i, out], axis=2).astype(np.float32)
    else:
        raise PredictionError(f"model outputs {outputs!r} is not 'independent' or 'all11'")
    if std is None:
        return leads, None
    s12 = np.zeros((n, L, 12), np.float32)
    if outputs == "independent":
        s12[:, :, 1] = std[:, :, 0]
        s12[:, :, 2:6] = derived_std(std[:, :, 0])
        s12[:, :, 6:] = std[:, :, 1:]
    else:
        s12[:, :, 1:] = std
    return leads, s12
