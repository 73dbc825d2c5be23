"""MQTT for a fleet: N gateways -> a real Mosquitto (Debian package, started here on
loopback) -> one collector, with a broker restart in the middle; every sample accounted for.

Skips with a reason when mosquitto is not installed locally; CI (`.ci/run`) installs it and
under CI=true a skip here fails the session (conftest, `needs_tools`).
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge.sinks.csv import read_csv

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def needs_mosquitto(f):
    f = pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="MQTT tests need Debian's "
                           "mosquitto (apt-get install mosquitto)")(f)
    return pytest.mark.needs_tools(f)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A private mosquitto on 127.0.0.1 with persistence (sessions survive a restart)."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\nmax_queued_messages 0\n"
            f"log_dest file {folder}/mosquitto.log\n"
            # as root, mosquitto drops to user 'mosquitto', which cannot write tmp_path
            f"user {getpass.getuser()}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)  # saves the persistent sessions
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path):
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()


def _target(broker: Broker, prefix: str = "fleet"):
    from edge.sinks.mqtt import parse_mqtt_url

    return parse_mqtt_url(f"mqtt://127.0.0.1:{broker.port}/{prefix}")


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


N_GATEWAYS, N_BLOCKS, ROWS = 20, 45, 40


def _plan(i: int) -> tuple[float, list[tuple[int, np.ndarray, np.ndarray]], np.ndarray]:
    """Gateway i's blocks (k0, leads, std) with two gaps, and the expected CSV rows
    (NaN where nothing was sent), built independently of the code under test."""
    rng = np.random.default_rng(i)
    fs = 130.0 if i % 2 else 250.0
    blocks, k = [], 0
    for b in range(N_BLOCKS):
        if b in (7, 30):  # a dropout before these blocks: 13 + i samples missing
            k += 13 + i
        leads = rng.normal(0, 1, (ROWS, 12)).astype(np.float32)
        std = rng.uniform(0.01, 0.3, (ROWS, 12)).astype(np.float32)
        leads[:3, 4] = np.nan  # rows without a reconstruction travel as null
        blocks.append((k, leads, std))
        k += ROWS
    expected = np.full((k, 24), np.nan)
    for k0, leads, std in blocks:
        expected[k0:k0 + ROWS, :12], expected[k0:k0 + ROWS, 12:] = leads, std
    return fs, blocks, expected


@needs_mosquitto
def test_fleet_through_a_broker_restart(broker: Broker, tmp_path: Path) -> None:
    from edge.collect import Collector
    from edge.sinks.mqtt import MqttPublisher

    target = _target(broker)
    col = Collector(target, tmp_path / "central", client_id="test-collector",
                    announce=lambda _: None)
    col.start()
    assert col.connected.wait(10)
    pubs = [MqttPublisher(target, f"gw{i:02d}", tmp_path / "buf" / f"gw{i:02d}",
                          announce=lambda _: None) for i in range(N_GATEWAYS)]
    plans = [_plan(i) for i in range(N_GATEWAYS)]
    for p in pubs:
        p.open()

    def send(lo: int, hi: int) -> None:
        for b in range(lo, hi):
            for p, (fs, blocks, _) in zip(pubs, plans, strict=True):
                k0, leads, std = blocks[b]
                p.block(k0, fs, leads, std)
                if b in (7, 30):
                    p.event({"type": "gap", "start_s": k0 / fs, "duration_s": 0.1})

    send(0, 15)
    _wait(lambda: all(p._connected for p in pubs), 10, "all gateways connected")
    broker.stop()  # outage: the gateways keep recording into their journals
    _wait(lambda: not any(p._connected for p in pubs), 10, "gateways to notice the outage")
    send(15, 30)
    assert all(p.queue.unacked > 0 for p in pubs), "the outage should have left a backlog"
    broker.start()
    send(30, N_BLOCKS)
    assert all(p.close(timeout_s=60) for p in pubs), "a gateway kept unsent messages"
    assert all(p.reconnects >= 1 for p in pubs)

    def ended() -> bool:
        with col._lock:
            return len(col.sessions) == N_GATEWAYS and all(
                s.end is not None and s.next_bseq == N_BLOCKS for s in col.sessions.values())

    _wait(ended, 60, "the collector to receive every session's end")
    summaries = {s["device"]: s for s in col.close()}
    assert not col.errors
    assert sorted(summaries) == [f"gw{i:02d}" for i in range(N_GATEWAYS)]
    for i in range(N_GATEWAYS):
        s = summaries[f"gw{i:02d}"]
        fs, _, expected = plans[i]
        assert s["complete"] and s["missing_bseq"] == [] and s["blocks"] == N_BLOCKS
        assert s["rows"] == len(expected) and s["fs_hz"] == fs
        t, leads, std = read_csv(s["files"]["csv"])
        got = np.column_stack([leads, std])
        assert np.array_equal(np.isnan(got), np.isnan(expected)), f"gw{i:02d}: NaN rows"
        ok = ~np.isnan(expected)
        assert np.allclose(got[ok], expected[ok], atol=1.5e-4), f"gw{i:02d}: values"
        assert np.allclose(t, np.arange(len(expected)) / fs, atol=1e-4)
        events = [json.loads(x) for x in
                  (Path(s["files"]["csv"]).parent / "events.ndjson").read_text().splitlines()]
        assert [e["type"] for e in events].count("gap") == 2
        assert events[-1]["type"] == "end" and events[-1]["blocks"] == N_BLOCKS
    # every journal was emptied once delivered
    assert not list((tmp_path / "buf").rglob("*.log"))


@needs_mosquitto
def test_gateway_restart_replays_its_journal(broker: Broker, tmp_path: Path) -> None:
    """A gateway that could not reach the broker keeps its journal and sends it next run."""
    from edge.collect import Collector
    from edge.sinks.mqtt import MqttPublisher, parse_mqtt_url

    dead = parse_mqtt_url(f"mqtt://127.0.0.1:{_free_port()}/fleet")  # nobody listens
    p1 = MqttPublisher(dead, "gwx", tmp_path / "buf", announce=lambda _: None)
    p1.open()
    leads = np.ones((10, 12), np.float32)
    p1.block(0, 100.0, leads, leads * 0.1)
    assert p1.close(timeout_s=0.5) is False  # kept on disk
    col = Collector(_target(broker), tmp_path / "central", client_id="c2",
                    announce=lambda _: None)
    col.start()
    assert col.connected.wait(10)
    p2 = MqttPublisher(_target(broker), "gwx", tmp_path / "buf", announce=lambda _: None)
    p2.open()
    p2.block(0, 100.0, leads * 2, leads * 0.1)
    assert p2.close(timeout_s=20)
    _wait(lambda: len(col.sessions) == 2 and all(s.end for s in col.sessions.values()), 20,
          "both sessions")
    sums = sorted(col.close(), key=lambda s: s["session"])
    assert [s["complete"] for s in sums] == [True, True]
    firsts = [read_csv(s["files"]["csv"])[1][0, 0] for s in sums]
    assert sorted(firsts) == [1.0, 2.0]


@needs_mosquitto
def test_stream_publish_and_collect_cli(broker: Broker, tmp_path: Path) -> None:
    """`ecg12 stream --publish` -> broker -> `ecg12 collect`: the central CSV equals the
    gateway's own leads.csv row for row (gaps included)."""
    url = f"mqtt://127.0.0.1:{broker.port}/site1"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    central = tmp_path / "central"
    col = subprocess.Popen([sys.executable, "-m", "edge.cli", "collect", url, "--out",
                            str(central), "--client-id", "cli-collector"], cwd=REPO,
                           stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert col.stderr is not None
        assert "collecting" in col.stderr.readline()
        time.sleep(0.5)
        r = subprocess.run([sys.executable, "-m", "edge.cli", "stream", "--source",
                            "sim:?seed=2&duration=24&speed=0&drop=0.05", "--publish", url,
                            "--device-id", "gw-cli", "--publish-buffer", str(tmp_path / "b"),
                            "--out", str(tmp_path / "gw"), "--quiet"], cwd=REPO,
                           capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stderr
        _wait(lambda: any(p.name == "events.ndjson" and '"end"' in p.read_text()
                          for p in central.rglob("events.ndjson")), 20, "the collector")
    finally:
        col.send_signal(signal.SIGTERM)
        rest = col.communicate(timeout=20)[1]
    assert col.returncode == 0, rest
    assert "complete" in rest and "INCOMPLETE" not in rest
    (session,) = list((central / "gw-cli").iterdir())
    summary = json.loads((session / "summary.json").read_text())
    gw = json.loads((tmp_path / "gw" / "summary.json").read_text())
    assert summary["complete"] and summary["rows"] == gw["rows_out"] and gw["gaps"] >= 1
    t0, l0, s0 = read_csv(tmp_path / "gw" / "leads.csv")
    t1, l1, s1 = read_csv(session / "leads.csv")
    assert np.array_equal(np.isnan(l0), np.isnan(l1)) and np.array_equal(t0, t1)
    assert np.allclose(l0, l1, atol=1.5e-4, equal_nan=True)
    assert np.allclose(s0, s1, atol=1.5e-4, equal_nan=True)


def test_bad_publish_url_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "edge.cli", "stream", "--publish",
                        "mqtt://host:notaport/x", "--out", str(tmp_path / "o")], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "mqtt://host:notaport/x" in r.stderr and "port" in r.stderr


def test_collector_session_drops_duplicates_and_reorders(tmp_path: Path) -> None:
    """At-least-once delivery: replayed and out-of-order blocks give the same CSV."""
    from edge.collect import DeviceSession

    fs, blocks, expected = _plan(3)

    def msg(b: int) -> dict:
        k0, leads, std = blocks[b]
        rows = lambda a: [[None if np.isnan(v) else float(v) for v in r] for r in a]  # noqa: E731
        return {"bseq": b, "k0": k0, "fs_hz": fs, "n": len(leads), "leads": rows(leads),
                "std": rows(std)}

    order = [0, 2, 1, 1, 0, 3, *range(4, N_BLOCKS), 5, 44]  # swaps and replays
    s = DeviceSession(tmp_path / "s", "gw", "x")
    for b in order:
        s.block(msg(b))
    s.event({"event": {"type": "end", "blocks": N_BLOCKS}}, "event")
    s.event({"event": {"type": "end", "blocks": N_BLOCKS}}, "event")
    summary = s.close()
    assert summary["duplicates"] == 5 and summary["complete"]
    _, leads, std = read_csv(tmp_path / "s" / "leads.csv")
    got = np.column_stack([leads, std])
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], atol=1.5e-4)


def test_collector_names_a_missing_block(tmp_path: Path) -> None:
    from edge.collect import DeviceSession

    s = DeviceSession(tmp_path / "s", "gw", "x")
    row = [[0.0] * 12] * 10
    for b in (0, 2):
        s.block({"bseq": b, "k0": 10 * b, "fs_hz": 100.0, "n": 10, "leads": row, "std": row})
    s.event({"event": {"type": "end", "blocks": 3}}, "event")
    summary = s.close()
    assert summary["missing_bseq"] == [1] and not summary["complete"]
    assert summary["rows"] == 30 and summary["nan_rows"] == 10  # the hole stays a hole


def test_journal_survives_a_crash(tmp_path: Path) -> None:
    """Records not acknowledged before a crash are read again, in order, by the next run."""
    from edge.sinks.mqtt import DiskQueue

    q = DiskQueue(tmp_path, segment_records=3)
    for i in range(8):
        q.append("t", f"m{i}")
    assert [q.read_next()[2] for _ in range(4)] == ["m0", "m1", "m2", "m3"]
    q.ack_before(2)  # m0, m1 acknowledged; m2, m3 in flight when the process dies
    with open(q._path(6), "a") as f:
        f.write("t\tm8-torn")  # a record cut by the crash
    q2 = DiskQueue(tmp_path, segment_records=3)
    got = []
    while (rec := q2.read_next()) is not None:
        got.append(rec[2])
    assert got == [f"m{i}" for i in range(2, 8)]
    q2.ack_before(q2.next_seq)
    q2.close()
    assert not list(tmp_path.glob("*.log"))


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_collect_without_a_broker_says_so_and_fails(tmp_path: Path) -> None:
    port = _closed_port()
    out = tmp_path / "col"
    r = subprocess.run([sys.executable, "-m", "edge.cli", "collect",
                        f"mqtt://127.0.0.1:{port}/x", "--out", str(out), "--duration", "3"],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("Error")]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0], r.stderr
    assert "never connected" in errors[0]
    assert "cannot reach the MQTT broker" in r.stderr  # the warning while it tries
    assert not out.exists()  # nothing collected: no empty folder left behind


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_collect_rejects_a_bad_duration(value: str, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "edge.cli", "collect", "mqtt://127.0.0.1:1/x",
                        "--out", str(tmp_path / "col"), "--duration", value],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "--duration" in r.stderr and not (tmp_path / "col").exists()
