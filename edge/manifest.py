"""Bundle manifest schema (``manifest.json``): the only contract workstation -> gateway.

``validate_manifest(data, bundle_dir)`` turns the parsed JSON into typed dataclasses or
raises ``BundleInvalid`` naming the offending key path (e.g. ``model.fs_hz``) and value.
Compatibility: the major part of ``schema_version`` must equal ours; a newer minor version is
accepted (unknown extra keys are ignored). Tensor entries in ``files.*.inputs/outputs`` are
either a name or ``{"name", "shape", "dtype"}`` (shape: ints, -1 for a free dimension).
``files.<f>.reset_state`` (optional bool) marks a stateful graph whose variables must be reset.
MC (``mc.scheme = "last_site"``, schema 1.1): one dropout site, ``mc.masks`` a single entry of
size C; the head takes features ``(1, S, F)``, meta ``(1, M)`` and masks ``(T, C)`` and gives
residual ``(T, L, 7)``, or in the moments form (what ``ecg12 convert`` writes)
residual_mean ``(1, L, 7)``, mc_var ``(1, L, 7)`` and deviation ``(L/4, T, 4·7)``; and
log_var ``(1, L, 7)``. Schema 1.0 heads (a mask per site, features
repeated T times) are refused with a re-convert hint.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.atypicality import Atypicality
from edge.errors import BundleInvalid, BundleNotFound
from edge.leads import DERIVED, LEADS, PREDICTED
from edge.metadata import ENCODED_SIZE, ENCODING_VERSION, FIELDS, LEAD_I_FIELDS

SCHEMA_VERSION = "1.1"
MANIFEST_NAME = "manifest.json"
QUANTIZATIONS = ("float32", "float16", "dynamic_int8", "int8")
TRUNK_INPUTS, TRUNK_OUTPUTS = ("lead_i",), ("features", "skip")
HEAD_FIXED_INPUTS = ("features", "meta")
#: head output forms: T sampled residuals, or the moments form (the exact mean, the MC
#: variance and each mask's deviation from the mean, from one batched matmul)
HEAD_SAMPLES, HEAD_MOMENTS = ("residual",), ("residual_mean", "mc_var", "deviation")
#: the MC scheme the gateway implements: one dropout site (the head's last) is sampled; the
#: head takes one window's features/meta (batch 1) and T masks, and runs only its output
#: conv T times
MC_SCHEME = "last_site"
#: most MC samples T a bundle or a call may ask for (T = 10000 is ~1 s per window on one core)
MAX_MC_SAMPLES = 10000


@dataclass(frozen=True)
class ModelSpec:
    fs_hz: float
    window: int
    hop: int
    input_scale: float
    lead_order: tuple[str, ...]
    predicted_leads: tuple[str, ...]
    derived_leads: tuple[str, ...]
    output_units: str


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...] | None = None
    dtype: str | None = None


@dataclass(frozen=True)
class FileSpec:
    path: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batch: int | None = None  # fixed batch size of the converted graph, None = resizable
    reset_state: bool = False  # stateful (fused LSTM) graph: reset variables before invoke


@dataclass(frozen=True)
class MetadataSpec:
    fields: tuple[str, ...]
    encoding_version: int
    encoded_size: int
    derive_from_lead_i: tuple[str, ...]  # fields computed from Lead I when not given


@dataclass(frozen=True)
class MaskSpec:
    name: str
    size: int
    rate: float


@dataclass(frozen=True)
class MCSpec:
    default_samples: int
    masks: tuple[MaskSpec, ...]  # exactly one site: the head's last dropout
    scheme: str = MC_SCHEME


@dataclass(frozen=True)
class UncertaintySpec:
    method: str
    scale: tuple[float, ...]  # per predicted lead
    flag_std_mv: tuple[float, ...]  # per predicted lead, after calibration
    aleatoric: bool = False  # head also outputs log_var (per-sample predicted variance)
    flag_expected_r: float | None = None  # flag a window whose expected r is below (fidelity)
    #: atypicality model and flag risk (``edge.atypicality``); replaces the expected-r rule
    atypicality: Atypicality | None = None
    #: per-lead scale for metadata with a clinical field (R/T axis); None: ``scale`` for all
    scale_clinical: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Manifest:
    schema_version: str
    name: str
    created: str
    model: ModelSpec
    trunk: FileSpec
    head: FileSpec
    metadata: MetadataSpec
    conditioning: dict[str, Any]
    mc: MCSpec
    uncertainty: UncertaintySpec
    quantization: str  # the trunk's
    head_quantization: str  # the head's (the manifest's, or ``quantization`` when absent)
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    bundle_dir: Path | None = None

    def file_path(self, which: str) -> Path:
        """Absolute path of the ``trunk`` or ``head`` model file."""
        spec = self.trunk if which == "trunk" else self.head
        if self.bundle_dir is None:
            raise BundleInvalid(f"manifest {self.name!r} has no bundle folder to find {which}")
        return self.bundle_dir / spec.path


# ----------------------------------------------------------------------------- helpers
def _fail(path: str, problem: str, where: str) -> BundleInvalid:
    return BundleInvalid(f"{where}: {path}: {problem}")


def _get(d: dict[str, Any], key: str, path: str, where: str, kind: type | tuple) -> Any:
    full = f"{path}.{key}" if path else key
    if not isinstance(d, dict):
        raise _fail(path or "<root>", f"expected an object, got {type(d).__name__}", where)
    if key not in d:
        raise _fail(full, "missing key", where)
    v = d[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(v, bool) and bool not in kinds:
        raise _fail(full, f"expected {_kname(kinds)}, got {v!r}", where)
    if not isinstance(v, kinds):
        raise _fail(full, f"expected {_kname(kinds)}, got {type(v).__name__} {v!r}", where)
    return v


def _kname(kinds: tuple) -> str:
    return " or ".join(k.__name__ for k in kinds)


def _num(d: dict, key: str, path: str, where: str, positive: bool = False) -> float:
    v = float(_get(d, key, path, where, (int, float)))
    if not math.isfinite(v) or (positive and v <= 0):
        raise _fail(f"{path}.{key}", f"must be a {'positive ' if positive else ''}finite "
                    f"number, got {v!r}", where)
    return v


def _int(d: dict, key: str, path: str, where: str, minimum: int = 1) -> int:
    v = _get(d, key, path, where, int)
    if v < minimum:
        raise _fail(f"{path}.{key}", f"must be an integer >= {minimum}, got {v!r}", where)
    return v


def _names(d: dict, key: str, path: str, where: str) -> tuple[str, ...]:
    v = _get(d, key, path, where, list)
    if not all(isinstance(x, str) for x in v):
        raise _fail(f"{path}.{key}", f"expected a list of strings, got {v!r}", where)
    return tuple(v)


def _floats(d: dict, key: str, path: str, where: str, n: int) -> tuple[float, ...]:
    v = _get(d, key, path, where, list)
    ok = len(v) == n and all(isinstance(x, int | float) and not isinstance(x, bool)
                             and math.isfinite(x) and x >= 0 for x in v)
    if not ok:
        raise _fail(f"{path}.{key}", f"expected {n} finite non-negative numbers, got {v!r}",
                    where)
    return tuple(float(x) for x in v)


def _expect(value: tuple, wanted: tuple, path: str, where: str) -> None:
    if tuple(value) != tuple(wanted):
        raise _fail(path, f"expected {list(wanted)}, got {list(value)}", where)


# ----------------------------------------------------------------------------- sections
def _check_version(data: dict, where: str) -> str:
    v = _get(data, "schema_version", "", where, str)
    major = v.split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise BundleInvalid(
            f"{where}: schema_version {v!r} is incompatible with this gateway "
            f"(supports {SCHEMA_VERSION.split('.')[0]}.x)",
            advice="update ecg12 on the gateway or re-export the bundle with a matching version")
    return v


def _model(data: dict, where: str) -> ModelSpec:
    m = _get(data, "model", "", where, dict)
    p = "model"
    spec = ModelSpec(
        fs_hz=_num(m, "fs_hz", p, where, positive=True),
        window=_int(m, "window", p, where, minimum=8),
        hop=_int(m, "hop", p, where),
        input_scale=_num(m, "input_scale", p, where, positive=True),
        lead_order=_names(m, "lead_order", p, where),
        predicted_leads=_names(m, "predicted_leads", p, where),
        derived_leads=_names(m, "derived_leads", p, where),
        output_units=_get(m, "output_units", p, where, str),
    )
    if spec.hop > spec.window:
        raise _fail("model.hop", f"hop {spec.hop} exceeds window {spec.window}", where)
    _expect(spec.lead_order, LEADS, "model.lead_order", where)
    _expect(spec.predicted_leads, PREDICTED, "model.predicted_leads", where)
    _expect(spec.derived_leads, DERIVED, "model.derived_leads", where)
    if spec.output_units != "mV":
        raise _fail("model.output_units", f"expected 'mV', got {spec.output_units!r}", where)
    return spec


def _tensor(entry: Any, path: str, where: str) -> TensorSpec:
    if isinstance(entry, str):
        return TensorSpec(entry)
    name = _get(entry, "name", path, where, str)
    shape = entry.get("shape")
    if shape is not None:
        if not (isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool)
                                                 and (s > 0 or s == -1) for s in shape)):
            raise _fail(f"{path}.shape", f"expected a list of ints (-1 = free), got {shape!r}",
                        where)
        shape = tuple(shape)
    dtype = entry.get("dtype")
    if dtype is not None and not isinstance(dtype, str):
        raise _fail(f"{path}.dtype", f"expected a string, got {dtype!r}", where)
    return TensorSpec(name, shape, dtype)


def _file(files: dict, which: str, where: str, bundle_dir: Path | None) -> FileSpec:
    p = f"files.{which}"
    f = _get(files, which, "files", where, dict)
    path = _get(f, "path", p, where, str)
    sha = _get(f, "sha256", p, where, str).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise _fail(f"{p}.sha256", f"not a sha256 hex digest: {sha!r}", where)
    ins = tuple(_tensor(e, f"{p}.inputs[{i}]", where)
                for i, e in enumerate(_get(f, "inputs", p, where, list)))
    outs = tuple(_tensor(e, f"{p}.outputs[{i}]", where)
                 for i, e in enumerate(_get(f, "outputs", p, where, list)))
    batch = f.get("batch")
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool)
                              or batch < 1):
        raise _fail(f"{p}.batch", f"expected a positive int or null, got {batch!r}", where)
    reset = f.get("reset_state", False)
    if not isinstance(reset, bool):
        raise _fail(f"{p}.reset_state", f"expected true/false, got {reset!r}", where)
    if bundle_dir is not None:
        target = bundle_dir / path
        if not target.is_file():
            raise _fail(f"{p}.path", f"file not found: {target}", where)
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        if digest != sha:
            raise _fail(f"{p}.sha256", f"mismatch for {target}: manifest {sha[:12]}..., "
                        f"file {digest[:12]}... (file changed or corrupted)", where)
    return FileSpec(path, sha, ins, outs, batch, reset)


def _metadata(data: dict, where: str) -> MetadataSpec:
    m = _get(data, "metadata", "", where, dict)
    p = "metadata"
    fields_ = _names(m, "fields", p, where)
    _expect(fields_, FIELDS, "metadata.fields", where)
    ver = _get(m, "encoding_version", p, where, int)
    if ver != ENCODING_VERSION:
        raise _fail("metadata.encoding_version", f"bundle uses {ver}, this gateway encodes "
                    f"version {ENCODING_VERSION}", where)
    size = _get(m, "encoded_size", p, where, int)
    if size != ENCODED_SIZE:
        raise _fail("metadata.encoded_size", f"expected {ENCODED_SIZE}, got {size}", where)
    d = _get(m, "derive_from_lead_i", p, where, (bool, list))
    if isinstance(d, bool):
        derive = LEAD_I_FIELDS if d else ()
    else:
        derive = _names(m, "derive_from_lead_i", p, where)
        bad = [x for x in derive if x not in LEAD_I_FIELDS]
        if bad:
            raise _fail("metadata.derive_from_lead_i", f"cannot derive {bad} from Lead I "
                        f"(possible: {list(LEAD_I_FIELDS)})", where)
    return MetadataSpec(fields_, ver, size, tuple(derive))


def _conditioning(data: dict, where: str) -> dict[str, Any]:
    c = _get(data, "conditioning", "", where, dict)
    phase = c.get("phase")
    if phase != "zero":
        raise _fail("conditioning.phase", f"is {phase!r}, the gateway implements 'zero' "
                    "(linear-phase, delay removed) only; this bundle was made for other "
                    "filters: re-convert it with this ecg12", where)
    for key in ("highpass_hz", "lowpass_hz"):
        _get(c, key, "conditioning", where, (int, float))
        if not math.isfinite(c[key]) or c[key] < 0:
            raise _fail(f"conditioning.{key}", f"must be a finite number >= 0, got "
                        f"{c[key]!r}", where)
    return dict(c)


def _check_scheme(data: dict, where: str) -> None:
    """Refuse a bundle of another MC scheme (e.g. schema 1.0: a mask input per site)."""
    m = data.get("mc")
    scheme = m.get("scheme") if isinstance(m, dict) else None
    if scheme != MC_SCHEME:
        raise BundleInvalid(
            f"{where}: mc.scheme is {scheme!r}; the gateway implements {MC_SCHEME!r} (one "
            "dropout site, the head run once per window on T masks); this bundle is an older "
            "format: re-convert it with `ecg12 convert RUN --out DIR`")


def _mc(data: dict, head: FileSpec, where: str) -> MCSpec:
    m = _get(data, "mc", "", where, dict)
    default = _int(m, "default_samples", "mc", where, minimum=0)
    if default > MAX_MC_SAMPLES:
        raise _fail("mc.default_samples", f"must be <= {MAX_MC_SAMPLES}, got {default!r}", where)
    masks = []
    for i, e in enumerate(_get(m, "masks", "mc", where, list)):
        p = f"mc.masks[{i}]"
        name = _get(e, "name", p, where, str)
        size = _int(e, "size", p, where)
        rate = _num(e, "rate", p, where)
        if not 0 <= rate < 1:
            raise _fail(f"{p}.rate", f"must be in [0, 1), got {rate!r}", where)
        masks.append(MaskSpec(name, size, rate))
    if len(masks) != 1:
        raise _fail("mc.masks", f"expected exactly one dropout site (the head's last), got "
                    f"{len(masks)}", where)
    mk = masks[0]
    head_in = {t.name: t for t in head.inputs}
    if mk.name not in head_in:
        raise _fail("mc.masks", f"mask {mk.name!r} is not an input of files.head "
                    f"(inputs: {sorted(head_in)})", where)
    shape = head_in[mk.name].shape
    if shape is not None and (len(shape) != 2 or shape[1] != mk.size):
        raise _fail(f"files.head.inputs.{mk.name}.shape", f"expected (T, {mk.size}), got "
                    f"{list(shape)}", where)
    extra = set(head_in) - set(HEAD_FIXED_INPUTS) - {mk.name}
    if extra:
        raise _fail("files.head.inputs", f"inputs {sorted(extra)} are neither features, meta "
                    "nor the mc.masks entry", where)
    return MCSpec(default, tuple(masks), MC_SCHEME)


def _uncertainty(data: dict, where: str) -> UncertaintySpec:
    u = _get(data, "uncertainty", "", where, dict)
    cal = _get(u, "calibration", "uncertainty", where, dict)
    method = _get(cal, "method", "uncertainty.calibration", where, str)
    if method != "scale":
        raise _fail("uncertainty.calibration.method", f"unknown method {method!r} "
                    "(supported: 'scale')", where)
    n = len(PREDICTED)
    scale = _floats(cal, "scale", "uncertainty.calibration", where, n)
    scale_clinical = (None if cal.get("scale_clinical") is None else
                      _floats(cal, "scale_clinical", "uncertainty.calibration", where, n))
    flag = _floats(u, "flag_std_mv", "uncertainty", where, n)
    aleatoric = u.get("aleatoric", False)
    if not isinstance(aleatoric, bool):
        raise _fail("uncertainty.aleatoric", f"expected true/false, got {aleatoric!r}", where)
    fidelity = u.get("flag_expected_r")
    if fidelity is not None:
        fidelity = _num(u, "flag_expected_r", "uncertainty", where)
        if not 0.0 < fidelity < 1.0:
            raise _fail("uncertainty.flag_expected_r", f"must lie in (0, 1), got {fidelity!r}",
                        where)
    atyp = u.get("atypicality")
    if atyp is not None:
        atyp = Atypicality.from_dict(atyp, where)
    return UncertaintySpec(method, scale, flag, aleatoric, fidelity, atyp, scale_clinical)


def _aleatoric_output(u: UncertaintySpec, head: FileSpec, where: str) -> UncertaintySpec:
    if u.aleatoric and "log_var" not in {t.name for t in head.outputs}:
        raise _fail("files.head.outputs", "uncertainty.aleatoric is true but the head has no "
                    "'log_var' output", where)
    return u


def _atypicality_size(u: UncertaintySpec, trunk: FileSpec, where: str) -> UncertaintySpec:
    """The atypicality model must pool as many features as the trunk gives (3 per channel)."""
    if u.atypicality is None:
        return u
    feats = next((t for t in trunk.outputs if t.name == "features"), None)
    shape = None if feats is None else feats.shape
    if shape and shape[-1] > 0 and u.atypicality.mean.shape[0] != 3 * shape[-1]:
        raise _fail("uncertainty.atypicality.mean", f"{u.atypicality.mean.shape[0]} pooled "
                    f"features, but the trunk gives {shape[-1]} channels (expected "
                    f"{3 * shape[-1]})", where)
    return u


def _check_names(spec: FileSpec, which: str, ins: tuple, outs: tuple, where: str) -> None:
    got_in = {t.name for t in spec.inputs}
    got_out = {t.name for t in spec.outputs}
    for name in ins:
        if name not in got_in:
            raise _fail(f"files.{which}.inputs", f"missing input {name!r} (got "
                        f"{sorted(got_in)})", where)
    for name in outs:
        if name not in got_out:
            raise _fail(f"files.{which}.outputs", f"missing output {name!r} (got "
                        f"{sorted(got_out)})", where)


def _check_shapes(man_model: ModelSpec, trunk: FileSpec, head: FileSpec, where: str) -> None:
    L, n = man_model.window, len(PREDICTED)
    feats = next((t for t in head.inputs if t.name == "features" and t.shape), None)
    S = feats.shape[1] if feats is not None and len(feats.shape) == 3 else -1
    dev = (S, -1, L // S * n) if S > 0 else (-1, -1, -1)  # L // S: the subpixel factor
    wanted = {("trunk", "lead_i"): (1, L, 1), ("trunk", "skip"): (1, L, n),
              ("head", "meta"): (1, ENCODED_SIZE), ("head", "residual"): (-1, L, n),
              ("head", "log_var"): (1, L, n), ("head", "residual_mean"): (1, L, n),
              ("head", "mc_var"): (1, L, n), ("head", "deviation"): dev}
    for (which, name), want in wanted.items():
        spec = trunk if which == "trunk" else head
        for t in spec.inputs + spec.outputs:
            if t.name != name or t.shape is None:
                continue
            ok = len(t.shape) == len(want) and all(
                w == -1 or g == -1 or g == w for g, w in zip(t.shape, want, strict=True))
            if not ok:
                shown = ["T" if w == -1 else w for w in want]
                raise _fail(f"files.{which}.{name}.shape", f"expected {shown}, got "
                            f"{list(t.shape)}", where)


# ----------------------------------------------------------------------------- public
def validate_manifest(data: dict[str, Any], bundle_dir: Path | None = None,
                      where: str = "manifest") -> Manifest:
    """Check a parsed manifest; with ``bundle_dir`` also check that files exist and hashes."""
    if not isinstance(data, dict):
        raise BundleInvalid(f"{where}: expected a JSON object, got {type(data).__name__}")
    version = _check_version(data, where)
    model = _model(data, where)
    files = _get(data, "files", "", where, dict)
    bdir = Path(bundle_dir) if bundle_dir is not None else None
    trunk = _file(files, "trunk", where, bdir)
    head = _file(files, "head", where, bdir)
    _check_names(trunk, "trunk", TRUNK_INPUTS, TRUNK_OUTPUTS, where)
    _check_scheme(data, where)
    moments = "residual" not in {t.name for t in head.outputs}
    _check_names(head, "head", HEAD_FIXED_INPUTS, HEAD_MOMENTS if moments else HEAD_SAMPLES,
                 where)
    _check_shapes(model, trunk, head, where)
    quant = _get(data, "quantization", "", where, str)
    if quant not in QUANTIZATIONS:
        raise _fail("quantization", f"unknown {quant!r} (known: {list(QUANTIZATIONS)})", where)
    head_quant = data.get("head_quantization", quant)  # optional: bundles before it had one
    if head_quant not in QUANTIZATIONS:
        raise _fail("head_quantization",
                    f"unknown {head_quant!r} (known: {list(QUANTIZATIONS)})", where)
    prov = data.get("provenance", {})
    metrics = data.get("metrics", {})
    for key, val in (("provenance", prov), ("metrics", metrics)):
        if not isinstance(val, dict):
            raise _fail(key, f"expected an object, got {type(val).__name__}", where)
    return Manifest(
        schema_version=version,
        name=_get(data, "name", "", where, str),
        created=_get(data, "created", "", where, str),
        model=model, trunk=trunk, head=head,
        metadata=_metadata(data, where),
        conditioning=_conditioning(data, where),
        mc=_mc(data, head, where),
        uncertainty=_atypicality_size(_aleatoric_output(_uncertainty(data, where), head,
                                                        where), trunk, where),
        quantization=quant, head_quantization=head_quant, provenance=dict(prov),
        metrics=dict(metrics), bundle_dir=bdir,
    )


def load_manifest(bundle_dir: str | Path, check_files: bool = True) -> Manifest:
    """Read and validate ``<bundle_dir>/manifest.json`` (and the model files' hashes)."""
    bdir = Path(bundle_dir)
    path = bdir / MANIFEST_NAME if bdir.is_dir() or not bdir.suffix else bdir
    if path.name == MANIFEST_NAME:
        bdir = path.parent
    if not path.is_file():
        raise BundleNotFound(f"no bundle manifest at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleInvalid(f"{path}: not readable JSON: {e}") from None
    return validate_manifest(data, bdir if check_files else None, where=str(path))
