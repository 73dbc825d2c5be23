"""The one record type every corpus loader returns, and the data-layer errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.leads import LEADS
from edge.metadata import FIELDS


class _Missing:
    """Singleton marking an absent metadata field (falsy, picklable, prints as MISSING)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class DataError(Exception):
    """A corpus folder or metadata file is unusable (message names the file and field)."""


class RecordRejected(Exception):
    """One record fails a load-time check; `reason` starts with a short category + ':'."""

    def __init__(self, record: str, reason: str) -> None:
        super().__init__(f"{record}: {reason}")
        self.record = record
        self.reason = reason


@dataclass
class Recording:
    """A 12-lead ECG in mV, time-major `(n, 12)` in `edge.leads.LEADS` order."""

    signal_mv: np.ndarray
    fs_hz: float
    record_id: str
    patient_id: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, dict[str, np.ndarray]] | None = None

    def __post_init__(self) -> None:
        self.signal_mv = np.asarray(self.signal_mv, dtype=np.float32)
        if self.signal_mv.ndim != 2 or self.signal_mv.shape[1] != len(LEADS):
            raise RecordRejected(self.key, f"shape: expected (n, 12), got {self.signal_mv.shape}")
        for name in FIELDS:
            self.metadata.setdefault(name, MISSING)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.record_id}"

    @property
    def duration_s(self) -> float:
        return self.signal_mv.shape[0] / self.fs_hz

    def model_metadata(self) -> dict[str, Any]:
        """The FIELDS that are present (input of `edge.metadata.encode_metadata`)."""
        return {k: self.metadata[k] for k in FIELDS if self.metadata.get(k, MISSING) is not MISSING}


def is_missing(value: Any) -> bool:
    """True for MISSING, None, NaN and empty / 'NaN' / 'Unknown' strings."""
    if value is MISSING or value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in {"", "nan", "unknown", "none"}


def number_or_missing(value: Any) -> Any:
    """float(value), or MISSING when absent; raises ValueError on a non-numeric string."""
    if is_missing(value):
        return MISSING
    return float(value)
