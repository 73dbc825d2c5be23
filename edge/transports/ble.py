"""BLE transport over bleak (imported lazily): scan, connect, notify, write, disconnect.

`client_factory` (BleakClient look-alike class or callable) and `scanner` (an object with
`find_device_by_filter`) are the seams tests use to inject firmware_bridge's fake H10.
Each connect rescans for a fresh device object (BlueZ may forget the device after a drop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edge.sources.errors import DeviceNotFound, Disconnected


class BleTransport:
    def __init__(self, address: str | None, *, name_prefix: str = "Polar H10",
                 scan_s: float = 10.0, client_factory: Callable[..., Any] | None = None,
                 scanner: Any = None) -> None:
        self.address, self.name_prefix, self.scan_s = address, name_prefix, scan_s
        if client_factory is None:
            from bleak import BleakClient, BleakScanner

            client_factory = BleakClient
            scanner = scanner or BleakScanner
        self._factory = client_factory
        self._scanner = scanner
        self.client: Any = None

    async def _find(self) -> Any:
        if self._scanner is None:  # injected client without scanner: use the address as is
            if not self.address:
                raise DeviceNotFound("BLE: no address given and no scanner available")
            return self.address
        want = (self.address or "").upper()

        def match(device: Any, adv: Any) -> bool:
            if want:
                return str(getattr(device, "address", "")).upper() == want
            name = getattr(device, "name", None) or getattr(adv, "local_name", None) or ""
            return name.startswith(self.name_prefix)

        try:
            device = await self._scanner.find_device_by_filter(match, timeout=self.scan_s)
        except Exception as exc:  # bleak: "[Errno 2]", D-Bus errors -> name the cause
            from edge.devices import BluetoothUnavailable, explain_bleak_error, preflight

            preflight()
            raise BluetoothUnavailable(explain_bleak_error(exc)) from exc
        if device is None:
            what = self.address or f"a device named {self.name_prefix!r}"
            raise DeviceNotFound(f"BLE: {what} not found in a {self.scan_s:g} s scan")
        return device

    async def connect(self, on_disconnect: Callable[[Any], None]) -> None:
        device = await self._find()
        client = self._factory(device, disconnected_callback=on_disconnect)
        try:
            await client.connect()
        except Exception as exc:  # bleak raises BleakError, TimeoutError, dbus errors
            raise DeviceNotFound(f"BLE: cannot connect to {self.address or device}: {exc}") \
                from exc
        self.client = client

    async def start_notify(self, uuid: str, callback: Callable[[Any, bytearray], None]) -> None:
        try:
            await self._require().start_notify(uuid, callback)
        except Disconnected:
            raise
        except Exception as exc:
            raise Disconnected(f"BLE: cannot subscribe to {uuid}: {exc}") from exc

    async def write(self, uuid: str, data: bytes) -> None:
        try:
            await self._require().write_gatt_char(uuid, data, response=True)
        except Disconnected:
            raise
        except Exception as exc:
            raise Disconnected(f"BLE: write to {uuid} failed: {exc}") from exc

    def _require(self) -> Any:
        if self.client is None or not self.client.is_connected:
            raise Disconnected(f"BLE: {self.address or 'device'} is not connected")
        return self.client

    async def disconnect(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.disconnect()
            except Exception:  # noqa: BLE001 - always try; a dead link may refuse
                pass
