"""Taps: extra live outputs (browser view, MQTT) fed the same chunks and blocks as a Recorder.

A tap has `async start(recorder)`, `on_chunk(chunk, recorder)`, `on_blocks(blocks,
recorder)` (both called on the event loop, after the recorder saw the data; they must not
block) and `async stop(summary)`. `run_with_taps` starts them, routes the recorder's input
to them for the session, and always stops them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Sequence
from typing import Any, Protocol


class Tap(Protocol):
    async def start(self, recorder: Any) -> None: ...
    def on_chunk(self, chunk: Any, recorder: Any) -> None: ...
    def on_blocks(self, blocks: list[Any], recorder: Any) -> None: ...
    async def stop(self, summary: dict[str, Any] | None) -> None: ...


def attach(recorder: Any, taps: Sequence[Tap]) -> None:
    """Route `recorder.on_chunk` / `on_blocks` to `taps` too (after the recorder)."""
    own_chunk, own_blocks = recorder.on_chunk, recorder.on_blocks

    def on_chunk(chunk: Any) -> None:
        own_chunk(chunk)
        for tap in taps:
            tap.on_chunk(chunk, recorder)

    def on_blocks(blocks: list[Any]) -> None:
        own_blocks(blocks)
        for tap in taps:
            tap.on_blocks(blocks, recorder)

    recorder.on_chunk, recorder.on_blocks = on_chunk, on_blocks


async def run_with_taps(taps: Sequence[Tap], recorder: Any,
                        session: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """Start `taps`, await `session` (e.g. `run_session(...)`), stop the taps."""
    started: list[Tap] = []
    summary: dict[str, Any] | None = None
    try:
        for tap in taps:
            await tap.start(recorder)
            started.append(tap)
        attach(recorder, started)
        summary = await session
        return summary
    finally:
        if hasattr(session, "close") and summary is None and len(started) < len(taps):
            session.close()  # type: ignore[union-attr]  # never awaited: a tap failed to start
        for tap in reversed(started):
            with contextlib.suppress(Exception):
                await tap.stop(summary)
