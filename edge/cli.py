"""The `ecg12` command line.

Edge's own commands (stream, reconstruct, ...) are defined in edge; commands contributed by the
workstation packages (data, train, evaluate, convert, device, ...) are found through the
`ecg12.commands` entry-point group and imported only when invoked, so the gateway CLI never
imports training code or TensorFlow unless asked to.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click

_EDGE_COMMANDS: dict[str, str] = {
    # name -> "module:attribute" of a click command inside edge
    "stream": "edge.commands:stream",
    "reconstruct": "edge.commands:reconstruct",
    "demo": "edge.commands:demo",
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
            raise click.ClickException(
                f"'ecg12 {cmd.name}' needs {root!r}, part of the workstation extra; install it "
                "with: pip install 'ecg12[train]'") from None

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
                    "install the workstation extra: pip install 'ecg12[train]'"
                )

            return _unavailable


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ecg12")
def main() -> None:
    """ecg12: single-lead (Lead I) wearable ECG -> 12-lead ECG with MC-dropout uncertainty."""


if __name__ == "__main__":  # pragma: no cover
    main()
