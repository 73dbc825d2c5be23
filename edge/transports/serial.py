"""Blocking byte transport over pyserial (imported lazily). Run `read` in a worker thread."""

from __future__ import annotations

from typing import Any

from edge.sources.errors import DeviceNotFound, Disconnected


class SerialTransport:
    """A serial port. `read()` returns the bytes available (b"" on timeout); a vanished port
    or a second reader raises Disconnected, a port that cannot be opened DeviceNotFound."""

    def __init__(self, port: str, baud: int = 115200, timeout_s: float = 0.1) -> None:
        self.port, self.baud, self.timeout_s = port, baud, timeout_s
        self._ser: Any = None

    def open(self) -> None:
        import serial

        try:
            self._ser = serial.Serial(self.port, self.baud, timeout=self.timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceNotFound(f"serial port {self.port} cannot be opened: {exc}",
                                 hint="check the port name (ls /dev/tty*), permissions "
                                      "(dialout group) and that no other program or the "
                                      "login console holds it") from exc

    def read(self, max_bytes: int = 4096) -> bytes | None:
        import serial

        if self._ser is None:
            raise Disconnected(f"serial port {self.port} is not open")
        try:
            waiting = self._ser.in_waiting
            return bytes(self._ser.read(min(max_bytes, max(1, waiting))))
        except (serial.SerialException, OSError, TypeError) as exc:
            raise Disconnected(f"serial port {self.port}: {exc}") from exc

    def close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # noqa: BLE001 - closing a dead port may fail; nothing to do
                pass
