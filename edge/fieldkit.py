"""Options of `ecg12 stream` for the field kit: `--view` (live page) and `--publish` (MQTT or
LSL), and the taps (edge.sinks.tap) they make for a session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from edge.sinks.csv import SinkError


def _publish_url(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
                 ) -> tuple[Any, ...]:
    """mqtt://, mqtts:// -> MqttTarget; lsl: -> LslTarget (one line for anything else)."""
    from edge.sinks.lsl import _lsl, parse_lsl_url
    from edge.sinks.mqtt import parse_mqtt_url

    out = []
    for v in value:
        try:
            if v.lower().startswith("lsl:"):
                out.append(parse_lsl_url(v))
                _lsl()  # the [lsl] extra: missing is one line before any output exists
            elif v.lower().startswith(("mqtt://", "mqtts://")):
                out.append(parse_mqtt_url(v))
            else:
                raise SinkError(f"{v!r}: use mqtt://host:port/prefix, mqtts://... or "
                                "lsl:[?name=NAME]")
        except SinkError as exc:
            raise click.BadParameter(str(exc).removeprefix("--publish "), ctx, param) from None
    return tuple(out)


def _device_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from edge.sinks.mqtt import check_device_id

    if value is None:
        return None
    try:
        return check_device_id(value)
    except SinkError as exc:
        raise click.BadParameter(str(exc).removeprefix("--device-id "), ctx, param) from None


def mqtt_options(f: Any) -> Any:
    """--mqtt-username/-password/-tls/-ca/-cert/-key (shared by stream and collect)."""
    for opt in reversed([
        click.option("--mqtt-username", default=None, help="broker user name"),
        click.option("--mqtt-password", default=None, envvar="ECG12_MQTT_PASSWORD",
                     help="broker password (or ECG12_MQTT_PASSWORD)"),
        click.option("--mqtt-tls", is_flag=True, help="TLS (also: an mqtts:// URL)"),
        click.option("--mqtt-ca", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="CA certificate file (PEM) for TLS"),
        click.option("--mqtt-cert", type=click.Path(exists=True, dir_okay=False),
                     default=None, help="client certificate (PEM) for TLS"),
        click.option("--mqtt-key", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="client key (PEM) for TLS"),
    ]):
        f = opt(f)
    return f


def with_mqtt(target: Any, kw: dict[str, Any]) -> Any:
    """Apply (and remove from `kw`) the --mqtt-* options to a parsed target."""
    from edge.sinks.mqtt import with_options

    return with_options(target, username=kw.pop("mqtt_username", None),
                        password=kw.pop("mqtt_password", None), tls=kw.pop("mqtt_tls", False),
                        ca_file=kw.pop("mqtt_ca", None), cert_file=kw.pop("mqtt_cert", None),
                        key_file=kw.pop("mqtt_key", None))


def stream_options(f: Any) -> Any:
    """The field-kit options of `ecg12 stream`."""
    from edge.commands import Number

    for opt in reversed([
        click.option("--view", is_flag=True, help="serve a live page of the 12 leads"),
        click.option("--view-port", type=Number(int, 0, 65535), default=8712,
                     show_default=True, help="port of the live page (0 = any free port)"),
        click.option("--view-host", default="127.0.0.1", show_default=True,
                     help="address of the live page; off loopback the URL carries a token"),
        click.option("--publish", multiple=True, callback=_publish_url,
                     help="mqtt://[user[:pass]@]host[:port]/prefix (mqtts:// = TLS) or "
                          "lsl:[?name=ecg12] (3 LSL streams; needs the [lsl] extra); "
                          "repeatable"),
        click.option("--device-id", default=None, callback=_device_id,
                     help="device name in MQTT topics and LSL source ids [default: host "
                          "name]"),
        click.option("--publish-buffer", type=click.Path(path_type=Path, file_okay=False),
                     default=None, help="journal folder for MQTT [default: "
                     "~/.cache/ecg12/mqtt/<device>]"),
    ]):
        f = opt(f)
    return mqtt_options(f)


def build_taps(kw: dict[str, Any]) -> Callable[[Any], list[Any]] | None:
    """Pop the field-kit options from `kw`; returns `taps(source)` for run_cli (or None)."""
    view, host, port = kw.pop("view", False), kw.pop("view_host"), kw.pop("view_port")
    from edge.sinks.lsl import LslTarget

    urls = kw.pop("publish", ())
    device, buffer = kw.pop("device_id", None), kw.pop("publish_buffer", None)
    lsl = [t for t in urls if isinstance(t, LslTarget)]
    targets = [with_mqtt(t, dict(kw)) for t in urls if not isinstance(t, LslTarget)]
    if not targets:  # options of an MQTT target without one: refused, not ignored
        given = [f"--{k.replace('_', '-')}" for k in ("mqtt_username", "mqtt_tls", "mqtt_ca",
                                                       "mqtt_cert", "mqtt_key")
                 if kw.get(k)] + (["--publish-buffer"] if buffer else [])
        if given:
            raise click.UsageError(f"{', '.join(given)} configure{'s' if len(given) == 1 else ''}"
                                   " an MQTT target: add --publish mqtt://HOST/PREFIX")
    if not str(host).strip():
        raise click.UsageError("--view-host is empty; give an address such as 127.0.0.1 "
                               "(or 0.0.0.0 for every interface)")
    for k in ("mqtt_username", "mqtt_password", "mqtt_tls", "mqtt_ca", "mqtt_cert",
              "mqtt_key"):
        kw.pop(k, None)
    if not view and not targets and not lsl:
        return None

    def taps(source: Any) -> list[Any]:
        from edge.sinks.mqtt import MqttPublisher, default_device_id

        out: list[Any] = []
        if view:
            from edge.live import LiveView

            out.append(LiveView(host, port, source=source))
        dev = device or default_device_id()
        for i, t in enumerate(targets):
            buf = Path(buffer) / (f"{i}" if len(targets) > 1 else "") if buffer else None
            out.append(MqttPublisher(t, dev, buf, source=source))
        if lsl:
            from edge.sinks.lsl import LslOutlet

            out.extend(LslOutlet(t, dev, source=source) for t in lsl)
        return out

    return taps

