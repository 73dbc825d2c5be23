"""Fault campaign: fuzzed inputs per codec (ecg12 frames, Polar PMD, AD8232 ASCII) and link
drops on the fake H10 / a serial link, checked sample by sample against the truth.

    python -m firmware_bridge.campaign --short          # CI size (seconds)
    python -m firmware_bridge.campaign --damaged 1000000 --disconnects 100 --json out.json

For each codec, a known signal is sent as frames (or lines); each input is damaged with
probability 1/2 (bytes flipped, truncated, extended, junk before it, replayed, dropped, time
stamp bit flipped; for ASCII: a digit changed, a byte changed, a line lost, doubled or
merged). Every delivered sample is compared with the truth at the grid index the source gave
it: `wrong` samples differ from the truth there and lie in a damaged input (damage that
passed every check); `shifted` ones differ from it outside any damaged input (a good sample
at the wrong index: a loss not made an explicit gap, a duplicate, a misplaced time line);
`unaccounted` = samples neither delivered nor inside an explicit gap. `accept_rate` =
damaged inputs that changed samples and had wrong samples delivered / damaged inputs that
changed samples; `undamaged delivered` = the samples of undamaged inputs delivered (an
undamaged input must never be lost). Link drops (`polar-link`: the fake H10;
`ascii-link`: a millis() ASCII serial device) must give gaps of exactly the device time
that passed offline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_bridge.synth import synthetic_ecg

ASCII_LIMIT = ("one value per line has no sequence number and no time stamp: a lost or "
               "doubled line cannot be detected (later samples shift), and a reconnect gap "
               "comes from the host clock; print millis() before the value (`T,V`) to fix both")


@dataclass
class Result:
    codec: str
    inputs: int = 0
    damaged: int = 0
    altering: int = 0  # damaged inputs that changed sample data (not drop / replay)
    accepted_altering: int = 0
    delivered: int = 0
    wrong: int = 0
    shifted: int = 0
    unaccounted: int = 0
    gap_samples: int = 0
    counters: dict[str, Any] = field(default_factory=dict)
    expected: int = 0  # samples the device sent (the truth's length on the wire)
    undamaged_delivered: float = 0.0  # fraction of the samples of undamaged inputs delivered
    note: str = ""
    seconds: float = 0.0
    max_error_mv: float = 0.0

    @property
    def accept_rate(self) -> float:
        return self.accepted_altering / self.altering if self.altering else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["accept_rate"] = round(self.accept_rate, 5)
        d["delivered_fraction"] = round(self.delivered / self.expected, 5) if self.expected \
            else 0.0
        return d


class _Sink:
    """Stands in for a DeviceSource: collects what the chunkers `_put`."""

    def __init__(self) -> None:
        from edge.sources.base import SourceStats

        self.stats = SourceStats()
        self.k: list[np.ndarray] = []
        self.x: list[np.ndarray] = []
        self._next = 0
        self.gap = 0

    def _put(self, samples: np.ndarray, t0: float, fs: float, *, gap_s: float = 0.0,
             status: frozenset[str] = frozenset(), new_segment: bool = False) -> None:
        g = round(gap_s * fs)
        self._next += g
        self.gap += g
        self.k.append(self._next + np.arange(len(samples)))
        self.x.append(np.asarray(samples, np.float64))
        self._next += len(samples)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.k:
            return np.zeros(0, int), np.zeros(0)
        return np.concatenate(self.k), np.concatenate(self.x)


def _covered(n: int, ranges: list[tuple[int, int, bool]], altering_only: bool) -> np.ndarray:
    """How many damaged inputs cover each of `n` truth indices (all, or the altering ones)."""
    at = np.zeros(n + 1, np.int32)
    for a, b, altering in ranges:
        if altering or not altering_only:
            at[min(a, n)] += 1
            at[min(b, n)] -= 1
    return np.cumsum(at)[:n]


def _score(res: Result, sink: _Sink, truth_mv: np.ndarray, first: int, ranges: list[
        tuple[int, int, bool]], tol: float) -> None:
    """Compare delivered samples with the truth; `ranges` = (start, end, altering) of each
    damaged input, in truth indices."""
    n = len(truth_mv)
    k, x = sink.grid()
    idx = k + first
    inside = idx < n
    idx, x = idx[inside], x[inside]
    ok = np.abs(x - truth_mv[idx]) <= tol
    res.delivered = int(len(x))
    res.max_error_mv = float(np.abs(x - truth_mv[idx]).max()) if len(x) else 0.0
    bad = np.flatnonzero(~ok)
    # a wrong sample inside a damaged input is damage that passed every check; one outside
    # is a good sample delivered at the wrong grid index (a loss not made a gap)
    clean = _covered(n, ranges, altering_only=False) == 0
    if res.expected:
        clean[res.expected:] = False
    n_clean = int(clean.sum())
    res.undamaged_delivered = round(int(clean[idx].sum()) / n_clean, 5) if n_clean else 0.0
    in_damaged = _covered(n, ranges, altering_only=True)[idx[bad]] > 0
    res.shifted = int((~in_damaged).sum())
    res.wrong = int(in_damaged.sum())
    res.gap_samples = sink.gap
    span = int(k[-1] + 1) if len(k) else 0
    res.unaccounted = max(0, span - res.delivered - sink.gap)
    wrong_at = np.zeros(n + 1, bool)
    wrong_at[idx[bad]] = True
    csum = np.concatenate([[0], np.cumsum(wrong_at)])
    for a, b, altering in ranges:
        if altering:
            res.altering += 1
            if csum[min(b, n)] - csum[min(a, n)] > 0:
                res.accepted_altering += 1
    res.counters = sink.stats.as_dict()


def _damage_bytes(rng: np.random.Generator, frame: bytes, kinds: list[str],
                  history: list[bytes]) -> tuple[list[bytes], bool]:
    """(what is sent instead of `frame`, whether sample data was altered)."""
    kind = kinds[int(rng.integers(len(kinds)))]
    b = bytearray(frame)
    if kind == "flip":
        for pos in rng.integers(0, len(b), size=int(rng.integers(1, 5))):
            b[pos] ^= int(rng.integers(1, 256))
        return [bytes(b)], True
    if kind == "truncate":
        return [bytes(b[:int(rng.integers(1, len(b)))])], True
    if kind == "extend":
        return [bytes(b) + rng.integers(0, 256, int(rng.integers(1, 7)), np.uint8).tobytes()], \
            True
    if kind == "junk":
        return [rng.integers(0, 256, int(rng.integers(1, 41)), np.uint8).tobytes() + bytes(b)], \
            False
    if kind == "replay" and history:
        return [frame, history[-1 - int(rng.integers(min(len(history), 50)))]], False
    if kind == "ts":
        return [b"ts"], True  # placeholder, replaced by the caller (needs the codec)
    return [], False  # drop


def _send_frames(res: Result, rng: np.random.Generator, n_frames: int, per: int,
                 encode: Any, kinds: list[str], flip_ts: Any, feed: Any) -> list[
                     tuple[int, int, bool]]:
    """Send `n_frames` frames of `per` samples (`encode(i)`), each after the first 10
    damaged with probability 1/2 (`kinds`; "ts": `flip_ts(frame, rng)`), to `feed(wire, i)`;
    returns the damaged inputs' (start, end, altering) in truth indices."""
    history: list[bytes] = []
    ranges = []
    for i in range(n_frames):
        fr = encode(i)
        sent = [fr]
        if i >= 10 and rng.random() < 0.5:
            sent, altering = _damage_bytes(rng, fr, kinds, history)
            if sent == [b"ts"]:
                sent = [flip_ts(fr, rng)]
            res.damaged += 1
            ranges.append((i * per, (i + 1) * per, altering))
        history.append(fr)
        del history[:-64]
        for w in sent:
            res.inputs += 1
            feed(w, i)
    return ranges


def _flip_bit(frame: bytes, rng: np.random.Generator, at: int, bits: int) -> bytes:
    """`frame` with one of the `bits` bits of the time stamp at byte `at` flipped."""
    b = bytearray(frame)
    bit = int(rng.integers(0, bits))
    b[at + bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def fuzz_ecg12(n_damaged: int, seed: int = 0, clock_faults: bool = False) -> Result:
    """ecg12 frames (CRC-32): damaged bytes must never be delivered. `clock_faults`: instead,
    flip a time-stamp bit and fix the CRC (a firmware clock bug), scored for shifts."""
    from edge.sources.frames import FrameChunker
    from firmware_bridge.protocol import FrameEncoder
    from firmware_bridge.virtual_serial import reseal_ecg12

    rng = np.random.default_rng(seed)
    fs, per = 250, 25
    n_frames = 2 * n_damaged
    truth_uv = np.rint(synthetic_ecg(n_frames * per / fs + 1, fs, seed) * 1000)
    res = Result("ecg12-clock" if clock_faults else "ecg12")
    sink = _Sink()
    fc = FrameChunker(sink)  # type: ignore[arg-type]
    enc = FrameEncoder(fs)
    kinds = ["ts", "ts", "replay", "drop"] if clock_faults else ["flip", "truncate", "extend",
                                                             "junk", "replay", "drop"]
    t0 = time.perf_counter()
    ranges = _send_frames(
        res, rng, n_frames, per,
        lambda i: enc.encode(truth_uv[i * per:(i + 1) * per], timestamp_us=i * per * 4000),
        kinds, lambda fr, r: reseal_ecg12(_flip_bit(fr, r, 10, 32)),
        lambda w, i: fc.feed(w, i * per / fs + 0.02))
    fc.finish(n_frames * per / fs)
    res.seconds = time.perf_counter() - t0
    res.expected = n_frames * per
    # exact: damaged bytes are never delivered, and a valid frame with a wrong time stamp
    # moves nothing (the sequence numbers place it; no sample leaves the device's grid)
    _score(res, sink, truth_uv / 1000, 0, ranges, 1e-6)
    return res


def fuzz_polar(n_damaged: int, seed: int = 0) -> Result:
    """Polar PMD notifications (no CRC): plausibility checks only. Each notification goes
    through `PolarSource.feed`, the code path a live H10 session uses."""
    from edge.sources.polar import PolarSource
    from firmware_bridge.polar import encode_polar_ecg

    rng = np.random.default_rng(seed)
    fs, per = 130, 73
    n_frames = 2 * n_damaged
    truth_uv = np.rint(synthetic_ecg(n_frames * per / fs + 1, fs, seed) * 1000)
    res = Result("polar")
    sink = _Sink()
    src = PolarSource("C0:FF:EE:00:10:10")
    src._put = sink._put  # type: ignore[method-assign]  # straight to the scorer, no queue
    sink.stats = src.stats
    base_ns = 757_382_400 * 10**9
    t0 = time.perf_counter()
    ranges = _send_frames(
        res, rng, n_frames, per,
        lambda i: encode_polar_ecg(base_ns + round(((i + 1) * per - 1) * 1e9 / fs),
                                   truth_uv[i * per:(i + 1) * per]),
        ["flip", "truncate", "extend", "replay", "drop", "ts"],
        lambda fr, r: _flip_bit(fr, r, 1, 64),
        lambda w, i: src.feed(w, (i + 1) * per / fs + 0.05))
    src.finish()
    res.seconds = time.perf_counter() - t0
    res.expected = n_frames * per
    _score(res, sink, truth_uv / 1000, 0, ranges, 2e-3)
    return res


def fuzz_ascii(n_damaged: int, seed: int = 0, millis: bool = False) -> Result:
    """AD8232 one-value-per-line ASCII (no CRC, no sequence numbers); `millis`: each line
    starts with the sketch's millis() (`T,V`), which makes lost and doubled lines visible."""
    from edge.sources.serial import AsciiChunker
    from firmware_bridge.ascii import AdcScale

    rng = np.random.default_rng(seed)
    fs = 250.0
    n = 2 * n_damaged
    adc = AdcScale()
    counts = adc.mv_to_counts(synthetic_ecg(n / fs + 1, fs, seed))[:n]
    res = Result("ascii-millis" if millis else "ascii")
    sink = _Sink()
    ch = AsciiChunker(sink, fs, adc.bits, adc.vref_v, adc.gain)  # type: ignore[arg-type]
    ch.clock.update(0.0, 0.0)
    ranges = []
    kinds = ["digit", "byte", "drop", "double", "merge", "junk"]
    t0 = time.perf_counter()
    for i in range(n):
        line = b"%d,%d\r\n" % (i * 1000 // fs, counts[i]) if millis else b"%d\r\n" % counts[i]
        if i > 10 and rng.random() < 0.5:
            kind = kinds[int(rng.integers(len(kinds)))]
            b = bytearray(line)
            digits = len(line) - 2  # (the time's digits too, with millis)
            altering = kind in ("digit", "byte", "merge")
            if kind == "digit":
                pos = int(rng.integers(digits))
                b[pos] = ord("0") + (b[pos] - ord("0") + int(rng.integers(1, 10))) % 10
            elif kind == "byte":
                b[int(rng.integers(len(b)))] = int(rng.integers(0, 256))
            elif kind == "drop":
                b = bytearray()
            elif kind == "double":
                b = b + b
            elif kind == "merge":
                b = b[:-2]
            else:
                b = bytearray(b"x#!?\r\n") + b
            line = bytes(b)
            res.damaged += 1
            ranges.append((i, i + 1, altering))
        res.inputs += 1
        ch.feed(line, i / fs)
    ch.finish(n / fs)
    res.seconds = time.perf_counter() - t0
    res.expected = n
    res.note = "" if millis else ASCII_LIMIT
    _score(res, sink, adc.counts_to_mv(counts), 0, ranges, 1e-6)
    return res


async def _polar_disconnects(n: int, seed: int) -> Result:
    from edge.sources import open_source
    from firmware_bridge.fake_polar import FakePolarH10
    from firmware_bridge.faults import Faults

    sig = synthetic_ecg(600, 130, seed)
    dev = FakePolarH10(signal_mv=sig, speed=0, seed=seed,
                       faults=Faults(disconnect_every=4, offline_s=1.3))

    def factory(addr: Any, disconnected_callback: Any = None) -> FakePolarH10:
        dev.disconnected_callback = disconnected_callback
        return dev

    src = open_source("polar:C0:FF:EE:00:10:10", client_factory=factory, backoff_base_s=0.0)
    sink = _Sink()
    res = Result("polar-link")
    t0 = time.perf_counter()
    async for c in src:
        sink._put(c.samples[:, 0], c.t0_s, c.fs_hz, gap_s=c.gap_before_s)
        if src.stats.reconnects >= n:
            break
    await src.aclose()
    res.seconds = time.perf_counter() - t0
    res.inputs = dev.stats.frames
    res.damaged = dev.stats.disconnects
    truth = np.rint(sig * 1000) / 1000
    _score(res, sink, np.tile(truth, 3), 0, [], 1e-6)
    res.undamaged_delivered = 0.0  # not measured here (no per-input truth ranges)
    res.counters["expected_gap_samples"] = round(1.3 * 130)
    return res


class _MillisLink:
    """A serial port serving an AD8232 sketch's `T,V` lines (millis() first), 25 per read;
    every `every` reads the link drops, and `offline` lines are sampled while it is down
    (never sent); the first read after a reconnect starts with the tail of a line."""

    def __init__(self, lines: list[bytes], every: int, offline: int, drops: int) -> None:
        self.lines, self.every, self.offline, self.drops_left = lines, every, offline, drops
        self.i = self.reads = self.drops = 0
        self._tail = False

    def __call__(self, port: str, baud: int) -> _MillisLink:
        return self

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def read(self, max_bytes: int = 4096) -> bytes | None:
        from edge.sources.errors import Disconnected

        if self.i >= len(self.lines):
            return None
        self.reads += 1
        if self.reads % self.every == 0 and self.drops_left:
            self.drops_left -= 1
            self.drops += 1
            self.i += self.offline
            self._tail = True
            raise Disconnected("campaign: link dropped")
        tail, self._tail = self.lines[self.i - 1][-5:] if self._tail else b"", False
        out = tail + b"".join(self.lines[self.i:self.i + 25])
        self.i += 25
        return out


async def _ascii_disconnects(n: int, seed: int) -> Result:
    """`n` link drops of a millis() ASCII serial device through SerialSource: each gap must
    be exactly the device time that passed offline, every sample at its own time."""
    from edge.sources import open_source
    from firmware_bridge.ascii import AdcScale

    fs, every, offline = 250, 8, 330  # a drop every 8 reads (200 lines), 1.32 s offline
    n_lines = (n + 1) * (every * 25 + offline)
    adc = AdcScale()
    counts = adc.mv_to_counts(synthetic_ecg(n_lines / fs + 1, fs, seed))[:n_lines]
    lines = [b"%d,%d\r\n" % (5000 + i * 4, c) for i, c in enumerate(counts.tolist())]
    link = _MillisLink(lines, every, offline, n)
    src = open_source("serial:/dev/campaign?format=ascii&fs=250", transport_factory=link,
                      backoff_base_s=0.0)
    sink = _Sink()
    res = Result("ascii-link")
    t0 = time.perf_counter()
    async for c in src:
        sink._put(c.samples[:, 0], c.t0_s, c.fs_hz, gap_s=c.gap_before_s)
    await src.aclose()
    res.seconds = time.perf_counter() - t0
    res.inputs, res.damaged, res.expected = len(lines), link.drops, n_lines
    _score(res, sink, adc.counts_to_mv(counts), 0, [], 1e-6)
    res.undamaged_delivered = 0.0  # not measured here (no per-input truth ranges)
    res.counters["expected_gap_samples"] = offline
    res.counters.update(src.stats.as_dict())
    return res


def run(n_damaged: int, n_disconnects: int, seed: int = 0,
        on_result: Any = None) -> dict[str, Any]:
    """Every codec at `n_damaged` damaged inputs (ecg12 clock faults at a tenth), then the
    link drops; `on_result(results so far)` after each (the full size takes a while)."""
    jobs = [lambda: fuzz_ecg12(n_damaged, seed), lambda: fuzz_ecg12(n_damaged // 10, seed, True),
            lambda: fuzz_polar(n_damaged, seed), lambda: fuzz_ascii(n_damaged, seed),
            lambda: fuzz_ascii(n_damaged, seed, millis=True),
            lambda: asyncio.run(_polar_disconnects(n_disconnects, seed)),
            lambda: asyncio.run(_ascii_disconnects(n_disconnects, seed))]
    out: dict[str, Any] = {}
    for job in jobs:
        r = job()
        out[r.codec] = r.as_dict()
        if on_result is not None:
            on_result(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--damaged", type=int, default=1_000_000,
                    help="damaged inputs per codec (as many clean ones are sent too)")
    ap.add_argument("--disconnects", type=int, default=100)
    ap.add_argument("--short", action="store_true", help="CI size: 3000 damaged, 10 drops")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args(argv)
    n, d = (3000, 10) if a.short else (a.damaged, a.disconnects)
    def save(out: dict[str, Any]) -> None:
        if a.json:
            with open(a.json, "w") as fh:
                fh.write(json.dumps(out, indent=2, default=float) + "\n")

    out = run(n, d, a.seed, on_result=save)
    for codec, r in out.items():
        print(f"{codec:11s} inputs {r['inputs']:>9d} damaged {r['damaged']:>8d} delivered "
              f"{r['delivered']:>9d}/{r['expected']:<9d} wrong {r['wrong']:>6d} shifted "
              f"{r['shifted']:>6d} unaccounted {r['unaccounted']:>6d} gaps "
              f"{r['gap_samples']:>8d} accept {100 * r['accept_rate']:.2f}% max err "
              f"{r['max_error_mv']:.3g} mV undamaged delivered "
              f"{100 * r['undamaged_delivered']:.2f}% ({r['seconds']:.0f} s)")
        if r["note"]:
            print(f"{'':11s} limit: {r['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
