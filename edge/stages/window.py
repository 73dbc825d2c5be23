"""Window stage: model-rate samples in, model windows out.

Windows of ``L`` samples lie on a fixed grid (hop) from the segment start, so they do not
depend on chunking; ``close`` adds one window aligned to the segment end when the grid left
its tail uncovered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.stages.buffer import Buffer


@dataclass(frozen=True)
class Window:
    index: int  # position on the grid (the end-aligned window gets the next index)
    start: int  # first model-rate sample
    samples: np.ndarray  # (L,) conditioned Lead I, mV


class WindowGrid:
    def __init__(self, length: int, hop: int) -> None:
        self.L, self.hop = int(length), int(hop)
        self.x = Buffer()
        self.next_index = 0
        self.closed = False

    @property
    def n(self) -> int:
        """Model-rate samples received."""
        return self.x.end

    def push(self, y: np.ndarray) -> list[Window]:
        self.x.append(y)
        out = []
        while self.next_index * self.hop + self.L <= self.x.end:
            s = self.next_index * self.hop
            out.append(Window(self.next_index, s, self.x.view(s, s + self.L).copy()))
            self.next_index += 1
        return out

    def close(self) -> list[Window]:
        """End of the segment: the end-aligned window, if the grid did not reach the end."""
        self.closed = True
        n, L = self.x.end, self.L
        last_end = (self.next_index - 1) * self.hop + L if self.next_index else 0
        if n >= L and last_end < n:
            w = Window(self.next_index, n - L, self.x.view(n - L, n).copy())
            self.next_index += 1
            return [w]
        return []

    def final_before(self) -> int:
        """Model samples below this index get no further window (everything once closed)."""
        if self.closed:
            return self.x.end
        return self.x.end - self.L if self.next_index else 0

    def next_start(self) -> int:
        return self.next_index * self.hop

    def drop_before(self, i: int) -> None:
        self.x.drop_before(i)
