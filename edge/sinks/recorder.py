"""One session's outputs: CSV (default; WFDB added at the end on request), NDJSON events,
live Lead-I features, the report figure and summary.json. Times in events and files are
seconds since the first sample (`t_s`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edge.chunk import Chunk
from edge.leads import LEADS
from edge.sinks.csv import CsvSink, SinkError
from edge.sinks.events import EventWriter

FORMATS = ("csv", "wfdb")
META = "leads.meta.json"  # beside leads.csv: columns, units, provenance


class Recorder:
    """Feed it chunks (`on_chunk`) and pipeline blocks (`on_blocks`); `close()` finishes
    every file (also after Ctrl-C) and returns the summary."""

    def __init__(self, out_dir: str | Path, *, fmt: str = "csv",
                 events: str | Path | TextIO | None = None, figure: bool = True,
                 title: str = "", source: str = "", window_s: float = 10.0,
                 feature_every_s: float = 10.0, max_bridge_s: float = 1.0) -> None:
        if fmt not in FORMATS:
            raise SinkError(f"output format {fmt!r} unknown; use one of {', '.join(FORMATS)}")
        self.out = Path(out_dir)
        self.fmt, self.figure, self.title, self.source = fmt, figure, title, source
        self.window_s, self.feature_every_s = window_s, feature_every_s
        #: a gap up to this long (the pipeline's bridge) keeps the Lead-I feature window and
        #: the last HR/QRS estimate; a longer one starts both afresh
        self.max_bridge_s = max_bridge_s
        # the events first: a target that cannot be written leaves no leads.csv behind
        self.events = EventWriter(self.out / "events.ndjson" if events is None else events)
        try:
            self.csv = CsvSink(self.out / "leads.csv")
        except SinkError:
            self.events.close()
            raise
        self.origin_s: float | None = None
        self._signal_start: float | None = None
        self.flags: list[dict[str, Any]] = []
        self.gaps: list[dict[str, Any]] = []
        self.chunks = 0
        self.samples_in = 0
        self.features: dict[str, float] = {}
        self.status: frozenset[str] = frozenset()
        self.errors: list[str] = []
        #: extra fields for summary.json (e.g. what the input file was read as)
        self.info: dict[str, Any] = {}
        self._tail: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._lead_i: list[np.ndarray] = []  # the last 10 s of Lead I, in pieces
        self._lead_n = 0  # samples in _lead_i
        self._fs: float | None = None
        self._last_end: float | None = None
        self._next_feat_s = feature_every_s
        self._started = time.monotonic()
        self._closed = False

    def rel(self, t_s: float) -> float:
        return t_s - (self.origin_s or 0.0)

    def signal_starts_at(self, t_s: float) -> None:
        """The signal's time line starts at ``t_s`` (host seconds; e.g. a file's first row)
        even where the first chunk comes later: rows from there are NaN and a gap. Call before
        the first chunk."""
        if self.origin_s is None:
            self._signal_start = float(t_s)

    def signal_ends_at(self, t_s: float) -> None:
        """The signal's time line ends at ``t_s`` (a file's last row): NaN rows and a gap
        after the last sample received. Call after the pipeline's last blocks."""
        if self.origin_s is None or self._fs is None or self._last_end is None:
            return
        if (t_s - self._last_end) * self._fs >= 0.5:
            self._edge_gap(self._last_end, t_s)
            self.csv.pad_to(t_s)

    def _gap(self, start: float, dur: float, seq: int | None) -> None:
        """Record and emit a gap of ``dur`` s from host time ``start``."""
        gap = {"kind": "gap", "start_s": self.rel(start), "end_s": self.rel(start + dur),
               "duration_s": dur, "leads": [], "seq": seq}
        self.gaps.append(gap)
        self.events.emit("gap", **gap)

    def _edge_gap(self, start: float, end: float) -> None:
        """A gap at the start or end of the time line: the event and the flag (between
        chunks the pipeline raises the flag)."""
        dur = end - start
        self._gap(start, dur, None)
        flag = {"kind": "gap", "start_s": self.rel(start), "end_s": self.rel(end),
                "leads": list(LEADS), "value": dur, "threshold": 0.0,
                "detail": f"no data for {dur:.3f} s"}
        self.flags.append(flag)
        self.events.emit("flag", **flag)

    def on_chunk(self, chunk: Chunk) -> None:
        if self.origin_s is None:
            start = self._signal_start
            if start is None or start > chunk.t0_s:
                start = chunk.t0_s
            self.origin_s, self._fs = start, chunk.fs_hz
            self.csv.start_at(start, chunk.fs_hz)
            self.events.emit("start", source=self.source, fs_hz=chunk.fs_hz)
            self._write_meta()
            if (chunk.t0_s - start) * chunk.fs_hz >= 0.5:  # nothing from the signal's start
                self._edge_gap(start, chunk.t0_s)
        if chunk.gap_before_s > 0:
            start = self._last_end if self._last_end is not None else chunk.t0_s
            # the gap's duration is the source's (device-clock) measure; host times of chunks
            # can disagree with it when playing faster than real time, so end = start + gap
            self._gap(start, chunk.gap_before_s, chunk.seq)
            if chunk.gap_before_s <= self.max_bridge_s and self._lead_i and len(self._lead_i[-1]):
                # bridged: hold the last sample over the gap so R-R intervals stay true
                hold = int(round(chunk.gap_before_s * chunk.fs_hz))
                self._hold(np.full(hold, self._lead_i[-1][-1]), int(10.0 * chunk.fs_hz))
            else:
                self._lead_i.clear()
                self._lead_n = 0
                self.features = {}
        if chunk.status != self.status:
            self.events.emit("device_status", t_s=self.rel(chunk.t0_s), status=chunk.status)
            self.status = chunk.status
        self.chunks += 1
        self.samples_in += chunk.n
        self._last_end = chunk.t_end_s
        self._features(chunk)

    def _features(self, chunk: Chunk) -> None:
        """Lead-I rate / QRS count / QRS duration over the last 10 s, every 10 s of signal;
        bridged gaps are held over (the estimate survives them), longer ones reset it."""
        from edge.features import lead_i_features

        keep = int(10.0 * chunk.fs_hz)
        self._hold(np.array(chunk.samples[:, 0]), keep)  # a copy: sources may reuse buffers
        if self.rel(chunk.t_end_s) < self._next_feat_s:
            return
        x = np.concatenate(self._lead_i)[-keep:]
        self._lead_i, self._lead_n = [x], len(x)
        if len(x) < keep:
            return
        self._next_feat_s = self.rel(chunk.t_end_s) + self.feature_every_s
        try:
            self.features = lead_i_features(x.astype(np.float64), chunk.fs_hz)
        except ValueError as exc:
            self.features = {}
            self.errors.append(f"features: {exc}")
        from edge.provenance import user_features

        self.events.emit("features", t_s=self.rel(chunk.t_end_s),
                         **user_features(self.features))

    def _hold(self, x: np.ndarray, keep: int) -> None:
        """Append Lead-I samples, keeping (at least) the last ``keep``; no empty pieces."""
        if not len(x):
            return
        self._lead_i.append(x)
        self._lead_n += len(x)
        while len(self._lead_i) > 1 and self._lead_n - len(self._lead_i[0]) >= keep:
            self._lead_n -= len(self._lead_i.pop(0))

    def on_blocks(self, blocks: list[Any]) -> None:
        for block in blocks:
            if getattr(block, "n", len(block.leads)):
                t, leads, std = self.csv.write(block)
                self._tail.append((t, leads, std))
                self._trim()
            for f in block.flags:
                flag = {"kind": f.kind, "start_s": self.rel(f.start_s), "end_s": self.rel(f.end_s),
                        "leads": list(f.leads), "value": f.value, "threshold": f.threshold,
                        "detail": f.detail}
                self.flags.append(flag)
                self.events.emit("flag", **flag)

    def _trim(self) -> None:
        end = self._tail[-1][0][-1] if len(self._tail[-1][0]) else 0.0
        while len(self._tail) > 1 and self._tail[1][0][:1].size and \
                self._tail[1][0][0] <= end - self.window_s:
            self._tail.pop(0)

    def _header(self) -> dict[str, str]:
        from edge.provenance import header_fields

        return header_fields(self.info.get("provenance"))

    def _write_meta(self, **extra: Any) -> bool:
        """leads.meta.json: the CSV's columns, units and provenance (at start, again at close:
        a killed run keeps the first)."""
        from edge.provenance import write_meta

        try:
            write_meta(self.out / META, self.info.get("provenance"), csv_name=self.csv.path.name,
                       fs_hz=self._fs, extra=extra)
            return True
        except OSError as exc:
            self.errors.append(f"cannot write {self.out / META}: {exc.strerror}")
            return False

    def tail(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self._tail:
            return np.zeros(0), np.zeros((0, 12), np.float32), np.zeros((0, 12), np.float32)
        return tuple(np.concatenate([p[i] for p in self._tail]) for i in range(3))  # type: ignore[return-value]

    def close(self, **extra: Any) -> dict[str, Any]:
        """Close the CSV, write WFDB (if asked), the figure and summary.json. Idempotent."""
        if self._closed:
            return self.summary
        self._closed = True
        self.csv.close()
        files = {"csv": str(self.csv.path)}
        if self.fmt == "wfdb" and self.csv.rows >= 2:
            from edge.sinks.wfdb import write_wfdb

            try:
                files["wfdb"] = str(write_wfdb(self.csv.path, self.out, "ecg12", self._fs,
                                               comments=self._header())[0])
            except SinkError as exc:
                self.errors.append(str(exc))
        prov = self.info.get("provenance")
        if isinstance(prov, dict):
            from edge.provenance import utc_now

            prov.setdefault("end_utc", utc_now())
        if self.origin_s is not None and self._write_meta(rows=self.csv.rows):
            files["meta"] = str(self.out / META)
        if self.figure and self.csv.rows:
            from edge.sinks.report import write_report

            try:
                files.update(write_report(self))
            except SinkError as exc:
                self.errors.append(str(exc))
        from edge.provenance import feature_units, user_features

        kinds: dict[str, int] = {}
        for f in self.flags:
            kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
        self.summary = {
            "source": self.source, "fs_hz": self._fs, "chunks": self.chunks,
            "samples_in": self.samples_in, "rows_out": self.csv.rows,
            "rows_reconstructed": self.csv.reconstructed_rows,
            "signal_s": self.csv.rows / self._fs if self._fs else 0.0,
            "gaps": len(self.gaps), "gap_s": float(sum(g["duration_s"] for g in self.gaps)),
            "flags": kinds, "features": user_features(self.features),
            "feature_units": feature_units(), "files": files,
            "wall_s": time.monotonic() - self._started, "errors": self.errors, **self.info,
            **extra,
        }
        ev = self.events.emit("summary", **self.summary)
        (self.out / "summary.json").write_text(json.dumps(ev, indent=2) + "\n")
        self.events.close()
        return self.summary
