"""Shared lifecycle of BLE notification sources (Polar PMD, ecg12 GATT profile)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from edge.sources.base import DeviceSource
from edge.sources.errors import Disconnected

_LINK_LOST = object()


class NotifySource(DeviceSource):
    """Notifications are queued raw with their arrival time by the callback (no work done
    there); `_pump` decodes them. A link loss or `stall` seconds without data = disconnect."""

    name_prefix = ""

    def __init__(self, address: str | None, *, queue: float = 30.0, reconnect: float = 60.0,
                 scan: float = 10.0, name: str | None = None, stall: float = 60.0,
                 client_factory: Callable[..., Any] | None = None, scanner: Any = None,
                 backoff_base_s: float = 0.5) -> None:
        super().__init__(queue_s=queue, reconnect_s=reconnect, backoff_base_s=backoff_base_s)
        from edge.transports.ble import BleTransport

        self.address = address
        self.stall_s = stall
        self.transport = BleTransport(address, name_prefix=name or self.name_prefix,
                                      scan_s=scan, client_factory=client_factory,
                                      scanner=scanner)
        self._raw: asyncio.Queue[Any] = asyncio.Queue()

    def _on_data(self, _sender: Any, data: bytearray) -> None:
        self._raw.put_nowait((bytes(data), time.monotonic()))

    def _on_link_lost(self, _client: Any) -> None:
        self._raw.put_nowait(_LINK_LOST)

    async def _connect(self) -> None:
        self._raw = asyncio.Queue()
        await self.transport.connect(self._on_link_lost)
        await self._start()

    async def _start(self) -> None:
        """Subscribe / send start commands after (re)connecting."""
        raise NotImplementedError

    def _decode(self, data: bytes, arrival_s: float) -> None:
        raise NotImplementedError

    async def _pump(self) -> None:
        while not self._closed:
            try:
                async with asyncio.timeout(self.stall_s):
                    item = await self._raw.get()
            except TimeoutError:
                raise Disconnected(f"{self.uri}: no data for {self.stall_s:g} s") from None
            if item is _LINK_LOST:
                raise Disconnected(f"{self.uri}: link lost")
            self._decode(*item)

    async def _disconnect(self) -> None:
        await self.transport.disconnect()
