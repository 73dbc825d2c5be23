"""The `ecg12` command line.

Edge's own commands (stream, reconstruct, ...) are defined in edge; commands contributed by the
workstation packages (data, train, evaluate, convert, device, ...) are found through the
`ecg12.commands` entry-point group and imported only when invoked, so the gateway CLI never
imports training code or TensorFlow unless asked to.

Every failure is one line on stderr and a non-zero exit (usage errors 2, others 1): the
project's named errors (EdgeError) and anything unexpected alike; `ecg12 --debug ...` (or
ECG12_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points
from typing import Any

import click

#: how to install the workstation extra: from this checkout, not from a package registry
INSTALL_TRAIN = "pip install -e '.[train]' (from the ecg12 checkout)"

_EDGE_COMMANDS: dict[str, str] = {
    # name -> "module:attribute" of a click command inside edge
    "stream": "edge.commands:stream",
    "reconstruct": "edge.commands:reconstruct",
    "demo": "edge.commands:demo",
    "enroll": "edge.enroll:enroll",
    "devices": "edge.devices:devices",
    "collect": "edge.collect:collect",
}


def _load(target: str) -> click.Command:
    import importlib

    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


#: packages of the [train] extra: a command that needs one of them says so instead of failing
#: with a traceback on a gateway (base) install
_TRAIN_EXTRA = {"tensorflow", "keras", "tf_keras", "pandas", "openpyxl"}


def _guard_extras(cmd: click.Command) -> click.Command:
    """Wrap a command (and a group's sub-commands) so a missing [train] package is one line."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _guard_extras(sub)
        return cmd
    callback = cmd.callback
    if callback is None or getattr(callback, "_ecg12_guarded", False):
        return cmd

    def guarded(*args: object, **kwargs: object) -> object:
        try:
            return callback(*args, **kwargs)
        except ImportError as exc:
            root = (exc.name or "").split(".")[0]
            if root not in _TRAIN_EXTRA:
                raise
            ctx = click.get_current_context(silent=True)
            path = _path(ctx) if ctx is not None else f"ecg12 {cmd.name}"
            raise click.ClickException(
                f"'{path}' needs {root!r}, part of the workstation extra; install it with: "
                f"{INSTALL_TRAIN}") from None

    guarded._ecg12_guarded = True  # type: ignore[attr-defined]
    cmd.callback = guarded
    return cmd


class _LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def _targets(self) -> dict[str, str]:
        targets = dict(_EDGE_COMMANDS)
        for ep in entry_points(group="ecg12.commands"):
            targets.setdefault(ep.name, ep.value)
        return targets

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._targets())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self._targets().get(cmd_name)
        if target is None:
            return None
        try:
            return _guard_extras(_load(target))
        except ImportError as exc:
            missing = exc.name or str(exc)

            @click.command(name=cmd_name, help=f"(unavailable: {missing} is not installed)")
            def _unavailable() -> None:
                raise click.ClickException(
                    f"'ecg12 {cmd_name}' needs {missing!r}, which is not installed; "
                    f"install the workstation extra: {INSTALL_TRAIN}"
                )

            return _unavailable

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a named or unexpected error becomes one line (see module doc)."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                KeyboardInterrupt, SystemExit, EOFError):
            raise
        except Exception as exc:
            if _debug(ctx):
                raise
            from edge.errors import EdgeError

            msg = " ".join(str(exc).split()) or type(exc).__name__
            if isinstance(exc, EdgeError) or type(exc).__name__.endswith("Error") and \
                    type(exc).__module__.split(".")[0] in {"edge", "training", "converters",
                                                           "firmware_bridge", "benchmarks"}:
                raise click.ClickException(msg) from None
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {msg} (ecg12 --debug shows the traceback)"
            ) from None

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """click's main, except that a usage error is one line too."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.UsageError as exc:
            path = _path(exc.ctx) if exc.ctx is not None else "ecg12"
            msg = " ".join(exc.format_message().split())
            click.echo(f"Error: {path}: {msg} (see '{path} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            click.echo(f"Error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def _path(ctx: click.Context) -> str:
    """'ecg12 data summary' (whatever the program was called)."""
    return " ".join(["ecg12", *ctx.command_path.split()[1:]])


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or os.environ.get("ECG12_DEBUG", "") not in {"", "0"}


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ecg12")
@click.option("--debug", is_flag=True, help="show a traceback for errors (or ECG12_DEBUG=1)")
def main(debug: bool) -> None:
    """ecg12: single-lead (Lead I) wearable ECG -> 12-lead ECG with MC-dropout uncertainty."""


if __name__ == "__main__":  # pragma: no cover
    main()
