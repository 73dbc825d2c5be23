"""`ecg12 collect mqtt://host:port/prefix --out DIR`: the central side of `--publish`.

Subscribes (QoS 1, persistent session: the broker keeps what arrives while the collector is
away) to `<prefix>/+/data|events|status` and writes one session per gateway session:
`DIR/<device>/<session>/leads.csv` (the gateway's CSV format, NaN rows for gaps, so row
index <-> time is exact), `events.ndjson` (events and status, in arrival order, duplicates
dropped) and, at the end, `summary.json` (blocks, rows, duplicates, missing blocks,
`complete` = the gateway's `end` event arrived and every block up to it was written) and
WFDB records with `--format wfdb`. Blocks are written in `bseq` order; duplicates (at-least-
once delivery) are dropped; a block that never arrives leaves NaN rows and is named in
`missing_bseq`.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import numpy as np

from edge.commands import Number
from edge.outputs import OutPath
from edge.sinks.csv import CsvSink, SinkError
from edge.sinks.mqtt import SCHEMA, MqttTarget, make_client

#: blocks held waiting for an earlier one before it is declared missing
MAX_REORDER = 5000


def _arr(rows: Any, what: str) -> np.ndarray:
    a = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float32)
    if a.ndim != 2 or a.shape[1] != 12:
        raise ValueError(f"{what} must be n rows of 12 values, got shape {a.shape}")
    return a


class DeviceSession:
    """One gateway session's files."""

    def __init__(self, folder: Path, device: str, session: str) -> None:
        self.dir, self.device, self.session = folder, device, session
        folder.mkdir(parents=True, exist_ok=True)
        self.csv = CsvSink(folder / "leads.csv")
        self.events = (folder / "events.ndjson").open("a", encoding="utf-8")
        self.next_bseq = 0
        self.pending: dict[int, dict[str, Any]] = {}
        self.seen_events: set[str] = set()
        self.blocks = self.duplicates = 0
        self.missing: list[int] = []
        self.end: dict[str, Any] | None = None
        self.fs_hz: float | None = None
        self.closed = False

    def block(self, msg: dict[str, Any]) -> None:
        b = int(msg["bseq"])
        if b < self.next_bseq or b in self.pending:
            self.duplicates += 1
            return
        self.pending[b] = msg
        while self.next_bseq in self.pending:
            self._write(self.pending.pop(self.next_bseq))
        if len(self.pending) > MAX_REORDER:  # an earlier block is not coming: move on
            self._skip_to(min(self.pending))

    def _skip_to(self, b: int) -> None:
        self.missing.extend(range(self.next_bseq, b))
        self.next_bseq = b
        while self.next_bseq in self.pending:
            self._write(self.pending.pop(self.next_bseq))

    def _write(self, msg: dict[str, Any]) -> None:
        fs = float(msg["fs_hz"])
        if self.fs_hz is None:  # rows from sample 0 of the session, whatever arrives first
            self.fs_hz = fs
            self.csv.write(SimpleNamespace(t0_s=0.0, fs_hz=fs, leads=np.zeros((0, 12)),
                                           std=np.zeros((0, 12))))
        leads, std = _arr(msg["leads"], "leads"), _arr(msg["std"], "std")
        if len(leads) != int(msg["n"]) or std.shape != leads.shape:
            raise ValueError(f"block {msg['bseq']}: n={msg['n']} but {len(leads)} rows")
        self.csv.write(SimpleNamespace(t0_s=int(msg["k0"]) / fs, fs_hz=fs, leads=leads,
                                       std=std))
        self.blocks += 1
        self.next_bseq += 1

    def event(self, msg: dict[str, Any], kind: str) -> None:
        body = msg.get("event") if kind == "event" else {"type": "status", **msg["status"]}
        key = json.dumps(body, sort_keys=True)
        if key in self.seen_events:
            self.duplicates += 1
            return
        self.seen_events.add(key)
        self.events.write(json.dumps(body) + "\n")
        self.events.flush()
        if body.get("type") == "end":
            self.end = body

    def close(self, fmt: str = "csv") -> dict[str, Any]:
        while self.pending:
            self._skip_to(min(self.pending))
        if self.end is not None and self.next_bseq < int(self.end.get("blocks", 0)):
            self.missing.extend(range(self.next_bseq, int(self.end["blocks"])))
        self.csv.close()
        self.events.close()
        files = {"csv": str(self.csv.path)}
        if fmt == "wfdb" and self.csv.rows >= 2:
            from edge.sinks.wfdb import write_wfdb

            files["wfdb"] = str(write_wfdb(self.csv.path, self.dir, "ecg12", self.fs_hz)[0])
        summary = {
            "device": self.device, "session": self.session, "fs_hz": self.fs_hz,
            "blocks": self.blocks, "rows": self.csv.rows, "nan_rows": self.csv.nan_rows,
            "duplicates": self.duplicates, "missing_bseq": self.missing,
            "end_received": self.end is not None,
            "complete": self.end is not None and not self.missing
            and self.blocks == int(self.end.get("blocks", -1)),
            "files": files,
        }
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        self.closed = True
        return summary


class Collector:
    """Subscribe to `<prefix>/+/...` and write each gateway session under `out`."""

    def __init__(self, target: MqttTarget, out: str | Path, client_id: str = "ecg12-collect",
                 fmt: str = "csv", announce: Any = None) -> None:
        self.target, self.out, self.fmt = target, Path(out), fmt
        self.client_id = client_id
        self.announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
        self.sessions: dict[tuple[str, str], DeviceSession] = {}
        self.errors: list[str] = []
        self.messages = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        #: the broker accepted us at least once during this run
        self.ever_connected = False
        self._warned = False
        self.client: Any = None

    def start(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.client = make_client(self.target, self.client_id, clean_session=False)
        c = self.client
        c.on_connect, c.on_message = self._on_connect, self._on_message
        c.on_disconnect = lambda *a: self.connected.clear()
        c.on_connect_fail = self._on_connect_fail
        try:
            c.connect_async(self.target.host, self.target.port, keepalive=15)
        except (OSError, ValueError) as exc:
            raise SinkError(f"collect {self.target.url}: {exc}") from None
        c.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            self.errors.append(f"broker refused the connection: {reason}")
            return
        p = self.target.prefix
        client.subscribe([(f"{p}/+/data", 1), (f"{p}/+/events", 1), (f"{p}/+/status", 1)])
        self.ever_connected = True
        self.connected.set()

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        if not self._warned:  # once: paho retries every few seconds
            self._warned = True
            self.announce(f"collect: warning: cannot reach the MQTT broker at "
                          f"{self.target.host}:{self.target.port} (still trying)")

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            msg = json.loads(message.payload)
            if not isinstance(msg, dict) or msg.get("schema") != SCHEMA:
                raise ValueError(f"not {SCHEMA}")
            device, session, kind = str(msg["device"]), str(msg["session"]), msg["kind"]
            if "/" in device or "/" in session or device.startswith("."):
                raise ValueError(f"bad device/session {device!r}/{session!r}")
            with self._lock:
                self.messages += 1
                s = self.sessions.get((device, session))
                if s is None:
                    s = DeviceSession(self.out / device / session, device, session)
                    self.sessions[(device, session)] = s
                    self.announce(f"collect: {device} session {session}")
                if s.closed:
                    return
                if kind == "block":
                    s.block(msg)
                elif kind in ("event", "status"):
                    s.event(msg, kind)
        except (ValueError, KeyError, TypeError) as exc:
            if len(self.errors) < 100:
                self.errors.append(f"{message.topic}: {' '.join(str(exc).split())[:200]}")

    def close(self) -> list[dict[str, Any]]:
        """Stop listening and close every session (summary.json each); returns summaries."""
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
        with self._lock:
            return [s.close(self.fmt) for s in self.sessions.values() if not s.closed]


@click.command()
@click.argument("url")
@click.option("--out", type=OutPath(path_type=Path, file_okay=False), required=True,
              help="folder for <device>/<session>/ (leads.csv, events.ndjson, summary.json)")
@click.option("--client-id", default="ecg12-collect", show_default=True,
              help="MQTT client id; keep it fixed so the broker holds messages while away")
@click.option("--format", "fmt", type=click.Choice(("csv", "wfdb")), default="csv",
              show_default=True, help="wfdb adds WFDB records per session at the end")
@click.option("--duration", type=Number(float, 0, lo_open=True), default=None,
              help="stop after S seconds")
def collect(url: str, out: Path, client_id: str, fmt: str, duration: float | None,
            **kw: Any) -> None:
    """Collect the sessions that gateways publish with `ecg12 stream --publish URL`
    (Ctrl-C or SIGTERM stops and closes every session).

    While the broker cannot be reached it keeps trying, with a one-line warning; a run that
    never got connected to it exits non-zero with one line naming the broker (and removes
    the --out folder it created, left empty)."""
    from edge.fieldkit import with_mqtt
    from edge.sinks.mqtt import parse_mqtt_url

    try:
        target = with_mqtt(parse_mqtt_url(url, what="collect"), kw)
    except SinkError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from None
    col = Collector(target, out, client_id, fmt)
    created = not out.exists()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"collecting {target.url}/+/(data|events|status) -> {out}/", err=True)
    col.start()
    stop.wait(duration)
    summaries = col.close()
    for s in summaries:
        click.echo(f"{s['device']}/{s['session']}: {s['rows']} rows ({s['nan_rows']} NaN), "
                   f"{s['blocks']} blocks, {s['duplicates']} duplicates, "
                   f"{'complete' if s['complete'] else 'INCOMPLETE'}", err=True)
    if not col.ever_connected:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        why = f": {col.errors[0]}" if col.errors else ""
        raise click.ClickException(f"collect {target.url}: never connected to the MQTT broker "
                                   f"at {target.host}:{target.port}{why}")
    if col.errors:
        click.echo(f"collect: {len(col.errors)} message(s) refused, first: {col.errors[0]}",
                   err=True)
    if not col.connected.is_set():
        click.echo(f"collect: warning: the connection to {target.host}:{target.port} was down "
                   "at the end (messages the broker held for this client id are still there)",
                   err=True)


def _mqtt_opts(f: Any) -> Any:
    from edge.fieldkit import mqtt_options

    return mqtt_options(f)


collect = _mqtt_opts(collect)
