"""Bounded chunk queue sized in seconds between a device reader and compute.

On overflow the oldest chunks are dropped and their duration is added to the next chunk's
`gap_before_s`: the consumer sees an explicit gap, never shifted samples.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses

from edge.chunk import Chunk

_END = object()


class ChunkQueue:
    """asyncio queue of Chunks holding at most `max_s` seconds of signal."""

    def __init__(self, max_s: float = 30.0) -> None:
        if not max_s > 0:
            raise ValueError(f"ChunkQueue max_s must be > 0, got {max_s}")
        self.max_s = max_s
        self.dropped_chunks = 0
        self.dropped_s = 0.0
        self._items: collections.deque[Chunk] = collections.deque()
        self._held_s = 0.0
        self._closed: BaseException | object | None = None
        self._ready = asyncio.Event()

    @property
    def held_s(self) -> float:
        return self._held_s

    def put(self, chunk: Chunk) -> None:
        """Add a chunk (call from the event loop thread; never blocks)."""
        self._items.append(chunk)
        self._held_s += chunk.duration_s
        while self._held_s > self.max_s and len(self._items) > 1:
            old = self._items.popleft()
            self._held_s -= old.duration_s
            self.dropped_chunks += 1
            self.dropped_s += old.duration_s
            nxt = self._items.popleft()
            lost = old.gap_before_s + old.duration_s
            self._items.appendleft(
                dataclasses.replace(nxt, gap_before_s=nxt.gap_before_s + lost))
        self._ready.set()

    def close(self, error: BaseException | None = None) -> None:
        """No more chunks; `get` raises `error` (or StopAsyncIteration) once drained."""
        self._closed = error if error is not None else _END
        self._ready.set()

    async def get(self) -> Chunk:
        while not self._items:
            if self._closed is not None:
                if self._closed is _END:
                    raise StopAsyncIteration
                raise self._closed  # type: ignore[misc]
            self._ready.clear()
            await self._ready.wait()
        chunk = self._items.popleft()
        self._held_s -= chunk.duration_s
        return chunk
