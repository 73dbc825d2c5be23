"""`ecg12 devices` and the BlueZ pre-flight, without Bluetooth (fake scanner, fake root)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from edge import devices as dv


def _root(tmp_path: Path, *, socket: bool = True, adapter: bool = True) -> Path:
    if socket:
        (tmp_path / "run/dbus").mkdir(parents=True)
        (tmp_path / "run/dbus/system_bus_socket").touch()
    (tmp_path / "sys/class/bluetooth").mkdir(parents=True)
    if adapter:
        (tmp_path / "sys/class/bluetooth/hci0").mkdir()
    return tmp_path


@pytest.mark.parametrize(("kw", "running", "words"), [
    ({"socket": False}, True, "no D-Bus system bus"),
    ({}, False, "bluetoothd is not running"),
    ({"adapter": False}, True, "no Bluetooth adapter"),
])
def test_preflight_names_the_missing_piece(tmp_path: Path, kw: dict, running: bool,
                                           words: str) -> None:
    root = _root(tmp_path, **kw)
    with pytest.raises(dv.BluetoothUnavailable, match=words):
        dv.preflight(platform="linux", root=root, process_running=lambda names: running)


def test_preflight_permission_and_success(tmp_path: Path) -> None:
    root = _root(tmp_path)
    sock = root / dv.DBUS_SOCKET
    dv.preflight(platform="linux", root=root, process_running=lambda n: True)
    dv.preflight(platform="darwin", root="/nonexistent")  # only BlueZ is checked
    if os.geteuid() != 0:  # root can open anything
        sock.chmod(0)
        with pytest.raises(dv.BluetoothUnavailable, match="no permission"):
            dv.preflight(platform="linux", root=root, process_running=lambda n: True)


class FakeScanner:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def discover(self, timeout: float, return_adv: bool):  # noqa: ANN201
        if self.error:
            raise self.error

        def dev(addr: str, name: str, rssi: int, uuids: list[str]) -> tuple:
            return (SimpleNamespace(address=addr, name=name),
                    SimpleNamespace(rssi=rssi, local_name=name, service_uuids=uuids))

        return {a: dev(a, n, r, u) for a, n, r, u in [
            ("AA:01", "Mi Band 4", -40, []),
            ("C0:FF:EE:00:10:10", "Polar H10 A1B2C3D4", -71, []),
            ("C0:FF:EE:00:10:11", "", -60, ["fb005c80-02e7-f387-1cad-8acd2d8df0c8"]),
            ("11:22:33:44:55:66", "ecg12-esp32", -55, []),
        ]}


def test_scan_lists_polar_and_ecg12_devices_with_rssi() -> None:
    found = asyncio.run(dv.scan(1.0, scanner=FakeScanner()))
    assert [(d.address, d.kind, d.rssi) for d in found] == [
        ("C0:FF:EE:00:10:11", "polar", -60), ("C0:FF:EE:00:10:10", "polar", -71),
        ("11:22:33:44:55:66", "ecg12", -55), ("AA:01", "other", -40)]
    assert found[0].uri == "polar:C0:FF:EE:00:10:11" and found[2].uri.startswith("ble:")


@pytest.mark.parametrize(("error", "words"), [
    (FileNotFoundError(2, "No such file or directory"), "BlueZ is not reachable"),
    (RuntimeError("org.freedesktop.DBus.Error.AccessDenied"), "permission denied"),
])
def test_scan_errors_are_named(error: Exception, words: str) -> None:
    with pytest.raises(dv.BluetoothUnavailable, match=words):
        asyncio.run(dv.scan(1.0, scanner=FakeScanner(error)))


def test_cli_devices_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.cli import main

    monkeypatch.setattr(dv, "preflight", lambda: (_ for _ in ()).throw(
        dv.BluetoothUnavailable("bluetoothd is not running (BlueZ's daemon)")))
    res = CliRunner().invoke(main, ["devices"])
    assert res.exit_code != 0 and "bluetoothd is not running" in res.output
    assert "Traceback" not in res.output
    monkeypatch.setattr(dv, "preflight", lambda: None)
    orig = dv.scan
    monkeypatch.setattr(dv, "scan", lambda t: orig(t, scanner=FakeScanner()))
    res = CliRunner().invoke(main, ["devices", "--timeout", "0.1"])
    assert res.exit_code == 0 and "polar:C0:FF:EE:00:10:10" in res.output
    assert "Mi Band" not in res.output and "-71 dBm" in res.output
