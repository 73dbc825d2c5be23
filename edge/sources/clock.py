"""Map a device clock to the host monotonic clock: offset plus slow drift tracking.

Transport latency is always positive, so the smallest (arrival - device time) seen is the
best offset estimate; the offset snaps down at once and creeps up slowly (so a device clock
that runs slow is followed), and a linear drift estimate is kept for reporting. A new
segment (after a gap or reconnect) starts a fresh mapping: time is never glued across gaps.
"""

from __future__ import annotations


class ClockMapper:
    """host_time = offset + device_time, with `offset` tracked from arrival times."""

    def __init__(self, rise_per_s: float = 0.02) -> None:
        self.rise_per_s = rise_per_s
        self.offset_s: float | None = None
        self._first: tuple[float, float] | None = None  # (device_t, offset) at segment start
        self._last_device_t = 0.0

    def reset(self) -> None:
        """Start a new segment (after a gap, reconnect or device clock reset)."""
        self.offset_s = None
        self._first = None

    def update(self, device_t_s: float, arrival_s: float) -> float:
        """Feed one observation (device time of data that arrived at `arrival_s`)."""
        cand = arrival_s - device_t_s
        if self.offset_s is None:
            self.offset_s = cand
            self._first = (device_t_s, cand)
        elif cand < self.offset_s:
            self.offset_s = cand
        else:
            dt = max(0.0, device_t_s - self._last_device_t)
            excess = cand - self.offset_s
            self.offset_s += min(excess, self.rise_per_s * dt * excess)
        self._last_device_t = device_t_s
        return self.offset_s

    def to_host(self, device_t_s: float) -> float:
        if self.offset_s is None:
            raise RuntimeError("ClockMapper.to_host before any update()")
        return self.offset_s + device_t_s

    @property
    def drift_ppm(self) -> float:
        """Offset change per device second since the segment start, in ppm (0 if unknown)."""
        if self._first is None or self.offset_s is None:
            return 0.0
        span = self._last_device_t - self._first[0]
        return 0.0 if span < 1.0 else (self.offset_s - self._first[1]) / span * 1e6
