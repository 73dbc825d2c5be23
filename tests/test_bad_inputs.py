"""The bad-input suite (benchmarks/bad_inputs.py) in-process on the tiny bundle: every crafted
file and option is refused with one line (no traceback, no exit 0, nothing left behind), and
every readable one keeps its exact time line (rows, NaN positions, Lead I at lag 0)."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.bad_inputs import make_cases, run_all


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from bundle_fixture import tiny_bundle_dir

    return tiny_bundle_dir(tmp_path_factory)


def _runner(bundle: Path):
    from edge.cli import main

    def run(args: list[str], out: Path) -> tuple[int, str]:
        if args[0] in {"reconstruct", "demo", "stream"}:
            args = args + (["--bundle", str(bundle)] if "--bundle" not in args else []) + \
                (["--mc-samples", "2"] if "--mc-samples" not in args else []) + ["--quiet"]
        res = CliRunner().invoke(main, args)
        err = res.stderr
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            err += "Traceback (in-process)\n" + "".join(traceback.format_exception(
                res.exception))
        return res.exit_code, err

    return run


def test_bad_input_suite(tiny_bundle, tmp_path) -> None:
    cases = make_cases(tmp_path / "files")
    assert len(cases) >= 100
    counts = run_all(cases, _runner(tiny_bundle), tmp_path / "runs")
    assert counts["failed"] == [], "\n".join(counts["failed"])  # type: ignore[arg-type]
    assert counts["traceback"] == counts["exit0"] == counts["shifted"] == 0
