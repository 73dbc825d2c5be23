"""Fault injection and real-time pacing shared by the virtual devices (seeded)."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from firmware_bridge.errors import FirmwareBridgeError


@dataclass(frozen=True)
class Faults:
    """What goes wrong, per frame: drop it, flip 1-4 of its bytes, put 1-40 random bytes in
    front of it; disconnect after `disconnect_after` frames; the device clock runs
    `drift_ppm` fast (more samples per host second than nominal; timestamps stay nominal).

    Clock and link faults of real devices:
    `rate_error`: the ADC runs at nominal * (1 + rate_error) on the device's own clock, and
    the time stamps say so (the Polar H10: 130 Hz +- 2 %, +- 5 % over temperature);
    `replay_prob`: after a frame, resend one of the last `replay_depth` frames unchanged;
    `timestamp_corrupt_prob`: flip one bit of the frame's time stamp (a protocol with a CRC
    gets a valid CRC: a firmware clock bug, not line noise);
    `disconnect_every`: drop the link after every N frames (not only once);
    `offline_s`: device time that passes (samples lost) while the link is down;
    `clock_reset_after`: after N frames the device clock restarts at 0 (battery change).
    """

    drop_prob: float = 0.0
    corrupt_prob: float = 0.0
    garbage_prob: float = 0.0
    disconnect_after: int | None = None
    drift_ppm: float = 0.0
    rate_error: float = 0.0
    replay_prob: float = 0.0
    replay_depth: int = 3
    timestamp_corrupt_prob: float = 0.0
    disconnect_every: int | None = None
    offline_s: float = 0.0
    clock_reset_after: int | None = None

    def __post_init__(self) -> None:
        for name in ("drop_prob", "corrupt_prob", "garbage_prob", "replay_prob",
                     "timestamp_corrupt_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise FirmwareBridgeError(f"fault {name}={v} must be within 0..1")
        for name in ("disconnect_after", "disconnect_every", "clock_reset_after"):
            v = getattr(self, name)
            if v is not None and v < (1 if name == "disconnect_every" else 0):
                raise FirmwareBridgeError(f"fault {name}={v} must be a positive frame count")
        if not -1e5 < self.drift_ppm < 1e5:
            raise FirmwareBridgeError(f"fault drift_ppm={self.drift_ppm} is out of range")
        if not -0.2 < self.rate_error < 0.2:
            raise FirmwareBridgeError(f"fault rate_error={self.rate_error} must be within +-0.2")
        if self.replay_depth < 1:
            raise FirmwareBridgeError(f"fault replay_depth={self.replay_depth} must be >= 1")
        if not self.offline_s >= 0:
            raise FirmwareBridgeError(f"fault offline_s={self.offline_s} must be >= 0")


@dataclass
class FaultStats:
    """Ground truth of what the injector did (to check a decoder's counters against)."""

    frames: int = 0
    sent: int = 0
    dropped: int = 0
    corrupted: int = 0
    garbage_bytes: int = 0
    disconnected: bool = False
    replayed: int = 0
    timestamps_corrupted: int = 0
    disconnects: int = 0


class FaultInjector:
    """Applies `Faults` to a stream of encoded frames.

    `timestamp_bytes` = (start, end) of the time stamp field inside a frame, and `reseal`
    rebuilds a frame's checksum after the time stamp was changed (for timestamp faults).
    """

    def __init__(self, faults: Faults | None = None, seed: int | None = 0, *,
                 timestamp_bytes: tuple[int, int] | None = None,
                 reseal: Callable[[bytes], bytes] | None = None) -> None:
        self.faults = faults or Faults()
        self.rng = np.random.default_rng(seed)
        self.stats = FaultStats()
        self.timestamp_bytes = timestamp_bytes
        self.reseal = reseal
        self._recent: collections.deque[bytes] = collections.deque(
            maxlen=self.faults.replay_depth)
        self._since_disconnect = 0

    def should_disconnect(self) -> bool:
        """True when the link should drop now (counts the disconnect)."""
        f = self.faults
        once = f.disconnect_after is not None and self.stats.frames >= f.disconnect_after \
            and not self.stats.disconnected
        every = f.disconnect_every is not None and self._since_disconnect >= f.disconnect_every
        if once or every:
            self.stats.disconnects += 1
            self._since_disconnect = 0
            return True
        return False

    def clock_reset_due(self) -> bool:
        """True exactly once, when the device clock should restart at 0."""
        after = self.faults.clock_reset_after
        return after is not None and self.stats.frames == after

    def apply_all(self, frame: bytes) -> list[bytes]:
        """Everything to transmit for `frame`: nothing (dropped), it, maybe a replay after."""
        out = self.apply(frame)
        sent = [] if out is None else [out]
        f = self.faults
        if f.replay_prob and len(self._recent) > 1 and self.rng.random() < f.replay_prob:
            back = int(self.rng.integers(1, len(self._recent)))
            sent.append(self._recent[-1 - back])
            self.stats.replayed += 1
        return sent

    def apply(self, frame: bytes) -> bytes | None:
        """Bytes to transmit for `frame`, or None if it is dropped."""
        f, rng = self.faults, self.rng
        self.stats.frames += 1
        self._since_disconnect += 1
        clean = True
        if f.timestamp_corrupt_prob and self.timestamp_bytes and \
                rng.random() < f.timestamp_corrupt_prob:
            a, b = self.timestamp_bytes
            bit = int(rng.integers(0, 8 * (b - a)))
            buf = bytearray(frame)
            buf[a + bit // 8] ^= 1 << (bit % 8)
            frame = self.reseal(bytes(buf)) if self.reseal else bytes(buf)
            self.stats.timestamps_corrupted += 1
            clean = False
        if f.drop_prob and rng.random() < f.drop_prob:
            self.stats.dropped += 1
            return None
        if clean:
            self._recent.append(frame)  # only frames really sent intact are replayed
        return self._damage(frame)

    def _damage(self, frame: bytes) -> bytes:
        f, rng = self.faults, self.rng
        out = bytearray(frame)
        if f.corrupt_prob and out and rng.random() < f.corrupt_prob:
            for pos in rng.integers(0, len(out), size=int(rng.integers(1, 5))):
                out[pos] ^= int(rng.integers(1, 256))
            self.stats.corrupted += 1
        if f.garbage_prob and rng.random() < f.garbage_prob:
            junk = rng.integers(0, 256, size=int(rng.integers(1, 41)), dtype=np.uint8).tobytes()
            out[:0] = junk
            self.stats.garbage_bytes += len(junk)
        self.stats.sent += 1
        return bytes(out)


class Pacer:
    """Waits until a device-clock time is due on the host clock; speed 0 = no waiting."""

    def __init__(self, speed: float = 1.0, drift_ppm: float = 0.0) -> None:
        if speed < 0:
            raise FirmwareBridgeError(f"speed={speed} must be >= 0 (0 = as fast as possible)")
        self.speed = speed
        self.rate = 1.0 + drift_ppm * 1e-6
        self.t0 = time.monotonic()

    def delay(self, device_time_s: float) -> float:
        """Seconds to wait before emitting data stamped `device_time_s` after start."""
        if self.speed == 0:
            return 0.0
        return self.t0 + device_time_s / self.rate / self.speed - time.monotonic()
