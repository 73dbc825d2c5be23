"""A growable array indexed by absolute sample position whose head can be dropped."""

from __future__ import annotations

from typing import Any

import numpy as np


class Buffer:
    """Samples ``base .. end - 1`` of a stream; ``view(a, b)`` by absolute index."""

    def __init__(self, tail: tuple[int, ...] = (), dtype: Any = np.float64) -> None:
        self.data = np.zeros((0, *tail), dtype=dtype)
        self.base = 0

    @property
    def end(self) -> int:
        return self.base + len(self.data)

    def append(self, x: np.ndarray) -> None:
        self.data = np.concatenate([self.data, np.asarray(x).astype(self.data.dtype)])

    def grow(self, n: int) -> None:
        """Append ``n`` zeros."""
        self.data = np.concatenate([self.data, np.zeros((n, *self.data.shape[1:]),
                                                        self.data.dtype)])

    def view(self, a: int, b: int) -> np.ndarray:
        return self.data[a - self.base:b - self.base]

    def at(self, idx: np.ndarray) -> np.ndarray:
        return self.data[np.asarray(idx) - self.base]

    def drop_before(self, i: int) -> None:
        """Forget samples before ``i`` (in steps of > 4096, so appends stay cheap)."""
        if i - self.base > 4096:
            self.data = self.data[i - self.base:].copy()
            self.base = i
