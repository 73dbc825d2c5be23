"""Sources against virtual devices (pty serial, fake Polar H10, fake BLE), with faults."""

from __future__ import annotations

import asyncio
import os
import tty

import numpy as np
import pytest

from edge.chunk import Chunk
from edge.sources import (
    DeviceNotFound,
    Disconnected,
    RecordingError,
    SourceURIError,
    open_source,
)
from edge.sources.clock import ClockMapper
from edge.sources.queue import ChunkQueue
from edge.sources.uri import parse_uri
from firmware_bridge.faults import Faults
from firmware_bridge.protocol import FrameEncoder, Status


async def collect(src, max_samples: int | None = None, timeout: float = 15.0) -> list[Chunk]:
    out: list[Chunk] = []

    async def run() -> None:
        async for c in src:
            out.append(c)
            if max_samples and sum(x.n for x in out) >= max_samples:
                break

    try:
        await asyncio.wait_for(run(), timeout)
    finally:
        await src.aclose()
    return out


def total(chunks: list[Chunk]) -> int:
    return sum(c.n for c in chunks)


def gap_samples(chunks: list[Chunk]) -> int:
    return sum(round(c.gap_before_s * c.fs_hz) for c in chunks)


# ---------------------------------------------------------------- URIs
@pytest.mark.parametrize("uri, needle", [
    ("nope:x", "unknown scheme"),
    ("sim:?bogus=1", "unknown option 'bogus'"),
    ("sim:?hr=abc", "bad value for hr"),
    ("sim:?hr=900", "hr=900"),
    ("sim:?chunk=1e9", r"chunk=1e\+09 s must be at most 60 s"),  # else: one chunk a minute
    ("sim:?chunk=61", "chunk=61 s must be at most 60 s"),
    ("sim:?drop=0.999", "drop=0.999 must be a probability within 0..0.9"),  # ~never a chunk
    ("sim:?drop=1", "drop=1 must be"),
    ("sim:?drop=-0.1", "drop=-0.1 must be"),
    ("sim:?seed=1&seed=2", "option 'seed' given twice"),
    ("polar:nothex", "'nothex' is not a BLE address"),
    ("polar:AA:BB:CC:DD:EE", "'AA:BB:CC:DD:EE' is not a BLE address"),
    ("ble:my-device", "'my-device' is not a BLE address"),
    ("serial:", "needs a port"),
    ("serial:/dev/x?format=hex", "format='hex'"),
    ("file:/no/such.csv", "not found"),
])
def test_bad_uris_name_the_problem(uri: str, needle: str) -> None:
    with pytest.raises((SourceURIError, RecordingError), match=needle):
        open_source(uri)


@pytest.mark.parametrize("uri", ["polar:", "polar:aa:bb:cc:dd:ee:ff", "ble:AA:BB:CC:DD:EE:FF",
                                 "polar:5D1F3A2B-0C4E-4F6A-9B8C-7D6E5F4A3B2C"])
def test_ble_addresses_a_user_can_give_are_accepted(uri: str) -> None:
    scheme, target, _ = parse_uri(uri)
    assert scheme == uri.split(":")[0] and target == uri.partition(":")[2]


def test_overrides_win_and_bare_path_is_file(tmp_path) -> None:
    src = open_source("sim:?fs=250", fs=500.0)
    assert src.fs_hz == 500.0
    p = tmp_path / "r.csv"
    p.write_text("t_s,ecg_mv\n" + "".join(f"{i / 100},{i % 7}\n" for i in range(300)))
    assert open_source(str(p)).fs_hz == pytest.approx(100.0)


# ---------------------------------------------------------------- simulator
def _sim(**kw) -> list[Chunk]:
    return asyncio.run(collect(open_source("sim:?duration=6&speed=0&seed=4", **kw)))


def test_sim_is_seeded_and_chunking_invariant() -> None:
    a, b = _sim(chunk=0.1), _sim(chunk=0.37)
    xa = np.concatenate([c.samples for c in a])
    xb = np.concatenate([c.samples for c in b])
    assert len(xa) == 6 * 250 and np.array_equal(xa, xb)
    assert [c.seq for c in a] == list(range(len(a)))
    assert all(c.gap_before_s == 0 for c in a)
    assert a[1].t0_s == pytest.approx(a[0].t_end_s)


def test_sim_dropped_chunks_become_exact_gaps() -> None:
    chunks = _sim(drop=0.3, chunk=0.2)
    assert any(c.gap_before_s > 0 for c in chunks)
    # received + missing = whole signal, nothing shifted or invented (unless the last is lost)
    assert total(chunks) + gap_samples(chunks) <= 1500
    for prev, c in zip(chunks, chunks[1:], strict=False):
        assert c.t0_s - prev.t_end_s == pytest.approx(c.gap_before_s, abs=1e-6)


def test_sim_flat_fault() -> None:
    x = np.concatenate([c.samples[:, 0] for c in _sim(flat=(2.0, 3.0))])
    assert np.all(x[500:750] == 0) and np.std(x[:500]) > 0.05


# ---------------------------------------------------------------- files
def test_csv_replay_nan_stretch_is_a_gap(tmp_path) -> None:
    x = np.sin(np.arange(1000) / 20)
    x[400:450] = np.nan
    p = tmp_path / "rec.csv"
    p.write_text("time,I\n" + "".join(f"{i / 250:.4f},{'' if np.isnan(v) else v}\n"
                                      for i, v in enumerate(x)))
    chunks = asyncio.run(collect(open_source(f"file:{p}?speed=0&chunk=0.3")))
    assert total(chunks) == 950 and gap_samples(chunks) == 50
    got = np.concatenate([c.samples[:, 0] for c in chunks])
    assert np.allclose(got, x[np.isfinite(x)], atol=1e-6)


def test_wfdb_and_edf_replay(tmp_path) -> None:
    import pyedflib
    import wfdb

    x = (np.sin(np.arange(2000) / 15) * 1.2).astype(np.float64)
    sig = np.column_stack([x, -x])
    wfdb.wrsamp("rec", fs=500, units=["mV", "mV"], sig_name=["II", "I"], p_signal=sig,
                fmt=["16", "16"], write_dir=str(tmp_path))
    chunks = asyncio.run(collect(open_source(f"file:{tmp_path / 'rec.hea'}?lead=I")))
    assert chunks[0].fs_hz == 500 and total(chunks) == 2000
    assert np.allclose(np.concatenate([c.samples[:, 0] for c in chunks]), -x, atol=1e-3)
    with pytest.raises(RecordingError, match="no lead 'V1'"):
        open_source(f"file:{tmp_path / 'rec.hea'}?lead=V1")

    edf = tmp_path / "rec.edf"
    w = pyedflib.EdfWriter(str(edf), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders([{"label": "ECG I", "dimension": "uV", "sample_frequency": 200,
                         "physical_max": 5000, "physical_min": -5000, "digital_max": 32767,
                         "digital_min": -32768}])
    w.writeSamples([x[:2000] * 1000])
    w.close()
    chunks = asyncio.run(collect(open_source(f"file:{edf}")))
    assert chunks[0].fs_hz == 200 and total(chunks) == 2000
    assert np.allclose(np.concatenate([c.samples[:, 0] for c in chunks]), x, atol=1e-3)


# ---------------------------------------------------------------- serial (pty)
def _frames(n_frames: int, per: int = 25, fs: int = 250, skip=(),
            status=None) -> tuple[bytes, np.ndarray]:
    enc = FrameEncoder(fs)
    x = np.rint(np.sin(np.arange(n_frames * per) / 9) * 800).astype(int)
    out = b""
    for k in range(n_frames):
        fr = enc.encode(x[k * per:(k + 1) * per], timestamp_us=int(k * per * 1e6 / fs),
                        status=(status or {}).get(k, 0))
        if k not in skip:
            out += fr
    return out, x


async def _pty_run(uri_opts: str, payload: list[bytes], want: int) -> tuple[list[Chunk], object]:
    master, slave = os.openpty()
    tty.setraw(slave)
    src = open_source(f"serial:{os.ttyname(slave)}?{uri_opts}")
    task = asyncio.create_task(collect(src, want))
    for _ in range(200):  # wait until the port is open (pyserial flushes input on open)
        if getattr(src, "_transport", None) is not None:
            break
        await asyncio.sleep(0.01)
    for part in payload:
        os.write(master, part)
        await asyncio.sleep(0.02)
    try:
        return await task, src
    finally:
        os.close(master)
        os.close(slave)


def test_serial_ecg12_lost_and_corrupt_frames_become_gaps() -> None:
    data, x = _frames(80, skip={30, 31, 60}, status={70: int(Status.LEAD_OFF)})
    junk = b"\xec\x12garbage\x00\xff" * 3
    parts = [data[:69 * 15], junk, data[69 * 15:2203], data[2203:]]  # junk between frames
    chunks, src = asyncio.run(_pty_run("fs=250&format=ecg12", parts, 77 * 25))
    assert total(chunks) == 77 * 25 and gap_samples(chunks) == 75
    got = np.concatenate([c.samples[:, 0] for c in chunks])
    keep = np.ones(len(x), bool)
    for k in (30, 31, 60):
        keep[k * 25:(k + 1) * 25] = False
    assert np.allclose(got, x[keep] / 1000, atol=1e-6)  # µV -> mV, nothing shifted
    assert src.stats.lost_frames == 3 and src.stats.bad_frames > 0
    assert any("lead_off" in c.status for c in chunks)


def test_serial_ascii_with_virtual_device() -> None:
    from firmware_bridge.ascii import AdcScale
    from firmware_bridge.virtual_serial import VirtualSerialDevice

    sig = np.sin(np.arange(1000) / 10)
    dev = VirtualSerialDevice(sig, 250, "ascii", speed=0, loop=False)

    async def main() -> list[Chunk]:
        src = open_source(f"serial:{dev.open()}?format=ascii&fs=250")
        task = asyncio.create_task(collect(src, 1000, timeout=10))
        while getattr(src, "_transport", None) is None:
            await asyncio.sleep(0.01)
        dev.start()
        return await task

    try:
        chunks = asyncio.run(main())
    finally:
        dev.stop()
    got = np.concatenate([c.samples[:, 0] for c in chunks])
    assert len(got) == 1000 and chunks[0].fs_hz == 250
    assert np.allclose(got, sig, atol=1.5 / AdcScale().counts_per_mv)


def test_serial_ascii_lead_off_and_garbage_lines_are_gaps() -> None:
    lines = [b"booting v1\r\n"] + [b"%d\r\n" % (512 + i) for i in range(100)]
    lines[50] = b"!\r\n"
    lines[51] = b"!\r\n"
    lines[70] = b"5#2\r\n"
    chunks, src = asyncio.run(_pty_run("format=ascii&fs=250", [b"".join(lines)], 97))
    assert total(chunks) == 97 and gap_samples(chunks) == 3
    assert any("lead_off" in c.status for c in chunks)


class FlakyTransport:
    """Serves frames; the first port object dies after `die_after` reads (unplugged)."""

    opened = 0

    def __init__(self, data: list[bytes], die_after: int) -> None:
        self.data, self.die_after = data, die_after

    def __call__(self, port: str, baud: int) -> FlakyTransport:
        FlakyTransport.opened += 1
        return self

    def open(self) -> None:
        pass

    def read(self, max_bytes: int = 4096) -> bytes | None:
        if not self.data:
            return None
        if self.die_after == 0:
            self.die_after = -1
            raise Disconnected("device reports readiness to read but returned no data")
        self.die_after -= 1
        return self.data.pop(0)

    def close(self) -> None:
        pass


def test_serial_disconnect_reconnects_with_gap() -> None:
    data, _ = _frames(40)
    frames = [data[i:i + 69] for i in range(0, len(data), 69)]  # one 25-sample frame each
    t = FlakyTransport(frames[:10] + frames[15:], die_after=10)
    src = open_source("serial:/dev/fake", transport_factory=t, backoff_base_s=0.01)
    chunks = asyncio.run(collect(src))
    assert src.stats.reconnects == 1
    assert total(chunks) == 35 * 25
    gapped = [c for c in chunks if c.gap_before_s > 0]
    assert len(gapped) == 1 and gapped[0].gap_before_s > 0


def test_serial_missing_port_is_device_not_found() -> None:
    src = open_source("serial:/dev/does-not-exist-ecg12", backoff_base_s=0.01)
    with pytest.raises(DeviceNotFound, match="cannot be opened"):
        asyncio.run(collect(src))


# ---------------------------------------------------------------- BLE
def _h10(**kw):
    from firmware_bridge.fake_polar import FakePolarH10

    dev = FakePolarH10(speed=0, seed=3, **kw)

    def factory(addr, disconnected_callback=None):
        dev.disconnected_callback = disconnected_callback
        return dev

    return dev, factory


def test_polar_dropped_frames_are_gaps_of_whole_frames() -> None:
    dev, factory = _h10(faults=Faults(drop_prob=0.15))
    src = open_source("polar:C0:FF:EE:00:10:10", client_factory=factory)
    chunks = asyncio.run(collect(src, 60 * 73))
    assert chunks[0].fs_hz == 130 and all(c.n == 73 for c in chunks)
    gaps = [c for c in chunks if c.gap_before_s > 0]
    assert gaps and all(round(c.gap_before_s * 130) % 73 == 0 for c in gaps)
    assert src.stats.lost_frames == sum(round(c.gap_before_s * 130) // 73 for c in gaps)
    assert abs(chunks[0].samples).max() < 5  # µV -> mV


def test_polar_reconnects_after_drop_and_resends_start() -> None:
    from firmware_bridge.polar import ecg_start_command

    dev, factory = _h10(faults=Faults(disconnect_after=8, offline_s=1.0), connect_failures=1)
    src = open_source("polar:C0:FF:EE:00:10:10", client_factory=factory, backoff_base_s=0.01)
    chunks = asyncio.run(collect(src, 20 * 73))
    assert src.stats.reconnects == 1
    assert dev.commands.count(ecg_start_command()) == 2
    gaps = [c for c in chunks if c.gap_before_s > 0]  # placed by device time, not host time
    assert len(gaps) == 1 and round(gaps[0].gap_before_s * 130) == 130
    first_gap = next(i for i, c in enumerate(chunks) if c.gap_before_s > 0)
    assert total(chunks[:first_gap]) == 8 * 73


class FakeScanner:
    def __init__(self, devices) -> None:
        self.devices = devices

    async def find_device_by_filter(self, match, timeout=10.0):
        class D:
            def __init__(self, address, name):
                self.address, self.name = address, name

        for addr, name in self.devices:
            if match(D(addr, name), None):
                return D(addr, name)
        return None


def test_polar_scan_finds_first_h10_or_reports_not_found() -> None:
    dev, factory = _h10()
    scanner = FakeScanner([("AA:01", "Mi Band"), ("C0:FF:EE:00:10:10", "Polar H10 1234")])
    src = open_source("polar:", client_factory=factory, scanner=scanner)
    assert total(asyncio.run(collect(src, 73))) >= 73
    src = open_source("polar:", client_factory=factory, scanner=FakeScanner([]),
                      backoff_base_s=0.01)
    with pytest.raises(DeviceNotFound, match="Polar H10"):
        asyncio.run(collect(src))


class FakeEcg12Client:
    """ecg12 GATT profile: frames split across 20-byte notifications."""

    def __init__(self, address, disconnected_callback=None) -> None:
        self.is_connected = False
        data, self.x = _frames(30, skip={12})
        self.packets = [data[i:i + 20] for i in range(0, len(data), 20)]

    async def connect(self) -> None:
        self.is_connected = True

    async def disconnect(self) -> None:
        self.is_connected = False

    async def start_notify(self, uuid, cb) -> None:
        from edge.sources.ble import ECG12_DATA_UUID

        assert uuid == ECG12_DATA_UUID
        for p in self.packets:
            cb(uuid, bytearray(p))


def test_ble_ecg12_profile_reassembles_frames() -> None:
    src = open_source("ble:11:22:33:44:55:66", client_factory=FakeEcg12Client)
    chunks = asyncio.run(collect(src, 29 * 25))
    assert total(chunks) == 29 * 25 and gap_samples(chunks) == 25


# ---------------------------------------------------------------- queue and clock
def test_queue_overflow_drops_oldest_with_explicit_gap() -> None:
    async def main() -> list[Chunk]:
        q = ChunkQueue(max_s=1.0)
        for k in range(10):
            q.put(Chunk(np.full(25, k, np.float32), k * 0.1, 250.0, seq=k))  # 0.1 s each
        for k in range(10, 20):
            q.put(Chunk(np.full(25, k, np.float32), k * 0.1, 250.0, seq=k))
        q.close()
        out = []
        while True:
            try:
                out.append(await q.get())
            except StopAsyncIteration:
                return out

    out = asyncio.run(main())
    assert sum(c.duration_s for c in out) <= 1.0 + 1e-9
    assert out[0].seq == 10 and out[0].gap_before_s == pytest.approx(1.0)
    assert all(c.gap_before_s == 0 for c in out[1:])


def test_clock_mapper_tracks_min_latency_offset() -> None:
    rng = np.random.default_rng(0)
    m = ClockMapper()
    for k in range(2000):
        dev_t = k * 0.1
        m.update(dev_t, 1000.0 + dev_t + 0.005 + rng.exponential(0.02))
    assert m.to_host(200.0) == pytest.approx(1200.005, abs=0.003)


def test_ascii_millis_column_makes_lost_and_doubled_lines_explicit() -> None:
    """`T,V` lines (the sketch prints millis() first): a lost line is a gap at its time, a
    doubled one is dropped, one damaged time digit is dropped as corrupt, never shifted."""
    from edge.sources.base import SourceStats
    from edge.sources.serial import AsciiChunker

    class Sink:
        def __init__(self) -> None:
            self.stats, self.k, self.v, self.next = SourceStats(), [], [], 0

        def _put(self, x, t0, fs, *, gap_s=0.0, status=frozenset(), new_segment=False):  # noqa: ANN001
            self.next += round(gap_s * fs)
            self.k += list(range(self.next, self.next + len(x)))
            self.v += np.asarray(x).tolist()
            self.next += len(x)

    sink = Sink()
    ch = AsciiChunker(sink, 250.0, 10, 3.3, 1100.0)  # type: ignore[arg-type]
    lines = [b"%d,%d\r\n" % (i * 4, 500 + i) for i in range(30)]
    damaged = b"%d,%d\r\n" % (12 * 4 + 400, 512)  # time digit changed (48 -> 448)
    wire = lines[:5] + lines[7:10] + [lines[10], lines[10]] + lines[11:12] + [damaged] + \
        lines[13:]
    for i, w in enumerate(wire):
        ch.feed(w, i / 250)
    ch.finish(1.0)
    scale = ch.scale
    counts = np.rint(np.asarray(sink.v) * scale.counts_per_mv + 512).astype(int)
    assert all(c == 500 + k for k, c in zip(sink.k, counts, strict=True))  # nothing shifted
    assert sorted(set(range(30)) - set(sink.k)) == [5, 6, 12]  # explicit gaps, at their time
    assert sink.stats.duplicates == 1 and sink.stats.corrupt == 1  # the damaged line
    assert sink.stats.lost_samples == 3  # two lost lines + the dropped one


# ---------------------------------------------------------------- ASCII millis() anchor
def _millis_lines(idx: range, t0_ms: int = 1000) -> list[bytes]:
    """`T,V` lines of a 250 Hz sketch: millis() then a ramp (each value names its sample)."""
    return [b"%d,%d\r\n" % (t0_ms + 4 * i, 100 + i) for i in idx]


def _reads(lines: list[bytes], per: int = 10) -> list[bytes]:
    return [b"".join(lines[i:i + per]) for i in range(0, len(lines), per)]


def _ramp_index(chunks: list[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """(grid index from the gaps, the sample each value names) of ramp chunks."""
    from firmware_bridge.ascii import AdcScale

    idx, named, k = [], [], 0
    for c in chunks:
        k += round(c.gap_before_s * c.fs_hz)
        idx.append(k + np.arange(c.n))
        named.append(np.rint(c.samples[:, 0] * AdcScale().counts_per_mv + 512) - 100)
        k += c.n
    return np.concatenate(idx), np.concatenate(named).astype(int)


def test_ascii_millis_reconnect_gap_is_placed_by_device_time() -> None:
    """The link drops after line 149; the device goes on sampling (lines 150-224 never
    arrive) and millis() goes on: the reconnect gap is 75 samples of device time, every
    later sample lands at its own time (not restarted at the host clock, not shifted)."""
    before = _millis_lines(range(150))
    after = [b"5,299\r\n"] + _millis_lines(range(225, 400))  # begins with a line's tail
    t = FlakyTransport(_reads(before) + _reads(after), die_after=15)
    src = open_source("serial:/dev/fake?format=ascii&fs=250", transport_factory=t,
                      backoff_base_s=0.01)
    chunks = asyncio.run(collect(src))
    k, named = _ramp_index(chunks)
    assert src.stats.reconnects == 1 and src.keeps_device_time
    assert np.array_equal(named, k)  # each sample at its device time
    assert np.array_equal(k, np.r_[0:150, 225:400])
    assert [round(c.gap_before_s * 250) for c in chunks if c.gap_before_s] == [75]
    assert src.stats.resets == 0 and src.stats.lost_samples == 75


def test_ascii_millis_device_restart_across_a_reconnect_is_a_new_segment() -> None:
    """Opening the port reset the board: millis() starts again near 0. That is a device
    restart (counted, flagged), a new segment placed by the host clock, never glued to the
    old time line nor taken as a gap of device time."""
    before = _millis_lines(range(150), t0_ms=60_000)
    after = [b"9,399\r\n", b"ecg12 sketch v1\r\n"] + _millis_lines(range(150, 300), t0_ms=2)
    t = FlakyTransport(_reads(before) + _reads(after), die_after=15)
    src = open_source("serial:/dev/fake?format=ascii&fs=250", transport_factory=t,
                      backoff_base_s=0.01)
    chunks = asyncio.run(collect(src))
    assert src.stats.reconnects == 1 and src.stats.resets == 1
    values = np.concatenate([_ramp_index([c])[1] for c in chunks])
    assert np.array_equal(values, np.arange(300))  # nothing lost, doubled or shifted
    first_new = next(i for i, c in enumerate(chunks) if "device_restarted" in c.status)
    assert _ramp_index([chunks[first_new]])[1][0] == 150
    assert chunks[first_new].gap_before_s > 0  # host time: the device cannot say how much
    assert not any("device_restarted" in c.status for c in chunks[:first_new])


def test_ascii_millis_restart_on_a_live_link_and_plain_ascii_reconnect() -> None:
    """A sketch reset without a link drop (millis() back to 0 mid-stream) is a restart too;
    plain ASCII (no millis()) still makes a reconnect gap from the host clock."""
    from edge.sources.base import SourceStats
    from edge.sources.serial import AsciiChunker

    class Sink:
        def __init__(self) -> None:
            self.stats, self.puts = SourceStats(), []

        def _put(self, x, t0, fs, *, gap_s=0.0, status=frozenset(), new_segment=False):  # noqa: ANN001
            self.puts.append((len(x), round(gap_s * fs), new_segment, status))

    sink = Sink()
    ch = AsciiChunker(sink, 250.0, 10, 3.3, 1100.0)  # type: ignore[arg-type]
    lines = _millis_lines(range(100), t0_ms=50_000) + _millis_lines(range(100, 200), t0_ms=0)
    for i, w in enumerate(lines):
        ch.feed(w, i / 250)
    ch.finish(1.0)
    assert sink.stats.resets == 1 and sum(p[0] for p in sink.puts) == 200
    assert [p[2] for p in sink.puts].count(True) == 1  # one new segment, where it restarted
    assert all(p[1] == 0 for p in sink.puts)
    # plain lines; one damaged into `T,V` shape must not make the stream a timed one
    plain = [b"%d\r\n" % (100 + i) for i in range(100)]
    plain[20] = b"1,900\r\n"
    t = FlakyTransport(_reads(plain[:50]) + _reads(plain[60:]), die_after=5)
    src = open_source("serial:/dev/fake?format=ascii&fs=250", transport_factory=t,
                      backoff_base_s=0.01)
    chunks = asyncio.run(collect(src))
    assert not src.keeps_device_time and src.stats.reconnects == 1
    assert sum(c.n for c in chunks) == 88  # all but the damaged line (a 1-sample gap) and
    first = [int(_ramp_index([c])[1][0]) for c in chunks if c.gap_before_s > 0]
    assert first == [21, 61]  # the first after the reconnect (maybe partial: skipped)


@pytest.mark.parametrize(("fs", "refused"), [(125, True), (500, True), (240, True),
                                             (250, False), (245, False)])
def test_ascii_millis_rate_far_from_the_given_fs_is_refused(fs: int, refused: bool) -> None:
    """A 250 Hz sketch read with fs=125 would drop every other line as a repeat, with
    fs=500 fill a gap between every two: the millis() column shows the true rate."""
    from edge.sources.errors import RateMismatch

    lines = [b"%d,%d\r\n" % (1000 + 4 * i, 512 + round(200 * np.sin(i / 40)))
             for i in range(1500)]  # 6 s
    src = open_source(f"serial:/dev/fake?format=ascii&fs={fs}",
                      transport_factory=FlakyTransport(_reads(lines), die_after=10_000),
                      backoff_base_s=0.01)
    if refused:
        with pytest.raises(RateMismatch, match=rf"arrive at 250 Hz .* fs={fs}"):
            asyncio.run(collect(src))
    else:
        chunks = asyncio.run(collect(src))
        assert total(chunks) == 1500 if fs == 250 else total(chunks) > 1450


@pytest.mark.parametrize(("given", "refused"), [("&fs=500", True), ("&fs=250", False),
                                                ("", False)])
def test_serial_ecg12_frames_at_another_rate_than_the_fs_given_are_refused(
        given: str, refused: bool) -> None:
    from edge.sources.errors import RateMismatch

    data, _ = _frames(40)  # 250 Hz frames
    src = open_source(f"serial:/dev/fake?format=ecg12{given}",
                      transport_factory=FlakyTransport([data[i:i + 300] for i in
                                                        range(0, len(data), 300)], 10_000),
                      backoff_base_s=0.01)
    if refused:
        with pytest.raises(RateMismatch, match="frames say 250 Hz but fs=500"):
            asyncio.run(collect(src))
    else:
        assert total(asyncio.run(collect(src))) == 40 * 25
