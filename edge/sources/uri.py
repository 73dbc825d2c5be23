"""Parse and validate `--source` URIs and build the matching Source."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from edge.sources.base import Source
from edge.sources.errors import SourceURIError


def _flat(v: str) -> tuple[float, float]:
    a, sep, b = v.partition(":")
    if not sep:
        a, sep, b = v.partition("-")
    lo, hi = _finite(a), _finite(b)
    if not hi > lo >= 0:
        raise ValueError(f"need 0 <= start < end, got {v!r}")
    return lo, hi


def _finite(v: str) -> float:
    f = float(v)
    if not math.isfinite(f):
        raise ValueError("not a finite number")
    return f


def _positive(v: str) -> float:
    f = _finite(v)
    if not f > 0:
        raise ValueError("must be > 0")
    return f


def _non_negative(v: str) -> float:
    f = _finite(v)
    if not f >= 0:
        raise ValueError("must be >= 0")
    return f


def _index(v: str) -> int:
    i = int(v)
    if i < 0:
        raise ValueError("must be a 0-based index >= 0")
    return i


def _seed(v: str) -> int:
    i = int(v)
    if not 0 <= i < 2**32:
        raise ValueError("must be an integer in 0..2**32-1")
    return i


def _adc_bits(v: str) -> int:
    i = int(v)
    if not 1 <= i <= 24:
        raise ValueError("must be the ADC's resolution in bits, 1-24")
    return i


def _units(v: str) -> str:
    if v.strip().lower() not in {"mv", "uv", "µv", "v"}:
        raise ValueError("use mV, uV or V")
    return v.strip()


_SIM = {"seed": _seed, "hr": _finite, "duration": _non_negative, "speed": _non_negative,
        "fs": _positive, "chunk": _positive, "drop": _finite, "flat": _flat,
        "noise": _non_negative}
_FILE = {"speed": _non_negative, "lead": str, "fs": _positive, "chunk": _positive,
         "channel": _index, "units": _units}
_SERIAL = {"baud": int, "format": str, "fs": _positive, "queue": _positive,
           "reconnect": _non_negative, "adc_bits": _adc_bits, "vref": _positive, "gain": _positive}
_BLE = {"queue": _positive, "reconnect": _non_negative, "scan": _positive, "name": str}
SCHEMES: dict[str, dict[str, Callable[[str], Any]]] = {
    "sim": _SIM, "file": _FILE, "serial": _SERIAL, "polar": _BLE, "ble": _BLE,
}


#: a BLE device address: a MAC (BlueZ, Windows) or a CoreBluetooth UUID (macOS)
_BLE_ADDRESS = re.compile(r"(?i)([0-9a-f]{2}:){5}[0-9a-f]{2}|"
                          r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _check_address(uri: str, scheme: str, target: str) -> None:
    """A BLE target is empty (polar: scan by name) or a device address, never anything else:
    a typo would otherwise scan for a device that cannot exist and end in 'not found'."""
    if target and not _BLE_ADDRESS.fullmatch(target):
        raise SourceURIError(
            f"source {uri!r}: {target!r} is not a BLE address; use a MAC such as "
            f"{scheme}:AA:BB:CC:DD:EE:FF or a macOS device UUID (`ecg12 devices` lists them)"
            + ("; `polar:` alone connects to the first Polar H10 found, `polar:?name=Polar "
               "H10 1A2B3C4D` to one by name" if scheme == "polar" else ""))


def parse_uri(uri: str) -> tuple[str, str, dict[str, Any]]:
    """`scheme:target?k=v&...` -> (scheme, target, typed options)."""
    scheme, sep, rest = uri.partition(":")
    scheme = scheme.strip().lower()
    if not sep or scheme not in SCHEMES:
        raise SourceURIError(
            f"source {uri!r}: unknown scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    target, _, query = rest.partition("?")
    spec = SCHEMES[scheme]
    opts: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key in opts:
            raise SourceURIError(f"source {uri!r}: option {key!r} given twice")
        if key not in spec:
            raise SourceURIError(f"source {uri!r}: unknown option {key!r} for {scheme}: "
                                 f"(options: {', '.join(spec)})")
        try:
            opts[key] = spec[key](value)
        except ValueError as exc:
            raise SourceURIError(f"source {uri!r}: bad value for {key}={value!r} ({exc})") from None
    if scheme in ("polar", "ble"):
        _check_address(uri, scheme, target.strip())
    return scheme, target.strip(), opts


def open_source(uri: str, **overrides: Any) -> Source:
    """Build the Source for `uri`; keyword `overrides` win over URI options.

    Also accepted: a bare path to a recording (= `file:PATH`). Device sources accept
    `transport_factory=` / `client_factory=` / `scanner=` seams (used by tests).
    """
    if ":" not in uri or (len(uri) > 1 and uri[1] == ":"):  # bare path (or C:\...)
        uri = f"file:{uri}"
    scheme, target, opts = parse_uri(uri)
    opts.update({k: v for k, v in overrides.items() if v is not None})
    if scheme == "sim" and target.strip():
        raise SourceURIError(f"source {uri!r}: sim: takes no target ({target!r}); options go "
                             "after '?', e.g. sim:?seed=1&hr=70")
    if scheme == "file" and opts.get("lead") is not None and opts.get("channel") is not None:
        raise SourceURIError(f"source {uri!r}: give lead= or channel=, not both")
    try:
        if scheme == "sim":
            from edge.sources.sim import SimSource

            return SimSource(**opts)
        if scheme == "file":
            if not target:
                raise SourceURIError(f"source {uri!r}: file: needs a path, e.g. file:rec.hea")
            from edge.sources.file import FileSource

            return FileSource(target, **opts)
        if scheme == "serial":
            if not target:
                raise SourceURIError(f"source {uri!r}: serial: needs a port, "
                                     "e.g. serial:/dev/ttyUSB0")
            from edge.sources.serial import SerialSource

            return SerialSource(target, **opts)
        if scheme == "polar":
            from edge.sources.polar import PolarSource

            return PolarSource(target or None, **opts)
        from edge.sources.ble import Ecg12BleSource

        if not target:
            raise SourceURIError(f"source {uri!r}: ble: needs a device address")
        return Ecg12BleSource(target, **opts)
    except TypeError as exc:
        raise SourceURIError(f"source {uri!r}: {exc}") from None
