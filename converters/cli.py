"""``ecg12 convert RUN``: a training run -> a gateway bundle, or a comparison of variants."""

from __future__ import annotations

from pathlib import Path

import click

from edge.manifest import MAX_MC_SAMPLES

QUANTS = ("float32", "float16", "dynamic_int8", "int8")
LSTMS = ("unrolled", "fused", "while")


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--quant", type=click.Choice(QUANTS), default="float32", show_default=True)
@click.option("--head-quant", type=click.Choice(QUANTS), default=None,
              help="Quantize the head apart from the trunk (default: --quant).")
@click.option("--lstm", type=click.Choice(LSTMS), default="unrolled", show_default=True,
              help="BiLSTM export: unrolled ops, fused LSTM op (tf_keras twin), WHILE loop.")
@click.option("--mc-samples", type=click.IntRange(1, MAX_MC_SAMPLES), default=30, show_default=True,
              help="Default MC samples T.")
@click.option("--lstm-rank", type=click.IntRange(1), default=None,
              help="With --lstm fused: each BiLSTM direction reads a rank-R projection of its "
                   "input, fitted on training windows (fewer multiply-adds per step).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Bundle folder to write.")
@click.option("--compare", is_flag=True, help="Convert and measure every quant x LSTM option.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="With --compare: write the table as PATH (.md) and PATH.json.")
@click.option("--records", type=click.IntRange(1), default=200, show_default=True,
              help="With --compare: test windows used for parity.")
def convert(run_dir: Path, quant: str, head_quant: str | None, lstm: str, mc_samples: int,
            lstm_rank: int | None, out_dir: Path | None, compare: bool, report: Path | None,
            records: int) -> None:
    """Convert a training run folder to a TFLite bundle (trunk, MC head, manifest)."""
    from converters.errors import ConversionError, RunFolderError

    given = _given(("report", "records") if not compare else
                   ("out_dir", "quant", "head_quant", "lstm", "lstm_rank"))
    if given:
        raise click.UsageError(f"{', '.join(given)}: " + (
            "only with --compare" if not compare else
            "not with --compare (it converts every variant into a temporary folder)"))
    try:
        if compare:
            from converters.compare import compare_variants

            compare_variants(run_dir, samples=mc_samples, records=records, report=report)
            return
        if out_dir is None:
            raise click.UsageError("--out BUNDLE is required (or use --compare)")
        from converters.bundle import convert_run, sha256

        out = convert_run(run_dir, out_dir, quant, lstm, mc_samples, head_quant=head_quant,
                          lstm_rank=lstm_rank)
        for name in ("trunk.tflite", "head.tflite"):
            p = out / name
            click.echo(f"{p}: {p.stat().st_size / 1024:.1f} KB sha256 {sha256(p)[:12]}")
        quants = quant if head_quant in (None, quant) else f"trunk {quant}, head {head_quant}"
        rank = f", LSTM input rank {lstm_rank}" if lstm_rank else ""
        click.echo(f"bundle written: {out} ({quants}, {lstm} LSTM{rank}, T={mc_samples})")
    except (ConversionError, RunFolderError) as exc:
        raise click.ClickException(str(exc)) from None


def _given(names: tuple[str, ...]) -> list[str]:
    """The options among ``names`` given on the command line (not left at their defaults)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    flags = {p.name: p.opts[0] for p in ctx.command.params}
    return [flags[n] for n in names
            if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]
