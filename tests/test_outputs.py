"""A run never writes over its own input: an output (``--out`` folder's files, ``--events``,
``enroll --out``) that is the input file, a link to it or its WFDB companion is refused in one
line before anything is opened, and the input is left byte for byte as it was."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from bundle_fixture import synthetic_lead_i
from click.testing import CliRunner

from edge.outputs import OUTPUT_NAMES, record_files, refuse_overwriting_inputs


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from bundle_fixture import tiny_bundle_dir

    return tiny_bundle_dir(tmp_path_factory)


def _csv(path: Path) -> bytes:
    fs = 100.0
    x = synthetic_lead_i(int(fs * 12), fs)
    lines = ["t_s,I"] + [f"{i / fs:.4f},{v:.5f}" for i, v in enumerate(x)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path.read_bytes()


def _run(args: list[str]):
    from edge.cli import main

    return CliRunner().invoke(main, args)


def _refused(res, path: Path) -> None:
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "would destroy it" in lines[0] and str(path) in lines[0]
    assert res.exception is None or isinstance(res.exception, SystemExit)


@pytest.mark.parametrize("name", ["leads.csv", "summary.json", "events.ndjson"])
def test_reconstruct_refuses_an_out_folder_holding_the_input_under_an_output_name(
        tiny_bundle: Path, tmp_path: Path, name: str) -> None:
    src = tmp_path / "run" / name
    before = _csv(src)
    res = _run(["reconstruct", str(src), "--out", str(src.parent), "--bundle", str(tiny_bundle),
                "--quiet"])
    _refused(res, src)
    assert src.read_bytes() == before and sorted(os.listdir(src.parent)) == [name]


def test_reconstruct_refuses_events_on_the_input_and_a_link_to_it(tiny_bundle: Path,
                                                                  tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    before = _csv(src)
    res = _run(["reconstruct", str(src), "--out", str(tmp_path / "o"), "--events", str(src),
                "--bundle", str(tiny_bundle), "--quiet"])
    _refused(res, src)
    link = tmp_path / "o2" / "leads.csv"
    link.parent.mkdir()
    link.symlink_to(src)
    res = _run(["reconstruct", str(src), "--out", str(link.parent), "--bundle", str(tiny_bundle),
                "--quiet"])
    _refused(res, link)
    assert src.read_bytes() == before


def test_an_unrelated_out_folder_still_runs(tiny_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "in" / "leads.csv"  # an output's name, but in another folder
    _csv(src)
    res = _run(["reconstruct", str(src), "--out", str(tmp_path / "out"), "--bundle",
                str(tiny_bundle), "--mc-samples", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "leads.csv").is_file()


@pytest.mark.parametrize("target", [".hea", ".dat"])
def test_enroll_refuses_out_on_the_record_or_its_signal_file(tmp_path: Path,
                                                              target: str) -> None:
    hea, dat = tmp_path / "r.hea", tmp_path / "r.dat"
    hea.write_text("r 12 500 5000\n")
    dat.write_bytes(b"\x00" * 64)
    before = {p: p.read_bytes() for p in (hea, dat)}
    out = tmp_path / f"r{target}"
    res = _run(["enroll", str(hea), "--out", str(out), "--quiet"])
    _refused(res, out)
    assert {p: p.read_bytes() for p in (hea, dat)} == before


def test_record_files_and_the_check_by_identity_not_by_name(tmp_path: Path) -> None:
    assert record_files(tmp_path / "a.hea") == [tmp_path / f"a{s}"
                                                for s in (".hea", ".dat", ".mat", ".atr")]
    assert record_files(tmp_path / "a.csv") == [tmp_path / "a.csv"]
    a = tmp_path / "a.csv"
    a.write_text("x")
    hard = tmp_path / "sub" / "leads.csv"
    hard.parent.mkdir()
    os.link(a, hard)  # another name for the same file
    with pytest.raises(Exception, match="would destroy it"):
        refuse_overwriting_inputs([a], [tmp_path / "sub" / n for n in OUTPUT_NAMES])
    (tmp_path / "sub2").mkdir()
    (tmp_path / "sub2" / "leads.csv").write_text("x")  # same content, another file: fine
    refuse_overwriting_inputs([a], [tmp_path / "sub2" / n for n in OUTPUT_NAMES])


@pytest.mark.parametrize("args, option", [
    (["--age", "nan"], "--age"), (["--age", "inf"], "--age"), (["--fs", "0"], "--fs"),
    (["--wearable-fs", "0"], "--wearable-fs"), (["--wearable-fs", "nan"], "--wearable-fs"),
])
def test_enroll_numbers_are_finite_and_named(tmp_path: Path, args: list[str],
                                             option: str) -> None:
    hea = tmp_path / "r.hea"
    hea.write_text("r 12 500 5000\n")
    res = _run(["enroll", str(hea), "--out", str(tmp_path / "p.json"), *args])
    assert res.exit_code == 2 and f"'{option}'" in res.output
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("where", ["under-a-file", "a-folder"])
def test_events_that_cannot_be_written_fail_first_and_leave_nothing(
        tiny_bundle: Path, tmp_path: Path, where: str) -> None:
    src = tmp_path / "x.csv"
    _csv(src)
    (tmp_path / "f").write_text("x")
    events = tmp_path / "f" / "e.ndjson" if where == "under-a-file" else tmp_path
    out = tmp_path / "o"
    res = _run(["reconstruct", str(src), "--out", str(out), "--events", str(events),
                "--bundle", str(tiny_bundle), "--quiet"])
    assert res.exit_code == 1
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"cannot write events output {events}" in lines[0]
    assert "unexpected" not in lines[0]
    assert not out.exists()  # no header-only leads.csv left behind


@pytest.mark.parametrize("argv", [["reconstruct", "{good}"], ["stream"], ["demo"],
                                  ["enroll", "{good}"]])
def test_an_empty_out_is_refused_not_the_current_folder(argv, tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from benchmarks.bad_inputs import _csv, ecg
    from edge.cli import main

    good = _csv(tmp_path / "good.csv", {"t_s": np.arange(2500) / 250.0, "I": ecg(2500)})
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    res = CliRunner().invoke(main, [a.format(good=good) for a in argv] + ["--out", " "])
    assert res.exit_code == 2 and "empty path" in res.output
    assert list(work.iterdir()) == []
