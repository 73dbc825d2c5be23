"""What produced a run: the `provenance` block of summary.json (and the report's header).

ecg12 version, the bundle (name, folder, manifest sha256, per-file sha256 — verified against
the files when the bundle was loaded), MC samples actually used, seed, the metadata given
(profile) and the fields derived live from Lead I, the profile / personalisation, the
conditioning, the host, and wall-clock start/end times (UTC, ISO 8601).
"""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path
from typing import Any


def ecg12_version() -> str:
    """The installed ecg12 distribution's version ("unknown" when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ecg12")
    except PackageNotFoundError:
        return "unknown"


def utc_now() -> str:
    """Wall-clock time now, UTC, ISO 8601 with seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def bundle_info(manifest: Any) -> dict[str, Any]:
    """Name, folder, schema, creation time, quantization and sha256s of a loaded bundle."""
    folder = Path(manifest.bundle_dir) if manifest.bundle_dir is not None else None
    man_sha = None
    if folder is not None and (folder / "manifest.json").is_file():
        man_sha = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    return {
        "name": manifest.name, "path": str(folder) if folder else None,
        "schema_version": manifest.schema_version, "created": manifest.created,
        "quantization": manifest.quantization, "head_quantization": manifest.head_quantization,
        "manifest_sha256": man_sha,
        "files": {which: {"path": spec.path, "sha256": spec.sha256}
                  for which, spec in (("trunk", manifest.trunk), ("head", manifest.head))},
    }


def run_provenance(model: Any, *, mc_samples: int | None, seed: int,
                   metadata: dict[str, Any] | None, profile: str | None,
                   personalization: Any = None, source: str = "") -> dict[str, Any]:
    """The provenance dict for summary.json (`end_utc` is added when the run closes)."""
    man = model.bundle.manifest
    mc = man.mc.default_samples if mc_samples is None else int(mc_samples)
    given = dict(metadata or {})
    if not given and personalization is not None:
        given = dict(getattr(personalization, "metadata", None) or {})
    derived = [f for f in man.metadata.derive_from_lead_i if f not in given]
    return {
        "ecg12_version": ecg12_version(),
        "bundle": bundle_info(man),
        "mc_samples": mc, "mc_samples_default": man.mc.default_samples,
        "seed": int(seed),
        "metadata_given": given, "metadata_derived_from_lead_i": derived,
        "profile": str(Path(profile).resolve()) if profile else None,
        "personalized": personalization is not None,
        "conditioning": dict(man.conditioning),
        "source": source, "host": platform.node(),
        "python": platform.python_version(), "machine": platform.machine(),
        "start_utc": utc_now(),
    }


#: Lead-I features as reported to users (summary.json, events, status): name with its unit.
#: The model's metadata keeps the plain names (edge.metadata.FIELDS).
FEATURE_NAMES: dict[str, tuple[str, str]] = {
    "ventricular_rate": ("ventricular_rate_bpm", "bpm"),
    "qrs_count": ("qrs_count_per_10s_window", "beats per 10 s window"),
    "qrs_duration": ("qrs_duration_ms", "ms"),
}


def user_features(features: dict[str, float]) -> dict[str, float]:
    """`features` with unit-carrying names (`qrs_count` -> `qrs_count_per_10s_window`)."""
    return {FEATURE_NAMES.get(k, (k, ""))[0]: v for k, v in features.items()}


def feature_units() -> dict[str, str]:
    """Unit of each user-facing feature name."""
    return dict(FEATURE_NAMES.values())


def header_fields(prov: dict[str, Any] | None) -> dict[str, str]:
    """The provenance that file headers carry, as flat `key: value` text (WFDB comments)."""
    if not prov:
        return {}
    bundle = prov.get("bundle") or {}
    given = prov.get("metadata_given") or {}
    out = {
        "ecg12_version": str(prov.get("ecg12_version")),
        "bundle": str(bundle.get("name")),
        "bundle_manifest_sha256": str(bundle.get("manifest_sha256")),
        "mc_samples": str(prov.get("mc_samples")),
        "seed": str(prov.get("seed")),
        "metadata_given": ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in sorted(given.items())) or "none",
        "metadata_derived_from_lead_i": ",".join(prov.get("metadata_derived_from_lead_i")
                                                 or []) or "none",
        "personalized": "yes" if prov.get("personalized") else "no",
        "source": str(prov.get("source", "")),
        "start_utc": str(prov.get("start_utc")),
    }
    if prov.get("end_utc"):
        out["end_utc"] = str(prov["end_utc"])
    return out


def write_meta(path: str | Path, prov: dict[str, Any] | None, *, csv_name: str,
               fs_hz: float | None, extra: dict[str, Any] | None = None) -> None:
    """`leads.meta.json` beside leads.csv: columns, units and the run's provenance (the CSV
    itself keeps a plain header, so every CSV reader still takes it). Written atomically."""
    import json

    from edge.sinks.csv import COLUMNS
    from edge.sinks.events import _plain

    doc = {"schema": "ecg12.leads-meta/1", "csv": csv_name, "columns": list(COLUMNS),
           "units": {c: ("s" if c == "t_s" else "mV") for c in COLUMNS}, "fs_hz": fs_hz,
           "nan": "gap or no reconstruction", "header": header_fields(prov),
           "provenance": prov or {}, **(extra or {})}
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(_plain(doc), indent=2) + "\n")
    tmp.replace(p)
