"""`ecg12 device ...`: run a virtual device for field-test rehearsal, show the protocol spec."""

from __future__ import annotations

from pathlib import Path

import click

from edge.commands import Number

SPEC_PATH = Path(__file__).with_name("SPEC.md")


@click.group()
def device() -> None:
    """Virtual ECG devices and the ecg12 device protocol."""


@device.command()
@click.option("--format", "fmt", type=click.Choice(["ecg12", "ascii"]), default="ecg12",
              show_default=True, help="Wire format.")
@click.option("--signal", default="synthetic", show_default=True,
              help="'synthetic' or a WFDB record (PATH.hea); Lead I is streamed.")
@click.option("--fs", "fs_hz", type=Number(float, 25.0, 20000.0), default=250.0,
              show_default=True,
              help="Rate of the synthetic signal (a recording keeps its own rate).")
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="1 = real time, 10 = ten times faster, 0 = as fast as possible.")
@click.option("--drop", type=float, default=0.0, help="Probability of dropping a frame.")
@click.option("--corrupt", type=float, default=0.0, help="Probability of corrupting a frame.")
@click.option("--garbage", type=float, default=0.0, help="Probability of junk before a frame.")
@click.option("--disconnect-after", type=int, default=None, help="Disconnect after N frames.")
@click.option("--drift-ppm", type=float, default=0.0, help="Device clock drift (ppm).")
@click.option("--rate-error", type=float, default=0.0,
              help="The ADC runs at fs * (1 + this) on the device clock (H10: +-0.02..0.05).")
@click.option("--replay", type=float, default=0.0,
              help="Probability of resending one of the last few frames after a frame.")
@click.option("--timestamp-corrupt", type=float, default=0.0,
              help="Probability of flipping one time-stamp bit (ecg12: CRC kept valid).")
@click.option("--disconnect-every", type=int, default=None,
              help="Drop the link after every N frames (the reader must reconnect).")
@click.option("--offline-s", type=Number(float, 0.0, 86400.0), default=0.0,
              help="Device time that passes (samples lost) while the link is down.")
@click.option("--seed", type=Number(int, 0, 2**32 - 1), default=0, show_default=True)
@click.option("--once", is_flag=True, help="Stop at the end of the signal instead of looping.")
def serve(fmt: str, signal: str, fs_hz: float, speed: float, drop: float, corrupt: float,
          garbage: float, disconnect_after: int | None, drift_ppm: float, rate_error: float,
          replay: float, timestamp_corrupt: float, disconnect_every: int | None,
          offline_s: float, seed: int, once: bool) -> None:
    """Stream a signal on a pseudo-terminal until Ctrl-C; prints the port to open."""
    from firmware_bridge.errors import FirmwareBridgeError
    from firmware_bridge.faults import Faults
    from firmware_bridge.signals import load_signal
    from firmware_bridge.virtual_serial import VirtualSerialDevice

    try:
        faults = Faults(drop, corrupt, garbage, disconnect_after, drift_ppm,
                        rate_error=rate_error, replay_prob=replay,
                        timestamp_corrupt_prob=timestamp_corrupt,
                        disconnect_every=disconnect_every, offline_s=offline_s)
        sig, fs = load_signal(signal, fs_hz=fs_hz, seed=seed)
        dev = VirtualSerialDevice(sig, fs, fmt, speed=speed, faults=faults, seed=seed,  # type: ignore[arg-type]
                                  loop=not once)
    except FirmwareBridgeError as exc:
        raise click.ClickException(str(exc)) from exc
    with dev:
        click.echo(f"port: {dev.port}")
        click.echo(f"streaming {signal} as {fmt} at {fs:g} Hz, speed {speed:g}; Ctrl-C stops",
                   err=True)
        try:
            while not dev.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        s = dev.stats
        click.echo(f"frames {s.frames} sent {s.sent} dropped {s.dropped} corrupted "
                   f"{s.corrupted} garbage_bytes {s.garbage_bytes} disconnected "
                   f"{s.disconnected}", err=True)
        if dev.error is not None:
            raise click.ClickException(f"device stopped: {dev.error}")


@device.command()
@click.option("--show", is_flag=True, help="Print the spec instead of its path.")
def spec(show: bool) -> None:
    """Print the path of the ecg12 protocol spec (SPEC.md)."""
    click.echo(SPEC_PATH.read_text() if show else str(SPEC_PATH))
