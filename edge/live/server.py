"""`ecg12 stream --view`: a local web page with the 12 leads live, over Server-Sent Events.

Stdlib only (asyncio streams, a minimal HTTP/1.1 server): `/` the page, `/app.js` its
script (both shipped in edge/live/static, nothing fetched at run time), `/events` the SSE
stream. Binds 127.0.0.1 by default; on any other address every request must carry the
random `token` printed in the URL.

End-to-end delay: from the arrival at the gateway of the chunk holding a block's newest
sample to that block leaving for the page (the window look-ahead and compute; the page adds
only loopback transit). SSE messages (`data:` lines, JSON, `type` field):
- `hello`  {fs_hz, layout, token_required}
- `block`  {t_s, fs_hz, leads [[12 mV]...], std [[12 mV]...]}: t_s of the first row, seconds
  since the first sample; null = no reconstruction (gap); decimated to <= 250 Hz for display
- `flag`   {kind, start_s, end_s, leads, value, threshold, detail} (as in events.ndjson)
- `gap`    {start_s, end_s, duration_s} as soon as the source reports it
- `status` {connected, t_s, chunks, samples, rate_hz, hr_bpm, qrs_ms, delay_s, gaps, flags,
  device {source counters}} about twice a second
- `end`    {interrupted, rows_out}
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import secrets
import sys
import time
from collections import deque
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from edge.sinks.events import _plain

LOOPBACK = "127.0.0.1"
MAX_DISPLAY_HZ = 250.0
_HISTORY_S = 12.0
_CLIENT_QUEUE = 2000


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _rows(a: np.ndarray) -> list[list[float | None]]:
    out = np.round(np.asarray(a, dtype=np.float64), 4).tolist()
    return [[v if v == v and math.isfinite(v) else None for v in row] for row in out]


class LiveView:
    """The live page's server; a tap (edge.sinks.tap) of the streaming session."""

    def __init__(self, host: str = LOOPBACK, port: int = 8712, source: Any = None,
                 token: str | None = None, status_every_s: float = 0.5,
                 announce: Any = None) -> None:
        self.host, self.port, self.source = host, int(port), source
        self.token = token if token is not None else (
            None if is_loopback(host) else secrets.token_urlsafe(16))
        self.status_every_s = status_every_s
        self.announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
        self.url = ""
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.Queue[str | None]] = set()
        self._history: deque[tuple[float, str]] = deque()
        self._flags: deque[str] = deque(maxlen=200)
        self._status = ""
        self._fs: float | None = None
        self._last_chunk = 0.0
        self._next_status = 0.0
        self._delay_s: float | None = None
        self._rate: deque[tuple[float, int]] = deque(maxlen=50)
        self._arrivals: deque[tuple[float, float]] = deque()  # (chunk end t_s, host time)
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- tap ---
    async def start(self, recorder: Any) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            from edge.sinks.csv import SinkError

            raise SinkError(f"--view: cannot listen on {self.host}:{self.port} "
                            f"({exc.strerror or exc})") from None
        port = self._server.sockets[0].getsockname()[1]
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{port}/" + (f"?token={self.token}" if self.token else "")
        self.announce(f"live view: {self.url}")

    def on_chunk(self, chunk: Any, recorder: Any) -> None:
        now = time.monotonic()
        self._last_chunk = now
        self._rate.append((now, chunk.n))
        self._arrivals.append((recorder.rel(chunk.t_end_s), now))
        if self._fs is None:
            self._fs = chunk.fs_hz
            self._send(json.dumps({"type": "hello", "fs_hz": chunk.fs_hz,
                                   "token_required": bool(self.token)}), keep=False)
        if chunk.gap_before_s > 0 and recorder.gaps:
            g = recorder.gaps[-1]
            self._flag_msg({"type": "gap", "start_s": g["start_s"], "end_s": g["end_s"],
                            "duration_s": g["duration_s"]})
        if now >= self._next_status:
            self._next_status = now + self.status_every_s
            self._send_status(recorder)

    def on_blocks(self, blocks: list[Any], recorder: Any) -> None:
        now = time.monotonic()
        for b in blocks:
            if b.n:
                k = max(1, int(round(b.fs_hz / MAX_DISPLAY_HZ)))
                t = recorder.rel(b.t0_s)
                self._delay_s = self._delay(t + b.n / b.fs_hz, now)
                msg = json.dumps({"type": "block", "t_s": round(t, 6), "fs_hz": b.fs_hz / k,
                                  "leads": _rows(b.leads[::k]), "std": _rows(b.std[::k])})
                self._send(msg, keep=True, t=t)
            for f in b.flags:
                self._flag_msg({"type": "flag", **_plain({
                    "kind": f.kind, "start_s": recorder.rel(f.start_s),
                    "end_s": recorder.rel(f.end_s), "leads": list(f.leads), "value": f.value,
                    "threshold": f.threshold, "detail": f.detail})})

    async def stop(self, summary: dict[str, Any] | None) -> None:
        s = summary or {}
        self._send(json.dumps({"type": "end", "interrupted": bool(s.get("interrupted")),
                               "rows_out": s.get("rows_out")}), keep=False)
        for q in list(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(None)
        await asyncio.sleep(0.05)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        for task in list(self._tasks):
            task.cancel()

    def _delay(self, end_rel_s: float, now: float) -> float | None:
        """Seconds since the chunk holding the block's last sample reached the gateway."""
        eps = 1e-6
        while len(self._arrivals) > 1 and self._arrivals[0][0] < end_rel_s - eps:
            self._arrivals.popleft()
        if self._arrivals and self._arrivals[0][0] >= end_rel_s - eps:
            return now - self._arrivals[0][1]
        return None

    # --- messages ---
    def _send_status(self, recorder: Any) -> None:
        f = recorder.features
        stats = getattr(self.source, "stats", None)
        rate = None
        if len(self._rate) >= 2 and self._rate[-1][0] > self._rate[0][0]:
            rate = sum(n for _, n in list(self._rate)[1:]) / (self._rate[-1][0] - self._rate[0][0])
        kinds: dict[str, int] = {}
        for fl in recorder.flags:
            kinds[fl["kind"]] = kinds.get(fl["kind"], 0) + 1
        status = _plain({
            "type": "status", "connected": time.monotonic() - self._last_chunk < 2.0,
            "t_s": recorder.samples_in / self._fs if self._fs else 0.0,
            "chunks": recorder.chunks, "samples": recorder.samples_in,
            "fs_hz": self._fs, "rate_hz": rate,
            "hr_bpm": f.get("ventricular_rate"), "qrs_ms": f.get("qrs_duration"),
            "delay_s": self._delay_s, "gaps": len(recorder.gaps), "flags": kinds,
            "device": stats.as_dict() if hasattr(stats, "as_dict") else {},
        })
        self._status = json.dumps(status)
        self._send(self._status, keep=False)

    def _flag_msg(self, msg: dict[str, Any]) -> None:
        text = json.dumps(_plain(msg))
        self._flags.append(text)
        self._send(text, keep=False)

    def _send(self, text: str, keep: bool, t: float = 0.0) -> None:
        if keep:
            self._history.append((t, text))
            while self._history and self._history[0][0] < t - _HISTORY_S:
                self._history.popleft()
        for q in list(self._clients):
            try:
                q.put_nowait(text)
            except asyncio.QueueFull:  # a stalled page: end it (it reconnects, backlog first)
                self._clients.discard(q)
                q.get_nowait()
                q.put_nowait(None)

    # --- HTTP ---
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, target, *_ = line.split(" ") + ["", ""]
            url = urlsplit(target)
            query = parse_qs(url.query)
            if method != "GET":
                return await self._reply(writer, 405, "text/plain", b"GET only\n")
            if self.token and query.get("token", [""])[0] != self.token:
                return await self._reply(writer, 403, "text/plain",
                                         b"forbidden: open the URL printed by ecg12 (token)\n")
            if url.path in ("/", "/index.html"):
                return await self._reply(writer, 200, "text/html; charset=utf-8",
                                         _static("index.html"))
            if url.path == "/app.js":
                return await self._reply(writer, 200, "text/javascript; charset=utf-8",
                                         _static("app.js"))
            if url.path == "/events":
                return await self._sse(writer)
            await self._reply(writer, 404, "text/plain", b"not found\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _reply(self, writer: asyncio.StreamWriter, code: int, ctype: str,
                     body: bytes) -> None:
        reason = {200: "OK", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
        writer.write(f"HTTP/1.1 {code} {reason.get(code, '')}\r\nContent-Type: {ctype}\r\n"
                     f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\n\r\n".encode() + body)
        await writer.drain()

    async def _sse(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\n")
        q: asyncio.Queue[str | None] = asyncio.Queue(_CLIENT_QUEUE)
        backlog = []
        if self._fs is not None:
            backlog.append(json.dumps({"type": "hello", "fs_hz": self._fs,
                                       "token_required": bool(self.token)}))
        backlog += [text for _, text in self._history] + list(self._flags)
        if self._status:
            backlog.append(self._status)
        for text in backlog:
            q.put_nowait(text)
        self._clients.add(q)
        try:
            while True:
                try:
                    text = await asyncio.wait_for(q.get(), 15.0)
                except TimeoutError:
                    writer.write(b": keep-alive\n\n")
                    await writer.drain()
                    continue
                if text is None:
                    break
                writer.write(b"data: " + text.encode() + b"\n\n")
                await writer.drain()
        finally:
            self._clients.discard(q)


def _static(name: str) -> bytes:
    return resources.files("edge.live").joinpath("static", name).read_bytes()
