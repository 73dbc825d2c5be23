"""`--publish mqtt://host:port/prefix`: a gateway's 12 leads, events and status over MQTT.

Topics (per device; `device` = --device-id, default the host name):
  `<prefix>/<device>/data`    12-lead blocks with std      QoS 1
  `<prefix>/<device>/events`  start, gap, flag, features, end  QoS 1
  `<prefix>/<device>/status`  status about once a second   QoS 1
  `<prefix>/<device>/online`  retained "1"/"0" (last will)  QoS 1, not buffered
Payloads are UTF-8 JSON, schema `ecg12.mqtt/1` (docs/FLEET.md): every message has
`{"schema": "ecg12.mqtt/1", "device", "session", "kind"}`; a block adds `bseq` (0, 1, ...
per session), `k0` (index of its first row, samples since the session's first sample),
`fs_hz`, `n`, `t0_s` (= k0 / fs_hz), `leads` and `std` (n rows of 12 values, mV, 4 decimals,
null = no reconstruction); an event adds `event` (as in events.ndjson); status adds `status`;
the `end` event carries `blocks` and `rows`, so a collector knows it has everything.

Nothing is lost in a broker outage: every message is first appended to a journal on disk
(`--publish-buffer`, default ~/.cache/ecg12/mqtt/<device>) and removed only after the
broker's PUBACK; after a reconnect (or the next run, after a crash) the journal is replayed
in order from the oldest unacknowledged message. Delivery is at least once: collectors drop
duplicates by (device, session, bseq / seq). paho-mqtt is imported only when publishing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from edge.sinks.csv import SinkError
from edge.sinks.events import _plain

SCHEMA = "ecg12.mqtt/1"
_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True)
class MqttTarget:
    """Where and how to connect (from an mqtt:// or mqtts:// URL plus options)."""

    host: str
    port: int
    prefix: str
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}/{self.prefix}"


def parse_mqtt_url(url: str, *, what: str = "--publish") -> MqttTarget:
    """`mqtt://[user[:password]@]host[:port]/prefix` (port 1883) or `mqtts://...` (TLS, 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise SinkError(f"{what} {url!r}: use mqtt://host:port/prefix or mqtts://... "
                        f"(got scheme {parts.scheme or 'none'!r})")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise SinkError(f"{what} {url!r}: port must be a number 1-65535") from None
    if not parts.hostname:
        raise SinkError(f"{what} {url!r}: no broker host")
    prefix = parts.path.strip("/") or "ecg12"
    if any(c in prefix for c in "+#") or "//" in prefix:
        raise SinkError(f"{what} {url!r}: prefix {prefix!r} may not contain '+', '#' or '//'")
    return MqttTarget(parts.hostname, port, prefix, parts.scheme == "mqtts",
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None)


def with_options(target: MqttTarget, *, username: str | None = None,
                 password: str | None = None, tls: bool = False, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None) -> MqttTarget:
    """Command-line options on top of the URL (options win; a CA file implies TLS)."""
    return replace(target, username=username or target.username,
                   password=password or target.password,
                   tls=target.tls or tls or bool(ca_file), ca_file=ca_file,
                   cert_file=cert_file, key_file=key_file)


def check_device_id(device: str) -> str:
    if not _ID.match(device):
        raise SinkError(f"--device-id {device!r}: use 1-64 letters, digits, '_', '.', '-'")
    return device


def default_device_id() -> str:
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname())[:64]
    return name or "gateway"


def make_client(target: MqttTarget, client_id: str, clean_session: bool = True) -> Any:
    """A paho-mqtt 2.x client (MQTT 3.1.1) with the target's TLS and credentials."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise SinkError("MQTT needs paho-mqtt: pip install 'paho-mqtt>=2.0'") from None
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         clean_session=clean_session, protocol=mqtt.MQTTv311)
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        for name, f in (("CA", target.ca_file), ("certificate", target.cert_file),
                        ("key", target.key_file)):
            if f and not Path(f).is_file():
                raise SinkError(f"MQTT TLS {name} file not found: {f}")
        try:
            client.tls_set(ca_certs=target.ca_file, certfile=target.cert_file,
                           keyfile=target.key_file)
        except (OSError, ValueError) as exc:
            raise SinkError(f"MQTT TLS setup: {exc}") from None
    client.reconnect_delay_set(0.2, 2.0)
    return client


class DiskQueue:
    """Append-only journal of (topic, payload) records in segment files, with a read cursor
    and a persisted acknowledgement point (`acked` = first seq not yet acknowledged)."""

    def __init__(self, folder: str | Path, segment_records: int = 2000) -> None:
        self.dir = Path(folder)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkError(f"MQTT buffer {self.dir}: {exc.strerror}") from None
        self.segment_records = segment_records
        self._lock = threading.RLock()
        ack_file = self.dir / "acked"
        self.acked = int(ack_file.read_text()) if ack_file.is_file() else 0
        self._segments = sorted(int(p.stem) for p in self.dir.glob("*.log"))
        self.next_seq = self.acked
        if self._segments:
            last = self._path(self._segments[-1])
            self.next_seq = max(self.acked, self._segments[-1] + _count_lines(last))
        self._w: Any = None
        self._w_first = -1
        self._cursor = self.acked  # next seq to read
        self._r: Any = None
        self._r_first = -1
        self._r_seq = -1
        self._synced = time.monotonic()

    def _path(self, first: int) -> Path:
        return self.dir / f"{first:012d}.log"

    def append(self, topic: str, payload: str) -> int:
        """Journal one record; returns its seq."""
        with self._lock:
            seq = self.next_seq
            if self._w is None or seq - self._w_first >= self.segment_records:
                if self._w is not None:
                    self._w.close()
                self._w_first = seq
                self._segments.append(seq)
                self._w = self._path(seq).open("a", encoding="utf-8")
            self._w.write(f"{topic}\t{payload}\n")
            self._w.flush()
            if time.monotonic() - self._synced > 1.0:
                os.fsync(self._w.fileno())
                self._synced = time.monotonic()
            self.next_seq = seq + 1
            return seq

    @property
    def pending(self) -> int:
        """Records after the read cursor."""
        return self.next_seq - self._cursor

    @property
    def unacked(self) -> int:
        return self.next_seq - self.acked

    def read_next(self) -> tuple[int, str, str] | None:
        """(seq, topic, payload) at the cursor, advancing it; None when all are read."""
        with self._lock:
            if self._cursor >= self.next_seq:
                return None
            seq = self._cursor
            first = max(s for s in self._segments if s <= seq)
            if self._r is None or self._r_first != first or self._r_seq != seq:
                if self._r is not None:
                    self._r.close()
                self._r = self._path(first).open("r", encoding="utf-8")
                self._r_first, self._r_seq = first, first
                while self._r_seq < seq:
                    self._r.readline()
                    self._r_seq += 1
            line = self._r.readline()
            self._r_seq += 1
            self._cursor = seq + 1
            topic, _, payload = line.rstrip("\n").partition("\t")
            return seq, topic, payload

    def rewind(self, seq: int) -> None:
        with self._lock:
            self._cursor = max(self.acked, min(seq, self._cursor))

    def ack_before(self, seq: int) -> None:
        """Everything before `seq` is acknowledged: persist, drop finished segments."""
        with self._lock:
            if seq <= self.acked:
                return
            self.acked = seq
            tmp = self.dir / "acked.tmp"
            tmp.write_text(str(seq))
            tmp.replace(self.dir / "acked")
            while len(self._segments) > 1 and self._segments[1] <= seq:
                first = self._segments.pop(0)
                if self._r is not None and self._r_first == first:
                    self._r.close()
                    self._r = None
                self._path(first).unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            for f in (self._w, self._r):
                if f is not None:
                    with contextlib.suppress(OSError):
                        f.flush() if f is self._w else None
                        f.close()
            self._w = self._r = None
            if self.acked >= self.next_seq:  # all delivered: leave an empty folder
                for first in self._segments:
                    self._path(first).unlink(missing_ok=True)
                self._segments = []


def _count_lines(path: Path) -> int:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):  # a record torn by a crash: cut it off
        data = data[:data.rfind(b"\n") + 1]
        path.write_bytes(data)
    return data.count(b"\n")


def _rows(a: np.ndarray) -> list[list[float | None]]:
    x = np.round(np.asarray(a, dtype=np.float64), 4).tolist()
    return [[v if v == v else None for v in row] for row in x]


class MqttPublisher:
    """Publishes one gateway's session (a tap: edge.sinks.tap). QoS 1, journal on disk."""

    def __init__(self, target: MqttTarget, device: str, buffer_dir: str | Path | None = None,
                 *, max_inflight: int = 100, drain_s: float = 10.0, source: Any = None,
                 status_every_s: float = 1.0, announce: Any = None) -> None:
        self.target, self.device = target, check_device_id(device)
        self.base = f"{target.prefix}/{device}"
        self.session = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + \
            uuid.uuid4().hex[:6]
        buf = Path(buffer_dir) if buffer_dir else \
            Path.home() / ".cache" / "ecg12" / "mqtt" / device
        self.queue = DiskQueue(buf)
        self.max_inflight, self.drain_s = max_inflight, drain_s
        self.source, self.status_every_s = source, status_every_s
        self.announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
        self.bseq = 0
        self.rows = 0
        self._next_status = 0.0
        self._cv = threading.Condition()
        self._connected = False
        self._inflight: dict[int, int] = {}  # mid -> journal seq
        self._early: set[int] = set()  # PUBACKs that came before publish() returned
        self._sending: int | None = None  # seq being handed to paho (outside the lock)
        self._epoch = 0  # +1 per disconnect: a publish begun before it is void
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.client: Any = None
        self.sent = 0
        self.reconnects = 0

    # --- tap ---
    async def start(self, recorder: Any = None) -> None:
        self.open()

    def open(self) -> None:
        """Connect (in the background) and start the sender thread."""
        self.client = make_client(self.target, f"ecg12-gw-{self.device}", clean_session=True)
        c = self.client
        c.will_set(f"{self.base}/online", "0", qos=1, retain=True)
        c.max_inflight_messages_set(self.max_inflight)
        c.on_connect, c.on_disconnect, c.on_publish = self._on_connect, self._on_disconnect, \
            self._on_publish
        try:
            c.connect_async(self.target.host, self.target.port, keepalive=15)
        except (OSError, ValueError) as exc:
            raise SinkError(f"--publish {self.target.url}: {exc}") from None
        c.loop_start()
        self._thread = threading.Thread(target=self._sender, name=f"mqtt-{self.device}",
                                        daemon=True)
        self._thread.start()

    def on_chunk(self, chunk: Any, recorder: Any) -> None:
        if chunk.gap_before_s > 0 and recorder.gaps:
            self.event(recorder.gaps[-1])
        if recorder.chunks == 1:
            self.event({"type": "start", "source": recorder.source, "fs_hz": chunk.fs_hz})
        now = time.monotonic()
        if now >= self._next_status:
            self._next_status = now + self.status_every_s
            stats = getattr(self.source, "stats", None)
            self.status({"t_s": recorder.samples_in / chunk.fs_hz, "chunks": recorder.chunks,
                         "samples": recorder.samples_in, "rows": self.rows,
                         "gaps": len(recorder.gaps), "features": recorder.features,
                         "device": stats.as_dict() if hasattr(stats, "as_dict") else {}})

    def on_blocks(self, blocks: list[Any], recorder: Any) -> None:
        for b in blocks:
            if b.n:
                k0 = int(round((b.t0_s - recorder.origin_s) * b.fs_hz))
                self.block(k0, b.fs_hz, b.leads, b.std)
            for f in b.flags:
                self.event({"type": "flag", "kind": f.kind, "start_s": recorder.rel(f.start_s),
                            "end_s": recorder.rel(f.end_s), "leads": list(f.leads),
                            "value": f.value, "threshold": f.threshold, "detail": f.detail})

    async def stop(self, summary: dict[str, Any] | None) -> None:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.close, summary)

    # --- messages ---
    def _put(self, sub: str, kind: str, body: dict[str, Any]) -> None:
        msg = {"schema": SCHEMA, "device": self.device, "session": self.session, "kind": kind,
               **body}
        self.queue.append(f"{self.base}/{sub}", json.dumps(msg, allow_nan=False,
                                                           separators=(",", ":")))
        with self._cv:
            self._cv.notify()

    def block(self, k0: int, fs_hz: float, leads: np.ndarray, std: np.ndarray) -> None:
        """Publish rows k0 .. k0+n-1 (leads/std (n, 12) mV)."""
        n = int(len(leads))
        self._put("data", "block", {"bseq": self.bseq, "k0": int(k0), "fs_hz": float(fs_hz),
                                    "n": n, "t0_s": round(k0 / fs_hz, 6), "units": "mV",
                                    "leads": _rows(leads), "std": _rows(std)})
        self.bseq += 1
        self.rows += n

    def event(self, event: dict[str, Any]) -> None:
        self._put("events", "event", {"event": _plain(event)})

    def status(self, status: dict[str, Any]) -> None:
        self._put("status", "status", {"status": _plain(status)})

    def close(self, summary: dict[str, Any] | None = None, timeout_s: float | None = None
              ) -> bool:
        """Send `end`, wait up to `drain_s` for every message to be acknowledged, disconnect.
        Returns True when nothing is left in the journal."""
        self.event({"type": "end", "blocks": self.bseq, "rows": self.rows,
                    "interrupted": bool((summary or {}).get("interrupted"))})
        deadline = time.monotonic() + (self.drain_s if timeout_s is None else timeout_s)
        with self._cv:
            while self.queue.unacked and time.monotonic() < deadline:
                self._cv.wait(0.1)
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(2.0)
        left = self.queue.unacked
        with contextlib.suppress(Exception):
            if self._connected:
                self.client.publish(f"{self.base}/online", "0", qos=1, retain=True)
            self.client.disconnect()
            self.client.loop_stop()
        self.queue.close()
        if left:
            self.announce(f"mqtt: {left} message(s) for {self.target.url} kept in "
                          f"{self.queue.dir}; they are sent first on the next --publish run")
        return not left

    # --- paho callbacks (network thread) and the sender ---
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            return
        client.publish(f"{self.base}/online", "1", qos=1, retain=True)
        with self._cv:
            self._connected = True
            self._cv.notify_all()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any = None) -> None:
        with self._cv:
            if self._connected:
                self.reconnects += 1
            self._connected = False
            self._epoch += 1
            unacked = list(self._inflight.values()) + (
                [self._sending] if self._sending is not None else [])
            if unacked:  # unacknowledged: send again, in order, after reconnecting
                self.queue.rewind(min(unacked))
            self._inflight.clear()
            self._early.clear()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any = None,
                    props: Any = None) -> None:
        with self._cv:
            if self._inflight.pop(mid, None) is None:
                self._early.add(mid)
                return
            self._acked()

    def _acked(self) -> None:
        """(lock held) advance the journal's acknowledgement point."""
        pending = list(self._inflight.values()) + (
            [self._sending] if self._sending is not None else [])
        self.queue.ack_before(min(pending) if pending else
                              self.queue.next_seq - self.queue.pending)
        self.sent += 1
        self._cv.notify_all()

    def _sender(self) -> None:
        while True:
            with self._cv:
                while not self._stopping and not (
                        self._connected and self.queue.pending
                        and len(self._inflight) < self.max_inflight):
                    self._cv.wait(0.5)
                if self._stopping:
                    return
                rec = self.queue.read_next()
                if rec is None:
                    continue
                seq, topic, payload = rec
                self._sending, epoch = seq, self._epoch
            # outside the lock: paho holds its own lock while calling on_publish
            info = self.client.publish(topic, payload, qos=1)
            with self._cv:
                self._sending = None
                if epoch != self._epoch:  # disconnected meanwhile: already rewound
                    continue
                if info.rc != 0:  # not connected after all: rewind, wait for on_connect
                    self.queue.rewind(seq)
                    self._connected = False
                    continue
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self._acked()
                else:
                    self._inflight[info.mid] = seq
