"""`--publish lsl:[?name=ecg12]`: the 12 leads, their std and the events as Lab Streaming Layer
outlets (a tap: edge.sinks.tap).

Three streams per run, source ids `ecg12-<device>-<name>-{leads,std,events}`:
  `<name>`         type ECG, 12 float32 channels I..V6, unit mV, nominal rate = input rate
  `<name>-std`     type ECG, 12 float32 channels std_I..std_V6, unit mV (NaN = none)
  `<name>-events`  type Markers, 1 string channel, irregular rate: one JSON object per event
                   (start, gap, flag, features, device_status, end; as in events.ndjson)
Channel labels/units/types follow the XDF meta-data convention (desc/channels/channel).
Samples are stamped from the input's time line, not when they are pushed: the first chunk's
`t0_s` is mapped once onto LSL's clock (`local_clock()` at that moment), so sample k of a
block is `t0_s + k / fs + offset`. Rows without a reconstruction, bridged gaps and (up to
MAX_FILL_S) input missing between blocks are pushed as NaN rows, as in leads.csv.
mne-lsl (whose wheels bundle liblsl; `pip install 'ecg12[lsl]'`) is imported only here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from edge.leads import LEADS
from edge.sinks.csv import SinkError
from edge.sinks.events import _plain

MAX_FILL_S = 60.0  # longer holes between blocks: one NaN row, the time stamps say the rest
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class LslTarget:
    """Stream name prefix of `--publish lsl:?name=...`."""

    name: str = "ecg12"

    @property
    def url(self) -> str:
        return f"lsl:?name={self.name}"


def parse_lsl_url(url: str, *, what: str = "--publish") -> LslTarget:
    """`lsl:` or `lsl:?name=NAME` (1-64 letters, digits, '_', '.', '-')."""
    parts = urlsplit(url)
    if parts.scheme != "lsl" or parts.netloc or parts.path.strip("/"):
        raise SinkError(f"{what} {url!r}: use lsl: or lsl:?name=NAME")
    try:
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)) \
            if parts.query else {}
    except ValueError:
        raise SinkError(f"{what} {url!r}: query must be name=NAME") from None
    unknown = sorted(set(query) - {"name"})
    if unknown:
        raise SinkError(f"{what} {url!r}: unknown option {unknown[0]!r} (only name=)")
    name = query.get("name", "ecg12")
    if not _NAME.match(name):
        raise SinkError(f"{what} {url!r}: name {name!r}: use 1-64 letters, digits, '_', '.', "
                        "'-'")
    return LslTarget(name)


def _lsl() -> Any:
    try:
        from mne_lsl import lsl
    except ImportError:
        raise SinkError("--publish lsl: needs mne-lsl: pip install 'ecg12[lsl]'") from None
    return lsl


class LslOutlet:
    """Publishes one session as three LSL outlets (see the module docstring)."""

    def __init__(self, target: LslTarget, device: str, *, source: Any = None,
                 provenance: dict[str, Any] | None = None) -> None:
        self.target, self.device, self.source = target, device, source
        self.provenance = provenance
        self.fs_hz: float | None = None
        self.offset_s: float | None = None  # LSL clock - input time line
        self.leads = self.std = self.events = None  # outlets
        self.rows = 0
        self._next_t: float | None = None
        self._features: Any = None
        self._status: Any = frozenset()
        self._lsl: Any = None

    # --- tap ---
    async def start(self, recorder: Any = None) -> None:
        self._lsl = _lsl()
        if self.provenance is None and recorder is not None:
            self.provenance = recorder.info.get("provenance")
        fs = getattr(self.source, "fs_hz", None)
        if fs:  # known now: consumers can connect before the first sample
            self.open(float(fs))

    def open(self, fs_hz: float) -> None:
        """Create the three outlets at nominal rate `fs_hz`."""
        lsl = self._lsl or _lsl()
        self._lsl, self.fs_hz = lsl, float(fs_hz)
        base = f"ecg12-{self.device}-{self.target.name}"
        try:
            self.leads = lsl.StreamOutlet(self._info(self.target.name, "ECG", list(LEADS),
                                                     f"{base}-leads", "reconstructed leads"))
            self.std = lsl.StreamOutlet(self._info(
                f"{self.target.name}-std", "ECG", [f"std_{lead}" for lead in LEADS],
                f"{base}-std", "std of the reconstructed leads (MC dropout + aleatoric)"))
            ev = lsl.StreamInfo(f"{self.target.name}-events", "Markers", 1, 0.0, "string",
                                f"{base}-events")
            ev.set_channel_names(["event"])
            ev.desc.append_child_value("format", "JSON object per sample (events.ndjson)")
            self.events = lsl.StreamOutlet(ev)
        except Exception as exc:  # liblsl raises RuntimeError and friends
            raise SinkError(f"--publish {self.target.url}: cannot create LSL outlets: {exc}"
                            ) from None

    def _info(self, name: str, kind: str, labels: list[str], source_id: str,
              what: str) -> Any:
        info = self._lsl.StreamInfo(name, kind, 12, self.fs_hz, "float32", source_id)
        info.set_channel_names(labels)
        info.set_channel_units(["mV"] * 12)
        info.set_channel_types(["ECG"] * 12)
        desc = info.desc
        desc.append_child_value("description", what + "; NaN = no reconstruction / gap")
        acq = desc.append_child("acquisition")
        acq.append_child_value("manufacturer", "ecg12")
        acq.append_child_value("model", "Lead I -> 12-lead reconstruction")
        acq.append_child_value("device", self.device)
        prov = self.provenance or {}
        bundle = prov.get("bundle") or {}
        for key, value in (("ecg12_version", prov.get("ecg12_version")),
                           ("bundle", bundle.get("name")),
                           ("bundle_sha256", bundle.get("manifest_sha256")),
                           ("mc_samples", prov.get("mc_samples")), ("seed", prov.get("seed"))):
            if value is not None:
                acq.append_child_value(key, str(value))
        return info

    def on_chunk(self, chunk: Any, recorder: Any) -> None:
        if self.leads is None:
            self.open(float(chunk.fs_hz))
        if self.offset_s is None:
            self.offset_s = float(self._lsl.local_clock()) - float(chunk.t0_s)
            self.event({"type": "start", "source": recorder.source, "fs_hz": chunk.fs_hz},
                       chunk.t0_s)
        if chunk.gap_before_s > 0 and recorder.gaps:
            g = recorder.gaps[-1]
            self.event({"type": "gap", **g}, recorder.origin_s + g["start_s"])
        if recorder.status != self._status:
            self._status = recorder.status
            self.event({"type": "device_status", "status": sorted(recorder.status)},
                       chunk.t0_s)
        if recorder.features is not self._features:
            self._features = recorder.features
            if recorder.features:
                self.event({"type": "features", **recorder.features}, chunk.t_end_s)

    def on_blocks(self, blocks: list[Any], recorder: Any) -> None:
        for b in blocks:
            if len(b.leads):
                self.block(float(b.t0_s), float(b.fs_hz), b.leads, b.std)
            for f in b.flags:
                self.event({"type": "flag", "kind": f.kind, "start_s": recorder.rel(f.start_s),
                            "end_s": recorder.rel(f.end_s), "leads": list(f.leads),
                            "value": f.value, "threshold": f.threshold, "detail": f.detail},
                           f.start_s)

    async def stop(self, summary: dict[str, Any] | None) -> None:
        if self.events is not None and self.offset_s is not None:
            self.event({"type": "end", "rows": self.rows,
                        "interrupted": bool((summary or {}).get("interrupted"))},
                       self._next_t if self._next_t is not None else 0.0)
        self.close()

    def close(self) -> None:
        """Drop the outlets (consumers see the streams end)."""
        self.leads = self.std = self.events = None

    # --- samples ---
    def block(self, t0_s: float, fs_hz: float, leads: np.ndarray, std: np.ndarray) -> None:
        """Push rows t0_s, t0_s + 1/fs, ... (input time line, seconds); NaN rows fill a hole
        since the previous block."""
        if self.leads is None:
            self.open(fs_hz)
        if self.offset_s is None:
            self.offset_s = float(self._lsl.local_clock()) - t0_s
        x = np.asarray(leads, dtype=np.float32)
        s = np.asarray(std, dtype=np.float32)
        if self._next_t is not None:
            missing = int(round((t0_s - self._next_t) * fs_hz))
            if missing > 0:
                fill = missing if missing <= MAX_FILL_S * fs_hz else 1
                nan = np.full((fill, 12), np.nan, np.float32)
                self._push(nan, nan, self._next_t + np.arange(fill) / fs_hz)
        stamps = t0_s + np.arange(len(x)) / fs_hz
        self._push(x, s, stamps)
        self._next_t = t0_s + len(x) / fs_hz

    def _push(self, x: np.ndarray, s: np.ndarray, t: np.ndarray) -> None:
        if not len(x):
            return
        stamps = np.asarray(t, dtype=np.float64) + self.offset_s
        self.leads.push_chunk(np.ascontiguousarray(x), timestamp=stamps)
        self.std.push_chunk(np.ascontiguousarray(s), timestamp=stamps)
        self.rows += len(x)

    def event(self, event: dict[str, Any], t_s: float) -> None:
        """Push one JSON event stamped at input time `t_s`."""
        if self.events is None or self.offset_s is None:
            return
        text = json.dumps(_plain(event), allow_nan=False, separators=(",", ":"))
        self.events.push_sample([text], timestamp=float(t_s) + self.offset_s)
