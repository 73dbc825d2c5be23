"""The wearer's profile file (JSON or TOML): age, sex and optionally axes from a clinic 12-lead.

Example (TOML): `age = 54` / `sex = "F"` / `r_axis = 35`. Absent fields stay absent; rate,
QRS count and QRS duration are computed live from Lead I and are not accepted here.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from edge.errors import EdgeError
from edge.metadata import MetadataError, clean_metadata

PROFILE_FIELDS: tuple[str, ...] = ("age", "sex", "r_axis", "t_axis")


def axes_from_12_lead(ecg_mv: Any, fs_hz: float) -> dict[str, float]:
    """The profile fields a clinic 12-lead gives: R and T axis (degrees, 0.1) by
    ``edge.measurements12``, each absent when not measurable (``ecg12 enroll`` stores these)."""
    from edge.measurements12 import twelve_lead_measurements

    try:
        meas = twelve_lead_measurements(ecg_mv, fs_hz)
    except ValueError:
        return {}
    return {k: round(float(meas[k]), 1) for k in ("r_axis", "t_axis") if k in meas}


class ProfileError(EdgeError, ValueError):
    """The profile file is missing, unparsable or holds an unknown/implausible field."""


def load_profile(path: str | Path) -> dict[str, Any]:
    """Read and validate a profile; returns clean metadata (edge.metadata.clean_metadata)."""
    p = Path(path)
    if not p.is_file():
        raise ProfileError(f"profile file not found: {p}")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"profile {p}: not UTF-8 text (byte {exc.start}); write it as JSON "
                           "or TOML") from None
    except OSError as exc:
        raise ProfileError(f"profile {p}: cannot read ({exc.strerror})") from None
    try:
        if p.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        reason = " ".join(str(exc).split())
        kind = "TOML" if p.suffix.lower() == ".toml" else "JSON"
        raise ProfileError(f"profile {p}: cannot parse as {kind} ({reason})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"profile {p}: expected a table/object of fields, got "
                           f"{type(data).__name__}")
    if isinstance(data.get("patient"), dict):
        data = data["patient"]
    for key, value in data.items():
        if key not in PROFILE_FIELDS:
            raise ProfileError(f"profile {p}: unknown field {key!r}; allowed: "
                               f"{', '.join(PROFILE_FIELDS)} (rate and QRS come from Lead I)")
        if isinstance(value, float) and not math.isfinite(value):  # JSON NaN / Infinity
            raise ProfileError(f"profile {p}: field {key!r} is {value}; give a number or "
                               "leave the field out")
    try:
        return clean_metadata(data)
    except MetadataError as exc:
        raise ProfileError(f"profile {p}: {exc}") from None
