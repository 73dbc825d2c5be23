"""Fault injection and real-time pacing shared by the virtual devices (seeded)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from firmware_bridge.errors import FirmwareBridgeError


@dataclass(frozen=True)
class Faults:
    """What goes wrong, per frame: drop it, flip 1-4 of its bytes, put 1-40 random bytes in
    front of it; disconnect after `disconnect_after` frames; the device clock runs
    `drift_ppm` fast (more samples per host second than nominal; timestamps stay nominal)."""

    drop_prob: float = 0.0
    corrupt_prob: float = 0.0
    garbage_prob: float = 0.0
    disconnect_after: int | None = None
    drift_ppm: float = 0.0

    def __post_init__(self) -> None:
        for name in ("drop_prob", "corrupt_prob", "garbage_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise FirmwareBridgeError(f"fault {name}={v} must be within 0..1")
        if self.disconnect_after is not None and self.disconnect_after < 0:
            raise FirmwareBridgeError(
                f"fault disconnect_after={self.disconnect_after} must be >= 0 frames")
        if not -1e5 < self.drift_ppm < 1e5:
            raise FirmwareBridgeError(f"fault drift_ppm={self.drift_ppm} is out of range")


@dataclass
class FaultStats:
    """Ground truth of what the injector did (to check a decoder's counters against)."""

    frames: int = 0
    sent: int = 0
    dropped: int = 0
    corrupted: int = 0
    garbage_bytes: int = 0
    disconnected: bool = False


class FaultInjector:
    """Applies `Faults` to a stream of encoded frames."""

    def __init__(self, faults: Faults | None = None, seed: int | None = 0) -> None:
        self.faults = faults or Faults()
        self.rng = np.random.default_rng(seed)
        self.stats = FaultStats()

    def should_disconnect(self) -> bool:
        after = self.faults.disconnect_after
        return after is not None and self.stats.frames >= after

    def apply(self, frame: bytes) -> bytes | None:
        """Bytes to transmit for `frame`, or None if it is dropped."""
        f, rng = self.faults, self.rng
        self.stats.frames += 1
        if f.drop_prob and rng.random() < f.drop_prob:
            self.stats.dropped += 1
            return None
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
