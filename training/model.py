"""Keras 3 models: the dual-branch reconstruction network and its baselines.

Three kinds (``ModelConfig.kind``):

* ``edge`` (our default): Lead I -> Conv1D (full rate) -> strided Conv1D (/4) -> BiLSTM, plus a
  metadata MLP, fused in a small head that upsamples by sub-pixel reshape. Training drops
  out after the BiLSTM (0.2, per channel), in the metadata layers (0.1) and before the head's
  output conv (0.3). The full-rate skip path is linear and deterministic, so it is folded into
  the trunk as ``skip`` and the head predicts a ``residual``: ``prediction = skip + residual``.
  MC dropout at inference samples only the last site (``mc_site``): the exported head
  (``build_mc_head``) runs its deterministic part once per window and only the output conv on
  the T masked copies of its hidden; the other sites run at their expectation and the
  log-variance comes from the unmasked hidden.
* ``paper``: the reference architecture as published (Hirata, Kubota, Nakanishi, Sensors 2026):
  Conv1D 128 k7 -> BiLSTM 128 -> dropout 0.2; metadata FC 256-128-64-32-16 (dropout 0.1) on
  one-hot binned ventricular rate, QRS duration, R axis, T axis, QRS count; concat -> dropout 0.3
  -> Conv1D 8 k3 -> dense to the 11 leads. MSE, Adam 1e-3.
* ``unet``: a 1-D U-Net baseline with the metadata injected at the bottleneck.

Layer names are shared between the training model and the trunk/head models built for export
(``build_trunk``, ``build_mc_head``), so ``copy_weights`` moves weights by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

from edge.leads import PREDICTED, RECONSTRUCTED
from edge.metadata import ENCODED_SIZE
from training.config import ModelConfig, TrainConfig
from training.paper_meta import PAPER_META_SIZE

DOWNSAMPLE = 4


def n_outputs(cfg: ModelConfig) -> int:
    return len(PREDICTED) if cfg.outputs == "independent" else len(RECONSTRUCTED)


@dataclass(frozen=True)
class MaskSite:
    """One MC-dropout site of the edge head: mask input name, channel count, drop rate."""

    name: str
    size: int
    rate: float


def mask_sites(cfg: ModelConfig) -> list[MaskSite]:
    """Dropout sites of the edge head, in the order the head takes its mask inputs."""
    sites = [MaskSite("mask_lstm", 2 * cfg.lstm_units, cfg.dropout_lstm)]
    sites += [MaskSite(f"mask_meta{i + 1}", u, cfg.dropout_meta)
              for i, u in enumerate(cfg.meta_units)]
    sites.append(MaskSite("mask_head", cfg.head_filters, cfg.dropout_head))
    return sites


# ----------------------------------------------------------------------------- edge kind
def _edge_trunk(cfg: ModelConfig, lead_i: keras.KerasTensor, unroll: bool = False) -> tuple:
    n_out = n_outputs(cfg)
    s = layers.Conv1D(cfg.conv_filters, cfg.conv_kernel, padding="same", activation=cfg.activation,
                      name="conv_in1")(lead_i)
    s = layers.Conv1D(cfg.conv_filters, cfg.conv_kernel, padding="same", activation=cfg.activation,
                      name="conv_in2")(s)
    if cfg.skip:
        skip = layers.Conv1D(n_out, 1, name="skip_proj")(s)
    else:  # keeps the trunk/head contract (prediction = skip + residual) with skip == 0
        skip = layers.Conv1D(n_out, 1, use_bias=False, kernel_initializer="zeros",
                             trainable=False, name="skip_proj")(s)
    d = layers.Conv1D(cfg.down_filters, 5, strides=2, padding="same", activation=cfg.activation,
                      name="down1")(s)
    d = layers.Conv1D(cfg.down_filters, 5, strides=2, padding="same", activation=cfg.activation,
                      name="down2")(d)
    feats = layers.Bidirectional(layers.LSTM(cfg.lstm_units, return_sequences=True, unroll=unroll),
                                 name="bilstm")(d)
    return feats, skip


def _edge_hidden(cfg: ModelConfig, window: int, feats, meta, drop) -> tuple:
    """Head up to its last dropout site: (h, m, gain). ``h``: hidden ``(L/4, head_filters)``
    before the last dropout; ``m``: metadata features; ``gain``: per-lead output gain (FiLM)
    or None. ``drop(x, site_index, sequence)`` applies dropout, a fed mask or nothing."""
    f = drop(feats, 0, True)
    m = meta
    for i, units in enumerate(cfg.meta_units):
        m = layers.Dense(units, activation=cfg.activation, name=f"meta_dense{i + 1}")(m)
        m = drop(m, i + 1, False)
    m_seq = layers.RepeatVector(window // DOWNSAMPLE, name="meta_repeat")(m)
    h = layers.Concatenate(name="fuse")([f, m_seq])
    h = layers.Conv1D(cfg.head_filters, 3, padding="same", activation=cfg.activation,
                      name="head_conv")(h)
    for i in range(2, cfg.head_layers + 1):  # deeper fusion: the metadata again each layer
        h = layers.Concatenate(name=f"fuse{i}")([h, m_seq])
        h = layers.Conv1D(cfg.head_filters, 3, padding="same", activation=cfg.activation,
                          name=f"head_conv{i}")(h)
    gain = None
    if cfg.film:  # h * scale(meta) + shift(meta); starts as the identity
        scale = layers.Dense(cfg.head_filters, kernel_initializer="zeros",
                             bias_initializer="ones", name="film_scale")(m)
        shift = layers.Dense(cfg.head_filters, kernel_initializer="zeros", name="film_shift")(m)
        scale = layers.RepeatVector(window // DOWNSAMPLE, name="film_scale_repeat")(scale)
        shift = layers.RepeatVector(window // DOWNSAMPLE, name="film_shift_repeat")(shift)
        h = layers.Add(name="film")([layers.Multiply(name="film_mul")([h, scale]), shift])
        # a per-lead output gain from the metadata (amplitudes follow the wearer)
        gain = layers.Dense(n_outputs(cfg), kernel_initializer="zeros", bias_initializer="ones",
                            name="lead_gain")(m)
    return h, m, gain


def _edge_out(cfg: ModelConfig, window: int, h, h_logvar, gain) -> tuple:
    """Output convs: residual from ``h`` (after the last dropout), log-variance from
    ``h_logvar``; returns (residual, log_var), log_var None unless ``cfg.aleatoric``."""
    n_out = n_outputs(cfg)
    out = layers.Conv1D(n_out * DOWNSAMPLE, 3, padding="same", name="head_out")(h)
    residual = layers.Reshape((window, n_out), name="subpixel")(out)
    if gain is not None:
        g = layers.RepeatVector(window, name="lead_gain_repeat")(gain)
        residual = layers.Multiply(name="lead_gain_apply")([residual, g])
    if not cfg.aleatoric:
        return residual, None
    lv = layers.Conv1D(n_out * DOWNSAMPLE, 3, padding="same", name="head_logvar")(h_logvar)
    return residual, layers.Reshape((window, n_out), name="logvar_subpixel")(lv)


def _edge_head(cfg: ModelConfig, window: int, feats, meta, drop) -> tuple:
    """Training head: every dropout site active (both outputs see the dropped ``h``)."""
    h, _, gain = _edge_hidden(cfg, window, feats, meta, drop)
    h = drop(h, len(cfg.meta_units) + 1, True)
    return _edge_out(cfg, window, h, h, gain)


def _build_edge(cfg: ModelConfig, window: int) -> keras.Model:
    lead_i = keras.Input((window, 1), name="lead_i")
    meta = keras.Input((ENCODED_SIZE,), name="meta")
    feats, skip = _edge_trunk(cfg, lead_i)
    sites = mask_sites(cfg)

    def drop(x, k: int, sequence: bool):
        shape = (None, 1, sites[k].size) if sequence else None
        return layers.Dropout(sites[k].rate, noise_shape=shape, name=f"drop_{sites[k].name}")(x)

    residual, log_var = _edge_head(cfg, window, feats, meta, drop)
    out = layers.Add(name="prediction")([skip, residual])
    if log_var is not None:
        out = layers.Concatenate(name="prediction_with_logvar")([out, log_var])
    return keras.Model([lead_i, meta], out, name="ecg12_edge")


def build_trunk(cfg: ModelConfig, window: int, batch: int | None = None,
                unroll: bool = False) -> keras.Model:
    """Deterministic part of the edge model: lead_i -> (features, skip).

    ``unroll=True`` unrolls the BiLSTM over time (for TFLite export without a WHILE loop).
    """
    lead_i = keras.Input((window, 1), batch_size=batch, name="lead_i")
    feats, skip = _edge_trunk(cfg, lead_i, unroll=unroll)
    feats = layers.Identity(name="features")(feats)
    skip = layers.Identity(name="skip")(skip)
    return keras.Model(lead_i, [feats, skip], name="ecg12_trunk")


def mc_site(cfg: ModelConfig) -> MaskSite:
    """The one dropout site sampled at inference (MC): the head's last, before the output
    conv. The other sites are trained with dropout and run at their expectation."""
    return mask_sites(cfg)[-1]


def _head_inputs(cfg: ModelConfig, window: int, batch: int | None) -> tuple:
    feats = keras.Input((window // DOWNSAMPLE, 2 * cfg.lstm_units), batch_size=batch,
                        name="features")
    meta = keras.Input((ENCODED_SIZE,), batch_size=batch, name="meta")
    return feats, meta


def _no_drop(x, k: int, sequence: bool):
    return x


class MaskChannels(layers.Layer):
    """``h (B, S, C) * mask (T, C)`` per channel, broadcast: B = 1 gives T masked copies of
    one window's hidden without repeating the layers before it."""

    def call(self, h, mask):
        return h * mask[:, None, :]


def build_mc_head(cfg: ModelConfig, window: int, batch: int | None = None) -> keras.Model:
    """The MC head, masks as inputs: (features, meta, mask_head) -> residual, log_var.

    Everything before the last dropout site is deterministic and runs on ``features``/``meta``
    as given (batch 1 in the bundle); the output conv runs on ``h * mask`` for each of the T
    masks (the batch of ``mask_head``); log_var comes from the unmasked ``h``."""
    site = mc_site(cfg)
    feats, meta = _head_inputs(cfg, window, batch)
    mask = keras.Input((site.size,), name=site.name)
    h, _, gain = _edge_hidden(cfg, window, feats, meta, _no_drop)
    hm = MaskChannels(name=f"apply_{site.name}")(h, mask)
    residual, log_var = _edge_out(cfg, window, hm, h, gain)
    residual = layers.Identity(name="residual")(residual)
    if log_var is None:
        return keras.Model([feats, meta, mask], residual, name="ecg12_mc_head")
    log_var = layers.Identity(name="log_var")(log_var)
    return keras.Model([feats, meta, mask], [residual, log_var], name="ecg12_mc_head")


# ----------------------------------------------------------------------------- paper kind
def _build_paper(cfg: ModelConfig, window: int) -> keras.Model:
    n_out = n_outputs(cfg)
    lead_i = keras.Input((window, 1), name="lead_i")
    meta = keras.Input((PAPER_META_SIZE,), name="meta")
    x = layers.Conv1D(128, 7, padding="same", activation="relu", name="conv")(lead_i)
    x = layers.Bidirectional(layers.LSTM(128, return_sequences=True), name="bilstm")(x)
    x = layers.Dropout(0.2, name="drop_lstm")(x)
    m = meta
    for units in (256, 128, 64, 32, 16):
        m = layers.Dense(units, activation="relu", name=f"meta_dense{units}")(m)
        m = layers.Dropout(0.1, name=f"drop_meta{units}")(m)
    m = layers.RepeatVector(window, name="meta_repeat")(m)
    h = layers.Concatenate(name="fuse")([x, m])
    h = layers.Dropout(0.3, name="drop_head")(h)
    h = layers.Conv1D(8, 3, padding="same", activation="relu", name="head_conv")(h)
    out = layers.Dense(n_out, name="prediction")(h)
    return keras.Model([lead_i, meta], out, name="ecg12_paper")


# ----------------------------------------------------------------------------- U-Net kind
def _build_unet(cfg: ModelConfig, window: int) -> keras.Model:
    n_out = n_outputs(cfg)
    lead_i = keras.Input((window, 1), name="lead_i")
    meta = keras.Input((ENCODED_SIZE,), name="meta")
    widths = (16, 32, 64)
    x = lead_i
    skips = []
    for i, w in enumerate(widths):
        x = layers.Conv1D(w, 9, padding="same", activation="relu", name=f"enc{i}_a")(x)
        x = layers.Conv1D(w, 9, padding="same", activation="relu", name=f"enc{i}_b")(x)
        skips.append(x)
        x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
    x = layers.Conv1D(128, 9, padding="same", activation="relu", name="bottleneck")(x)
    m = layers.Dense(16, activation="relu", name="meta_dense")(meta)
    m = layers.Dropout(0.1, name="drop_meta")(m)
    m = layers.RepeatVector(window // 2 ** len(widths), name="meta_repeat")(m)
    x = layers.Concatenate(name="fuse")([x, m])
    x = layers.Dropout(0.3, name="drop_bottleneck")(x)
    for i, w in reversed(list(enumerate(widths))):
        x = layers.UpSampling1D(2, name=f"up{i}")(x)
        x = layers.Concatenate(name=f"cat{i}")([x, skips[i]])
        x = layers.Conv1D(w, 9, padding="same", activation="relu", name=f"dec{i}_a")(x)
        x = layers.Dropout(0.1, name=f"drop_dec{i}")(x)
    out = layers.Conv1D(n_out, 1, name="prediction")(x)
    return keras.Model([lead_i, meta], out, name="ecg12_unet")


def build_model(cfg: TrainConfig) -> keras.Model:
    """The training model (dropout layers active when called with training=True)."""
    window = cfg.window
    if cfg.model.kind == "edge":
        model = _build_edge(cfg.model, window)
    elif cfg.model.kind == "paper":
        model = _build_paper(cfg.model, window)
    else:
        if window % 8:
            raise ValueError(f"U-Net needs a window divisible by 8, got {window}")
        model = _build_unet(cfg.model, window)
    aleatoric = cfg.model.kind == "edge" and cfg.model.aleatoric
    loss = (beta_nll(n_outputs(cfg.model), cfg.model.nll_beta, cfg.model.amplitude_loss,
                     cfg.model.decoupled_variance, cfg.model.correlation_loss,
                     cfg.model.correlation_leads)
            if aleatoric else
            mse_corr(n_outputs(cfg.model), cfg.model.correlation_loss,
                     cfg.model.correlation_leads) if cfg.model.correlation_loss else "mse")
    metrics = ([mean_mse(n_outputs(cfg.model))]
               if aleatoric or cfg.model.correlation_loss else None)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss,
                  metrics=metrics)
    return model


LOGVAR_MIN, LOGVAR_MAX = -12.0, 4.0


def is_aleatoric(model: keras.Model) -> bool:
    """True when the model's output holds [mean, log-variance] (a heteroscedastic head)."""
    return any(layer.name == "prediction_with_logvar" for layer in model.layers)


def with_derived(y: Any, lead_i: Any) -> Any:
    """``(B, L, 7)`` II, V1-V6 and ``(B, L)`` Lead I -> ``(B, L, 11)`` II, III, aVR, aVL,
    aVF, V1-V6 (Einthoven/Goldberger, as ``edge.leads.assemble_12_lead`` derives them)."""
    ops = keras.ops
    ii = y[..., 0]
    limb = ops.stack([ii, ii - lead_i, -(lead_i + ii) / 2, lead_i - ii / 2, ii - lead_i / 2],
                     axis=-1)
    return ops.concatenate([limb, y[..., 1:]], axis=-1)


def pearson_over_time(pred: Any, true: Any) -> Any:
    """Pearson r over the time axis (1), per window and lead -> ``(B, leads)``."""
    ops = keras.ops
    a = pred - ops.mean(pred, axis=1, keepdims=True)
    b = true - ops.mean(true, axis=1, keepdims=True)
    return ops.sum(a * b, axis=1) / ops.sqrt(
        ops.sum(a * a, axis=1) * ops.sum(b * b, axis=1) + 1e-8)


def beta_nll(k: int, beta: float, amplitude: float = 0.0, decoupled: bool = False,
             correlation: float = 0.0, correlation_leads: str = "predicted"):
    """beta-NLL (Seitzer et al., ICLR 2022) of a Gaussian with predicted log-variance.

    y_pred = [mean (k), log_var (k)]; each sample's NLL is weighted by stop_grad(var)**beta so
    that the mean keeps learning where the predicted variance is large. ``amplitude`` > 0 adds
    ``amplitude * mean_leads (std_t(mean) - std_t(true))**2`` per window (std over time), a
    penalty on shrunken amplitudes (regression to the mean). ``correlation`` > 0 adds
    ``correlation * mean_leads (1 - r)`` per window, r = Pearson r over time; with
    ``correlation_leads="all11"`` over the 11 reconstructed leads (III, aVR, aVL, aVF derived
    from II and Lead I), and ``y_true`` then carries Lead I as an extra last channel
    (``training.dataset.fit_target``).
    ``decoupled``: MSE of the mean plus the NLL of the log-variance around
    ``stop_gradient(mean)`` (beta unused).
    """
    ops = keras.ops

    def loss(y_true, y_pred):
        lead_i = y_true[..., k] if correlation_leads == "all11" else None
        y_true = y_true[..., :k]
        mu, lv = y_pred[..., :k], ops.clip(y_pred[..., k:], LOGVAR_MIN, LOGVAR_MAX)
        var = ops.exp(lv)
        if decoupled:
            sq = ops.square(y_true - mu)
            nll = sq + 0.5 * (lv + ops.stop_gradient(sq) / var)
        else:
            nll = 0.5 * (lv + ops.square(y_true - mu) / var)
            if beta:
                nll = nll * ops.stop_gradient(var) ** beta
        out = ops.mean(nll, axis=-1)
        if amplitude:
            gap = ops.square(ops.std(mu, axis=1) - ops.std(y_true, axis=1))  # (B, k)
            out = out + amplitude * ops.mean(gap, axis=-1)[:, None]
        if correlation:
            if lead_i is not None:
                r = pearson_over_time(with_derived(mu, lead_i), with_derived(y_true, lead_i))
            else:
                r = pearson_over_time(mu, y_true)  # (B, k)
            out = out + correlation * ops.mean(1.0 - r, axis=-1)[:, None]
        return out

    loss.__name__ = "beta_nll"
    return loss


def mse_corr(k: int, correlation: float, correlation_leads: str = "predicted"):
    """MSE plus ``correlation * mean_leads (1 - r)`` per window for a model without a
    variance head (the U-Net): the same correlation term as ``beta_nll``'s, so that a
    baseline can be trained the same way."""
    ops = keras.ops

    def loss(y_true, y_pred):
        lead_i = y_true[..., k] if correlation_leads == "all11" else None
        y_true = y_true[..., :k]
        out = ops.mean(ops.square(y_true - y_pred[..., :k]), axis=-1)
        if lead_i is not None:
            r = pearson_over_time(with_derived(y_pred[..., :k], lead_i),
                                  with_derived(y_true, lead_i))
        else:
            r = pearson_over_time(y_pred[..., :k], y_true)
        return out + correlation * ops.mean(1.0 - r, axis=-1)[:, None]

    loss.__name__ = "mse_corr"
    return loss


def mean_mse(k: int):
    """MSE of the mean part of a [mean, log_var] output (comparable with plain models)."""

    def mse(y_true, y_pred):  # y_true may carry Lead I after the k targets (all11 term)
        return keras.ops.mean(keras.ops.square(y_true[..., :k] - y_pred[..., :k]), axis=-1)

    mse.__name__ = "mse"
    return mse


def copy_weights(src: keras.Model, dst: keras.Model) -> int:
    """Copy weights layer by layer where names match; returns the number of layers copied."""
    by_name = {layer.name: layer for layer in src.layers}
    copied = 0
    for layer in dst.layers:
        if layer.weights and layer.name in by_name:
            layer.set_weights(by_name[layer.name].get_weights())
            copied += 1
    return copied
