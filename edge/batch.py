"""Hand the pipeline chunks in batches: one call per output block, not one per chunk.

A device sends a notification every few tens of milliseconds, but the pipeline can only emit
once a window completes or a block of ``min_emit_s`` becomes final. ``ChunkBatcher`` holds
the chunks that cannot change anything yet (``StreamingReconstructor.quiet_samples``) and
releases them, in order, with the chunk that can; a gap releases at once. The output and the
moment it appears are those of pushing every chunk (tested), for a fraction of the calls.
A released batch that runs at most one model window (``heavy`` false) is cheap enough to push
on the event loop: a window costs a few ms, and a thread hand-off on a busy single core
about a tenth of that (``benchmarks.throughput``); a longer batch (a burst after a
reconnect, a gap) goes to the worker thread.
"""

from __future__ import annotations

from typing import Any

from edge.chunk import Chunk


class ChunkBatcher:
    """``add(chunk)`` -> the chunks to push now (empty: hold it); ``pushed(quiet)`` after a
    push with the reconstructor's ``quiet_samples()``; ``drain()`` -> whatever is held."""

    def __init__(self) -> None:
        self.held: list[Chunk] = []
        self._n = 0  # samples held
        self._quiet = 0  # samples the pipeline can take without output (0 = push at once)
        self._light = 0  # samples it can take running the model at most once
        #: the batch last released runs more than one model window (or may: a gap, unknown)
        self.heavy = True

    def add(self, chunk: Chunk) -> list[Chunk]:
        self.held.append(chunk)
        self._n += chunk.n
        if chunk.gap_before_s == 0 and self._n <= self._quiet:
            return []
        # a gap releases at once, so only this chunk can bring one
        self.heavy = chunk.gap_before_s > 0 or self._n > self._light
        return self.drain()

    def pushed(self, quiet: tuple[int, int, int]) -> None:
        """After a push: the reconstructor's ``quiet_samples()``."""
        self._quiet, self._light = max(0, int(quiet[0])), max(0, int(quiet[2]))

    def drain(self) -> list[Chunk]:
        out, self.held, self._n, self._quiet, self._light = self.held, [], 0, 0, 0
        return out


def push_batch(rec: Any, chunks: list[Chunk]) -> tuple[list[Any], tuple[int, int, int]]:
    """Push ``chunks`` and read the new quiet count (one worker-thread call for both)."""
    blocks = rec.push_many(chunks)
    return blocks, rec.quiet_samples()
