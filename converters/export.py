"""Keras -> TFLite for the edge model split: trunk (once per window) and MC head (T masks).

LSTM options for the trunk (the head has no LSTM):

* ``unrolled`` — Keras 3 BiLSTM with ``unroll=True``: plain ops, XNNPACK-delegated.
* ``while`` — Keras 3 BiLSTM as converted by default: a WHILE loop, fixed batch 1.
* ``fused`` — a ``tf_keras`` twin with copied weights, giving the fused
  UNIDIRECTIONAL_SEQUENCE_LSTM op; its state persists across ``invoke()``, so the runtime
  must call ``reset_all_variables()`` before every window (manifest ``files.trunk.reset_state``).

Quantizations: ``float32``, ``float16`` (weights), ``dynamic_int8`` (weights, dynamic-range
activations), ``int8`` (full-integer kernels from a representative dataset; float I/O).
Inputs/outputs keep float32 so the gateway code is the same for every variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import keras
import numpy as np
import tensorflow as tf

from converters.errors import ConversionError
from training.config import ModelConfig
from training.model import DOWNSAMPLE, build_mc_head, build_trunk, copy_weights, mc_site

QUANTS = ("float32", "float16", "dynamic_int8", "int8")
LSTMS = ("unrolled", "fused", "while")
Representative = Callable[[], Iterator[dict[str, np.ndarray]]]


def _quantize(conv: tf.lite.TFLiteConverter, quant: str, rep: Representative | None) -> None:
    if quant not in QUANTS:
        raise ConversionError(f"unknown quantization {quant!r}; use one of {list(QUANTS)}")
    if quant == "float32":
        return
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if quant == "float16":
        conv.target_spec.supported_types = [tf.float16]
    elif quant == "int8":
        if rep is None:
            raise ConversionError("int8 needs a representative dataset (training windows)")
        conv.representative_dataset = rep
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]


def _convert(conv: tf.lite.TFLiteConverter, what: str) -> bytes:
    try:
        return conv.convert()
    except Exception as exc:  # the converter raises many types; report, don't hide
        reason = str(exc).strip().splitlines()
        short = next((r for r in reason if "error" in r.lower()), reason[0] if reason else "")
        raise ConversionError(f"{what}: conversion failed: {type(exc).__name__}: "
                              f"{short[:300]}") from exc


def _from_function(fn, model) -> tf.lite.TFLiteConverter:
    """Converter for a tf.function over a Keras 3 model; a tf.Module holds its variables
    (passing the Keras model itself as the trackable leaves them unfrozen: NaN outputs)."""
    holder = tf.Module()
    holder.variables_ = [v.value for v in model.variables]
    holder.serve = fn
    return tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], holder)


def lstm_input_factors(trunk, lstm_in: np.ndarray, rank: int) -> dict[str, tuple]:
    """Rank-``rank`` factors of each BiLSTM direction's input contribution ``x W``, fitted on
    ``lstm_in`` (the BiLSTM's inputs on training windows, ``(N, C)``): ``x W + b`` becomes
    ``((x - mu) W V) V^T + (b + mu W)`` with ``V`` the top right singular vectors of the
    centred ``(x - mu) W`` (the best rank-``rank`` fit of it on those windows). Per direction:
    (projection kernel ``W V`` (C, r), projection bias ``-mu W V`` (r,), LSTM input kernel
    ``V^T`` (r, 4U), LSTM bias ``b + mu W`` (4U,)) and the unexplained share of the energy."""
    layer = trunk.get_layer("bilstm")
    x = np.asarray(lstm_in, np.float64)
    mu = x.mean(axis=0)
    out: dict[str, tuple] = {}
    for name, d in (("forward", layer.forward_layer), ("backward", layer.backward_layer)):
        w, _, b = (np.asarray(v, np.float64) for v in d.get_weights())
        if not 0 < rank < w.shape[0]:
            raise ConversionError(f"lstm input rank {rank} must lie in 1..{w.shape[0] - 1} "
                                  f"(the BiLSTM has {w.shape[0]} inputs)")
        z = (x - mu) @ w
        _, sv, vt = np.linalg.svd(z, full_matrices=False)
        v = vt[:rank].T  # (4U, r)
        resid = float(1.0 - np.sum(sv[:rank] ** 2) / np.sum(sv ** 2))
        out[name] = (w @ v, -(mu @ w) @ v, v.T, b + mu @ w, resid)
    return out


def _fused_twin(cfg: ModelConfig, window: int, trunk, factors: dict[str, tuple] | None = None
                ) -> object:
    """tf_keras copy of the trunk (same layer names and weights) for the fused LSTM op;
    with ``factors`` (``lstm_input_factors``) each direction's LSTM reads a low-rank
    projection of its input."""
    try:
        import tf_keras
    except ImportError:
        raise ConversionError("lstm='fused' needs tf_keras: pip install 'tf-keras==2.21.*' "
                              "(part of the [train] extra)") from None
    L = tf_keras.layers
    n_out = trunk.get_layer("skip_proj").filters

    def conv(x, filters: int, kernel: int, name: str, strides: int = 1):
        """Conv1D + the Keras-3 activation of the trunk (leaky_relu: negative slope 0.2)."""
        if cfg.activation == "leaky_relu":
            x = L.Conv1D(filters, kernel, strides=strides, padding="same", name=name)(x)
            return L.LeakyReLU(alpha=0.2, name=f"{name}_act")(x)
        return L.Conv1D(filters, kernel, strides=strides, padding="same",
                        activation=cfg.activation, name=name)(x)

    x_in = tf_keras.Input((window, 1), batch_size=1, name="lead_i")
    s = conv(x_in, cfg.conv_filters, cfg.conv_kernel, "conv_in1")
    s = conv(s, cfg.conv_filters, cfg.conv_kernel, "conv_in2")
    skip = L.Conv1D(n_out, 1, use_bias=cfg.skip, name="skip_proj")(s)
    d = conv(s, cfg.down_filters, 5, "down1", strides=2)
    d = conv(d, cfg.down_filters, 5, "down2", strides=2)
    if factors is None:
        f = L.Bidirectional(L.LSTM(cfg.lstm_units, return_sequences=True), name="bilstm")(d)
    else:
        r = factors["forward"][2].shape[0]
        pf = L.Dense(r, name="lstm_in_forward")(d)
        pb = L.Dense(r, name="lstm_in_backward")(d)
        ff = L.LSTM(cfg.lstm_units, return_sequences=True, name="lstm_forward")(pf)
        fb = L.LSTM(cfg.lstm_units, return_sequences=True, go_backwards=True,
                    name="lstm_backward")(pb)
        fb = L.Lambda(lambda t: tf.reverse(t, axis=[1]), name="lstm_backward_order")(fb)
        f = L.Concatenate(name="bilstm_concat")([ff, fb])
    f = L.Activation("linear", name="features")(f)
    skip = L.Activation("linear", name="skip")(skip)
    twin = tf_keras.Model(x_in, {"features": f, "skip": skip}, name="ecg12_trunk_fused")
    src = {layer.name: layer for layer in trunk.layers}
    for layer in twin.layers:
        if layer.weights and layer.name in src:
            layer.set_weights(src[layer.name].get_weights())
    if factors is not None:
        bi = trunk.get_layer("bilstm")
        for name, d in (("forward", bi.forward_layer), ("backward", bi.backward_layer)):
            pk, pb_, kin, bias, _ = factors[name]
            twin.get_layer(f"lstm_in_{name}").set_weights([pk, pb_])
            twin.get_layer(f"lstm_{name}").set_weights([kin, d.get_weights()[1], bias])
    return twin


def convert_trunk(model, cfg: ModelConfig, window: int, lstm: str = "unrolled",
                  quant: str = "float32", rep: Representative | None = None,
                  factors: dict[str, tuple] | None = None) -> bytes:
    """Trunk ``lead_i (1, L, 1) -> features (1, L/4, 2U), skip (1, L, 7)`` as TFLite bytes;
    ``factors`` (fused only): the BiLSTM reads a low-rank projection of its input."""
    if lstm not in LSTMS:
        raise ConversionError(f"unknown LSTM option {lstm!r}; use one of {list(LSTMS)}")
    if quant == "int8" and lstm == "while":
        # measured: TF 2.21's int8 calibration of the WHILE-loop BiLSTM segfaults the process
        raise ConversionError("trunk (while, int8): not attempted: full-integer calibration of "
                              "the WHILE-loop BiLSTM crashes the TF 2.21 converter (segfault)")
    trunk = build_trunk(cfg, window, batch=1, unroll=lstm == "unrolled")
    copy_weights(model, trunk)
    if factors is not None and lstm != "fused":
        raise ConversionError("a low-rank LSTM input needs lstm='fused'")
    if lstm == "fused":
        conv = tf.lite.TFLiteConverter.from_keras_model(_fused_twin(cfg, window, trunk,
                                                                    factors))
    else:
        @tf.function(input_signature=[tf.TensorSpec((1, window, 1), tf.float32, "lead_i")])
        def serve(lead_i):
            feats, skip = trunk(lead_i)
            return {"features": feats, "skip": skip}

        conv = _from_function(serve, trunk)
    _quantize(conv, quant, rep)
    return _convert(conv, f"trunk ({lstm}, {quant})")


def convert_head(model, cfg: ModelConfig, window: int, quant: str = "float32",
                 rep: Representative | None = None) -> bytes:
    """MC head in moments form: features ``(1, S, F)``, meta ``(1, M)``, masks ``(T, C)``
    (T free) -> ``residual_mean (1, L, 7)`` (the mask of ones), ``mc_var (1, L, 7)`` (mean
    over the T masks of the squared deviation from it), ``deviation (S, T, 4·7)`` (each mask's
    deviation, for the samples) [, ``log_var (1, L, 7)``]. The output conv is linear in the
    mask: with ``P[s, c, :]`` channel c's contribution (one depthwise conv, run once) and
    ``A = masks - 1``, the deviations are one batched matmul ``A @ P[s]`` instead of T convs.
    """
    head = build_mc_head(cfg, window)
    copy_weights(model, head)
    site = mc_site(cfg)
    S, n = window // DOWNSAMPLE, head.get_layer("head_out").filters // DOWNSAMPLE
    h_out = head.get_layer(f"apply_{site.name}").input[0]
    film = cfg.film  # a per-lead output gain from the metadata multiplies the residual
    hidden = keras.Model(head.inputs[:2],
                         [h_out, head.get_layer("lead_gain").output] if film else h_out)
    w, b = (np.asarray(v) for v in head.get_layer("head_out").get_weights())  # (3,C,4n), (4n,)
    lv = head.get_layer("head_logvar") if cfg.aleatoric else None
    specs = [tf.TensorSpec((1, S, 2 * cfg.lstm_units), tf.float32, "features"),
             tf.TensorSpec((1, head.inputs[1].shape[-1]), tf.float32, "meta"),
             tf.TensorSpec((None, site.size), tf.float32, site.name)]

    @tf.function(input_signature=specs)
    def serve(features, meta, mask):
        h, g = hidden([features, meta]) if film else (hidden([features, meta]), None)
        mean = tf.nn.conv1d(h, w, 1, "SAME") + b  # (1, S, 4n): the mask of ones
        contrib = tf.nn.depthwise_conv2d(h[:, None], w[None], [1, 1, 1, 1], "SAME")
        contrib = tf.reshape(contrib, (S, site.size, 4 * n))  # P[s, c, :]
        dev = tf.matmul((mask - 1.0)[None], contrib)  # (S, T, 4n)
        if g is not None:  # (1, n) per lead, on each of the 4 subpixels of the output conv
            g4 = tf.tile(g, [1, DOWNSAMPLE])
            mean, dev = mean * g4[:, None], dev * g4[:, None]
        out = {"residual_mean": tf.reshape(mean, (1, window, n)),
               "mc_var": tf.reshape(tf.reduce_mean(dev * dev, axis=1), (1, window, n)),
               "deviation": dev}
        if lv is not None:
            out["log_var"] = tf.reshape(lv(h), (1, window, n))
        return out

    conv = _from_function(serve, head)
    _quantize(conv, quant, rep)
    return _convert(conv, f"head ({quant})")
