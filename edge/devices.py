"""`ecg12 devices`: find Polar H10 / ecg12 devices over BLE, after a BlueZ pre-flight check.

On Linux, bleak talks to BlueZ over the D-Bus system bus; when one of its pieces is missing,
bleak fails with `[Errno 2] No such file or directory` or a D-Bus error. `preflight()` names
the piece instead: no D-Bus system bus, bluetoothd not running, no adapter, no permission.
The scanner is a seam (`scanner=` with bleak's `discover(timeout=, return_adv=True)`), so
tests need no Bluetooth.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from edge.sources.errors import SourceError

DBUS_SOCKET = "run/dbus/system_bus_socket"
ADAPTERS = "sys/class/bluetooth"


class BluetoothUnavailable(SourceError):
    """Bluetooth cannot be used on this machine (named cause in the message)."""

    hint = "see the message; on a Pi: sudo systemctl enable --now bluetooth"


@dataclass(frozen=True)
class FoundDevice:
    """One advertising device: address, name, RSSI (dBm) and what ecg12 makes of it."""

    address: str
    name: str
    rssi: int | None
    kind: str  # "polar", "ecg12" or "other"

    @property
    def uri(self) -> str:
        return {"polar": f"polar:{self.address}", "ecg12": f"ble:{self.address}"}.get(
            self.kind, "")


def _running(names: Iterable[str]) -> bool:
    import psutil

    want = set(names)
    for p in psutil.process_iter(["name"]):
        if (p.info.get("name") or "") in want:
            return True
    return False


def preflight(*, platform: str | None = None, root: str | Path = "/",
              process_running: Callable[[Iterable[str]], bool] = _running) -> None:
    """Raise BluetoothUnavailable naming the first missing piece of BlueZ (Linux only)."""
    if (platform or sys.platform) != "linux":
        return
    root = Path(root)
    sock = root / DBUS_SOCKET
    if not sock.exists():
        raise BluetoothUnavailable(
            f"no D-Bus system bus ({sock} is missing); BlueZ needs it",
            hint="start D-Bus (sudo systemctl start dbus); in a container, mount "
                 "/run/dbus from the host")
    if not process_running(["bluetoothd"]):
        raise BluetoothUnavailable(
            "bluetoothd is not running (BlueZ's daemon)",
            hint="sudo systemctl enable --now bluetooth (install the 'bluez' package first)")
    adapters = root / ADAPTERS
    if not adapters.is_dir() or not any(p.name.startswith("hci") for p in adapters.iterdir()):
        raise BluetoothUnavailable(
            "no Bluetooth adapter found (nothing in /sys/class/bluetooth)",
            hint="plug in a BLE dongle or enable the built-in one; check 'rfkill list'")
    if not os.access(sock, os.R_OK | os.W_OK):
        raise BluetoothUnavailable(
            f"no permission to use the D-Bus system bus ({sock})",
            hint="run as a user in the 'bluetooth' group (sudo usermod -aG bluetooth $USER)")


def explain_bleak_error(exc: BaseException) -> str:
    """One line for an error bleak raised while scanning or connecting."""
    text = str(exc)
    if isinstance(exc, FileNotFoundError) or "Errno 2" in text:
        return "BlueZ is not reachable (D-Bus system bus or bluetoothd missing)"
    if "AccessDenied" in text or isinstance(exc, PermissionError):
        return "permission denied by BlueZ (join the 'bluetooth' group)"
    if "NotReady" in text or "powered" in text.lower():
        return "the Bluetooth adapter is off (bluetoothctl power on; check rfkill)"
    if "No Bluetooth adapters found" in text or "adapter" in text.lower():
        return "no Bluetooth adapter found"
    return f"Bluetooth scan failed: {text or type(exc).__name__}"


def classify(name: str, service_uuids: Iterable[str]) -> str:
    from firmware_bridge.polar import PMD_SERVICE_UUID
    from firmware_bridge.protocol import GATT_SERVICE_UUID

    uuids = {u.lower() for u in service_uuids}
    if name.startswith("Polar") or PMD_SERVICE_UUID in uuids:
        return "polar"
    if name.lower().startswith("ecg12") or GATT_SERVICE_UUID in uuids:
        return "ecg12"
    return "other"


async def scan(timeout_s: float = 5.0, *, scanner: Any = None) -> list[FoundDevice]:
    """Scan for `timeout_s` seconds; devices sorted by kind (Polar, ecg12) then RSSI."""
    if scanner is None:
        from bleak import BleakScanner

        scanner = BleakScanner
    try:
        found = await scanner.discover(timeout=timeout_s, return_adv=True)
    except Exception as exc:  # bleak raises BleakError, OSError, D-Bus errors
        raise BluetoothUnavailable(explain_bleak_error(exc)) from exc
    out = []
    for device, adv in found.values():
        name = getattr(device, "name", None) or getattr(adv, "local_name", None) or ""
        rssi = getattr(adv, "rssi", None)
        kind = classify(name, getattr(adv, "service_uuids", None) or [])
        out.append(FoundDevice(str(device.address), name, rssi, kind))
    rank = {"polar": 0, "ecg12": 1, "other": 2}
    return sorted(out, key=lambda d: (rank[d.kind], -(d.rssi if d.rssi is not None else -999)))


@click.command()
@click.option("--timeout", "timeout_s", type=float, default=5.0, show_default=True,
              help="seconds to scan")
@click.option("--all", "show_all", is_flag=True, help="also list devices that are not ECGs")
def devices(timeout_s: float, show_all: bool) -> None:
    """Scan for Polar H10 and ecg12 devices (BLE) and print their --source URIs."""
    try:
        preflight()
        found = asyncio.run(scan(timeout_s))
    except BluetoothUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    shown = [d for d in found if show_all or d.kind != "other"]
    if not shown:
        click.echo(f"no Polar or ecg12 device found in {timeout_s:g} s "
                   f"({len(found)} other BLE devices); wake the strap by wetting it")
        return
    for d in shown:
        rssi = f"{d.rssi:4d} dBm" if d.rssi is not None else "   ? dBm"
        click.echo(f"{d.address:17s}  {rssi}  {d.kind:6s}  {d.name or '-':24s}  {d.uri}")
