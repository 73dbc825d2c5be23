"""Patient metadata schema and its numeric encoding, shared by training and the gateway.

Each field is encoded as value(s) plus a present/absent flag, so a model trained with random
field masking accepts any subset. Absent fields encode as zeros with flag 0. Axes (degrees)
are encoded as (sin, cos) so that -180 and 180 meet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from edge.errors import EdgeError

#: Field names in encoding order. Units: years, 'M'/'F', bpm, beats per 10 s, ms, degrees.
FIELDS: tuple[str, ...] = (
    "age", "sex", "ventricular_rate", "qrs_count", "qrs_duration", "r_axis", "t_axis",
)
#: Version of the encoding below; bumped whenever it changes (stored in bundle manifests).
ENCODING_VERSION = 1
#: Fields a wearable gateway can know: the profile (age, sex) and what Lead I yields.
WEARABLE_FIELDS: tuple[str, ...] = ("age", "sex", "ventricular_rate", "qrs_count", "qrs_duration")
#: Fields a Lead-I recording can yield on the device.
LEAD_I_FIELDS: tuple[str, ...] = ("ventricular_rate", "qrs_count", "qrs_duration")
REGIMES: dict[str, tuple[str, ...]] = {
    "none": (),
    "wearable": WEARABLE_FIELDS,
    "clinical": FIELDS,
}

# (offset, scale) for scalar fields: encoded = (value - offset) / scale
_SCALAR = {
    "age": (50.0, 20.0),
    "ventricular_rate": (75.0, 25.0),
    "qrs_count": (12.0, 4.0),
    "qrs_duration": (95.0, 20.0),
}
# plausible ranges; values outside are rejected with a clear error
_RANGES = {
    "age": (0.0, 120.0),
    "ventricular_rate": (15.0, 350.0),
    "qrs_count": (0.0, 80.0),
    "qrs_duration": (20.0, 300.0),
    "r_axis": (-360.0, 360.0),
    "t_axis": (-360.0, 360.0),
}
_WIDTH = {"age": 1, "sex": 1, "ventricular_rate": 1, "qrs_count": 1, "qrs_duration": 1,
          "r_axis": 2, "t_axis": 2}
#: Length of an encoded metadata vector (values then presence flags).
ENCODED_SIZE = sum(_WIDTH.values()) + len(FIELDS)
#: Fields only a 12-lead machine (or a past 12-lead ECG) gives: the clinical regime's own.
CLINICAL_ONLY_FIELDS: tuple[str, ...] = tuple(f for f in FIELDS if f not in WEARABLE_FIELDS)
# their presence flags' positions in an encoded vector (values first, then one flag per field)
_CLINICAL_FLAGS = [sum(_WIDTH.values()) + FIELDS.index(f) for f in CLINICAL_ONLY_FIELDS]


class MetadataError(EdgeError, ValueError):
    """A metadata field has an unknown name or an unusable value."""


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in {"", "nan", "missing", "none"}


def normalise_sex(value: Any) -> str | None:
    """'M'/'F' from common spellings; None when missing."""
    if _is_missing(value):
        return None
    v = str(value).strip().lower()
    if v in {"m", "male", "0", "man"}:
        return "M"
    if v in {"f", "female", "1", "woman"}:
        return "F"
    raise MetadataError(f"metadata field 'sex': unusable value {value!r} (use 'M' or 'F')")


def clean_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a metadata mapping: known keys only, plausible values; missing -> dropped."""
    out: dict[str, Any] = {}
    if metadata is not None and not isinstance(metadata, Mapping):
        raise MetadataError(f"metadata must be a mapping of fields (e.g. {{'age': 54}}), got "
                            f"{type(metadata).__name__} {metadata!r:.60}")
    for key, value in (metadata or {}).items():
        if key not in FIELDS:
            raise MetadataError(
                f"unknown metadata field {key!r}; known fields: {', '.join(FIELDS)}"
            )
        if _is_missing(value):
            continue
        if key == "sex":
            out[key] = normalise_sex(value)
            continue
        try:
            if isinstance(value, (bool, np.bool_)):
                raise TypeError("a boolean is not a number")
            v = float(value)
        except (TypeError, ValueError, OverflowError):
            raise MetadataError(f"metadata field {key!r}: not a number: {value!r}") from None
        lo, hi = _RANGES[key]
        if not (lo <= v <= hi) or math.isnan(v):
            raise MetadataError(
                f"metadata field {key!r}: value {value!r} outside plausible range [{lo}, {hi}]"
            )
        out[key] = v
    return out


def encode_metadata(metadata: Mapping[str, Any] | None) -> np.ndarray:
    """Encode metadata into a float32 vector of length ENCODED_SIZE (values, then flags)."""
    md = clean_metadata(metadata)
    values: list[float] = []
    flags: list[float] = []
    for key in FIELDS:
        present = key in md
        flags.append(1.0 if present else 0.0)
        if not present:
            values.extend([0.0] * _WIDTH[key])
        elif key == "sex":
            values.append(1.0 if md[key] == "F" else -1.0)
        elif key in ("r_axis", "t_axis"):
            rad = math.radians(md[key])
            values.extend([math.sin(rad), math.cos(rad)])
        else:
            off, scale = _SCALAR[key]
            values.append(float(np.clip((md[key] - off) / scale, -5.0, 5.0)))
    return np.asarray(values + flags, dtype=np.float32)


def is_clinical(vector: np.ndarray) -> bool:
    """Whether an encoded metadata vector carries any clinical-only field (R or T axis)."""
    return bool((np.asarray(vector)[_CLINICAL_FLAGS] > 0.5).any())
