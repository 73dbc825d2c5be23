"""A growable array indexed by absolute sample position whose head can be dropped."""

from __future__ import annotations

from typing import Any

import numpy as np


class Buffer:
    """Samples ``base .. end - 1`` of a stream; ``view(a, b)`` by absolute index.

    Storage grows by doubling and ``drop_before`` only moves an offset, so ``append``/``grow``
    cost the samples they add, not the samples held; storage stays within twice the most
    samples held at once. A view stays valid until the next
    ``append``/``grow`` (a regrowth copies the live samples to new storage)."""

    def __init__(self, tail: tuple[int, ...] = (), dtype: Any = np.float64,
                 capacity: int = 1024) -> None:
        self._buf = np.zeros((max(1, int(capacity)), *tail), dtype=dtype)
        self._lo = self._hi = 0  # live samples are _buf[_lo:_hi]
        self.base = 0

    @property
    def data(self) -> np.ndarray:
        """The live samples (a view)."""
        return self._buf[self._lo:self._hi]

    @property
    def end(self) -> int:
        return self.base + self._hi - self._lo

    def _reserve(self, n: int) -> None:
        """Room for ``n`` more: compact into storage of the same size while the live samples
        fill at most half of it, else grow to twice the size (or exactly what is needed, for
        one large append)."""
        cap = len(self._buf)
        if self._hi + n <= cap:
            return
        live = self._hi - self._lo
        if live + n > cap // 2:
            cap = max(live + n, 2 * cap)
        new = np.empty((cap, *self._buf.shape[1:]), self._buf.dtype)
        new[:live] = self._buf[self._lo:self._hi]
        self._buf, self._lo, self._hi = new, 0, live

    def append(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        n = len(x)
        self._reserve(n)
        self._buf[self._hi:self._hi + n] = x
        self._hi += n

    def grow(self, n: int) -> None:
        """Append ``n`` zeros."""
        if n <= 0:
            return
        self._reserve(n)
        self._buf[self._hi:self._hi + n] = 0
        self._hi += n

    def view(self, a: int, b: int) -> np.ndarray:
        return self.data[a - self.base:b - self.base]

    def at(self, idx: np.ndarray) -> np.ndarray:
        """Samples at absolute indices ``idx`` (each in ``base .. end - 1``), a copy."""
        return self._buf[np.asarray(idx) + (self._lo - self.base)]

    def drop_before(self, i: int) -> None:
        """Forget samples before ``i`` (in steps of > 4096: earlier ones stay readable)."""
        if i - self.base > 4096:
            self._lo = min(self._hi, self._lo + i - self.base)
            self.base = i
