"""NDJSON events (one JSON object per line, flushed): gap, flag, status, summary, error."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edge.sinks.csv import SinkError


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_plain(x) for x in (sorted(v) if isinstance(v, (set, frozenset)) else v)]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, 6)
    return v


class EventWriter:
    """Write events to a file, to stdout (`"-"`), or nowhere (`None`)."""

    def __init__(self, target: str | Path | TextIO | None) -> None:
        self._own = False
        self._f: TextIO | None
        if target is None:
            self._f = None
        elif target == "-":
            self._f = sys.stdout
        elif isinstance(target, (str, Path)):
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                self._f, self._own = Path(target).open("w"), True
            except OSError as exc:  # under a file, a folder, a read-only file system
                parent = Path(target).parent
                why = (f"{parent} is a file, not a folder" if parent.is_file()
                       else exc.strerror or str(exc))
                raise SinkError(f"cannot write events output {target}: {why}") from None
        else:
            self._f = target
        self.counts: dict[str, int] = {}

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = _plain({"type": type_, **fields})
        self.counts[type_] = self.counts.get(type_, 0) + 1
        if self._f is not None:
            self._f.write(json.dumps(event, allow_nan=False) + "\n")
            self._f.flush()
        return event

    def close(self) -> None:
        if self._own and self._f is not None:
            self._f.close()
        self._f = None
