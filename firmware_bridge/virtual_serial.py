"""A virtual serial device on a pseudo-terminal: streams a signal as ecg12 frames or ASCII
lines from a background thread, at real rate (or `speed` times faster; 0 = flat out), with
injected faults. Open `device.port` with pyserial as if it were /dev/ttyUSB0."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios
import threading
import time
import tty
import zlib
from collections.abc import Iterator
from typing import Literal

import numpy as np

from firmware_bridge.ascii import AdcScale, encode_ascii
from firmware_bridge.errors import FirmwareBridgeError
from firmware_bridge.faults import FaultInjector, Faults, FaultStats, Pacer
from firmware_bridge.protocol import CRC_LEN, FrameEncoder, SampleFormat, Status

Format = Literal["ecg12", "ascii"]


def iter_chunks(signal_mv: np.ndarray, size: int, loop: bool) -> Iterator[tuple[int, np.ndarray]]:
    """(index of first sample since start, chunk) of `size` samples, looping if asked."""
    n = len(signal_mv)
    start = 0
    while True:
        pos = start % n if loop else start
        if not loop and pos >= n:
            return
        idx = (pos + np.arange(size)) % n if loop else np.arange(pos, min(pos + size, n))
        yield start, signal_mv[idx]
        start += len(idx)


class FrameSource:
    """Turns a signal into wire bytes, frame by frame, for one format."""

    def __init__(self, signal_mv: np.ndarray, fs_hz: float, fmt: Format = "ecg12", *,
                 samples_per_frame: int | None = None, loop: bool = True, stream_id: int = 0,
                 sample_format: SampleFormat = SampleFormat.INT16, start_timestamp_us: int = 0,
                 adc: AdcScale | None = None, rate_error: float = 0.0) -> None:
        """`rate_error`: the device samples at fs_hz * (1 + rate_error) on its own clock
        (ecg12 time stamps say so; the frames' fs field stays nominal)."""
        sig = np.asarray(signal_mv, dtype=np.float64)
        if sig.ndim != 1 or sig.size == 0:
            raise FirmwareBridgeError(f"signal_mv must be 1-D and non-empty, got {sig.shape}")
        if fmt not in ("ecg12", "ascii"):
            raise FirmwareBridgeError(f"unknown device format {fmt!r} (ecg12 or ascii)")
        if fmt == "ecg12" and abs(fs_hz - round(fs_hz)) > 1e-9:
            raise FirmwareBridgeError(f"ecg12 needs an integer fs_hz, got {fs_hz}")
        self.fs_hz = float(fs_hz)
        self.fmt = fmt
        spf = samples_per_frame or max(1, min(255, int(round(fs_hz / 10))))
        if not 1 <= spf <= 255:
            raise FirmwareBridgeError(f"samples_per_frame={spf} must be within 1..255")
        self.samples_per_frame = spf
        self.adc = adc or AdcScale()
        self.start_timestamp_us = start_timestamp_us
        self.true_fs_hz = self.fs_hz * (1.0 + rate_error)
        self._encoder = FrameEncoder(int(round(fs_hz)), stream_id, sample_format)
        self._chunks = iter_chunks(sig, spf, loop)

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        """(device time in s of the frame's last sample, wire bytes)."""
        for start, chunk in self._chunks:
            off = np.isnan(chunk)
            t_end = (start + len(chunk)) / self.true_fs_hz
            if self.fmt == "ascii":
                counts = self.adc.mv_to_counts(np.where(off, 0.0, chunk))
                yield t_end, encode_ascii(counts, off)
                continue
            status = Status.LEAD_OFF if off.any() else Status(0)
            uv = np.rint(np.where(off, 0.0, chunk) * 1000.0).astype(np.int64)
            ts = self.start_timestamp_us + int(round(start * 1e6 / self.true_fs_hz))
            yield t_end, self._encoder.encode(uv, ts, status)


def reseal_ecg12(frame: bytes) -> bytes:
    """Recompute the CRC-32 of an ecg12 frame whose header was changed."""
    body = frame[:-CRC_LEN]
    return body + struct.pack("<I", zlib.crc32(body))


def ecg12_injector(faults: Faults, seed: int | None) -> FaultInjector:
    """A FaultInjector that knows where an ecg12 frame keeps its time stamp (bytes 10-13)."""
    return FaultInjector(faults, seed, timestamp_bytes=(10, 14), reseal=reseal_ecg12)


class VirtualSerialDevice:
    """A pty that streams frames; `port` is the path to open; use as a context manager."""

    def __init__(self, signal_mv: np.ndarray, fs_hz: float, fmt: Format = "ecg12", *,
                 speed: float = 1.0, faults: Faults | None = None, seed: int | None = 0,
                 loop: bool = True, samples_per_frame: int | None = None,
                 sample_format: SampleFormat = SampleFormat.INT16, stream_id: int = 0,
                 adc: AdcScale | None = None) -> None:
        self.faults = faults or Faults()
        self.source = FrameSource(signal_mv, fs_hz, fmt, samples_per_frame=samples_per_frame,
                                  loop=loop, stream_id=stream_id, sample_format=sample_format,
                                  adc=adc, rate_error=self.faults.rate_error)
        self.injector = ecg12_injector(self.faults, seed) if fmt == "ecg12" else \
            FaultInjector(self.faults, seed)
        self._pacer_args = (speed, self.faults.drift_ppm)
        Pacer(*self._pacer_args)  # validates speed
        self._master: int | None = None
        self._slave: int | None = None
        self.port = ""
        self._stop = threading.Event()
        self.finished = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def stats(self) -> FaultStats:
        return self.injector.stats

    def open(self) -> str:
        """Create the pty (no data yet) and return its path, so a reader can attach first."""
        if self._master is None:
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)
            os.set_blocking(self._master, False)
            self.port = os.ttyname(self._slave)
        return self.port

    def start(self) -> VirtualSerialDevice:
        """Open the pty if needed and start streaming from a background thread."""
        if self._thread is not None:
            raise FirmwareBridgeError("virtual serial device already started")
        self.open()
        self._thread = threading.Thread(target=self._run, name="ecg12-vserial", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self._master, self._slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the signal is exhausted (loop=False) or the device disconnected."""
        return self.finished.wait(timeout)

    def __enter__(self) -> VirtualSerialDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write(self, data: bytes) -> bool:
        view = memoryview(data)
        while view and not self._stop.is_set():
            _, writable, _ = select.select([], [self._master], [], 0.1)
            if not writable:
                continue
            try:
                n = os.write(self._master, view)  # type: ignore[arg-type]
            except BlockingIOError:
                continue
            view = view[n:]
        return not view

    def _drain(self, timeout_s: float) -> None:
        """Let a reader take what was sent before hanging up (a pty hangup discards it)."""
        end = time.monotonic() + timeout_s
        empty_polls = 0  # the pty moves data to the reader's queue asynchronously
        while self._slave is not None and time.monotonic() < end and not self._stop.is_set():
            queued = struct.unpack("i", fcntl.ioctl(self._slave, termios.FIONREAD, b"\0" * 4))[0]
            empty_polls = empty_polls + 1 if queued == 0 else 0
            if empty_polls >= 5:
                return
            time.sleep(0.01)

    def _run(self) -> None:
        pacer = Pacer(*self._pacer_args)
        f = self.faults
        offline_until: float | None = None
        try:
            for t_dev, data in self.source:
                if self._stop.is_set():
                    return
                if offline_until is not None and t_dev <= offline_until:
                    continue  # the link is down; the device keeps sampling (samples lost)
                offline_until = None
                closing = f.disconnect_after is not None and \
                    self.stats.frames >= f.disconnect_after and not self.stats.disconnected
                if self.injector.should_disconnect() and not closing:
                    # a pty cannot come back under the same name: a repeated link drop is
                    # a silent link for `offline_s` of device time (this frame included)
                    offline_until = t_dev + f.offline_s
                    continue
                if closing:
                    self._drain(timeout_s=2.0)
                    self.stats.disconnected = True
                    master, self._master = self._master, None
                    if master is not None:
                        os.close(master)
                    return
                wait = pacer.delay(t_dev)
                if wait > 0 and self._stop.wait(wait):
                    return
                for out in self.injector.apply_all(data):
                    if not self._write(out):
                        return
        except BaseException as exc:  # surfaced through .error, never lost silently
            self.error = exc
        finally:
            self.finished.set()
