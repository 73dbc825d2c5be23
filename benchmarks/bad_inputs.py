"""Bad-input suite: crafted files and options against the `ecg12` command line.

Each case is a command line (and the files it needs, written here) with what must happen:
  refuse   exit code != 0, exactly one line on stderr that contains `needle`, no traceback,
           and no output folder left behind (nothing half-written);
  ok       exit 0, no traceback, and an output whose time line matches the input exactly:
           one row per input sample (gaps included), NaN exactly where samples are missing,
           and Lead I out aligned with Lead I in (best cross-correlation at lag 0).
Expected time lines come from how the case was written (hand-computed), not from the reader.

    python -m benchmarks.bad_inputs [--bundle DIR] [--keep DIR]   # every case, via `ecg12`

prints one line per failing case and the totals (tracebacks, exit-0 failures, wrong exits,
shifted samples); exits 1 when any case fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FS = 250.0


@dataclass
class Case:
    """One command line and what must happen."""

    name: str
    args: list[str]
    expect: str  # "refuse" | "ok"
    needle: str = ""
    #: ok cases: missing-sample mask of the expected output time line (True = missing)
    missing: np.ndarray | None = None
    #: ok cases: the Lead I values (mV) on that time line, NaN where missing
    lead_i: np.ndarray | None = None
    fs_hz: float | None = None
    tags: list[str] = field(default_factory=list)


def ecg(n: int, fs: float = FS, seed: int = 0) -> np.ndarray:
    """A deterministic ECG-like Lead I (mV): sharp beats at ~72 bpm plus a little noise."""
    t = np.arange(n) / fs
    rng = np.random.default_rng(seed)
    phase = (t * 1.2) % 1.0
    def g(mu: float, w: float) -> np.ndarray:
        return np.exp(-(((phase - mu) / w) ** 2))

    beat = 1.1 * g(0.3, 0.012) - 0.15 * g(0.33, 0.01)
    wave = 0.25 * g(0.6, 0.05) + 0.08 * g(0.15, 0.03)
    return (beat + wave + 0.01 * rng.standard_normal(n)).astype(np.float64)


def _csv(path: Path, cols: dict[str, Sequence[float]], header: bool = True, sep: str = ",",
         fmt: str | list[str] = "{:.6f}") -> Path:
    names = list(cols)
    fmts = [fmt] * len(names) if isinstance(fmt, str) else fmt
    rows = zip(*cols.values(), strict=True)
    lines = [sep.join(names)] if header else []
    lines += [sep.join("" if (isinstance(v, float) and math.isnan(v)) else f.format(v)
                       for f, v in zip(fmts, r, strict=True)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _wfdb(path: Path, x: np.ndarray, fs: float = 500.0, names: list[str] | None = None,
          fmt: str = "16", units: str = "mV") -> Path:
    import wfdb

    sig = x[:, None] if x.ndim == 1 else x
    names = names or ["I"] + [f"X{i}" for i in range(1, sig.shape[1])]
    wfdb.wrsamp(path.name, fs=fs, units=[units] * sig.shape[1], sig_name=names, p_signal=sig,
                fmt=[fmt] * sig.shape[1], write_dir=str(path.parent))
    return path.with_suffix(".hea")


def _edit_header(hea: Path, fn: Callable[[list[str]], list[str]]) -> Path:
    lines = hea.read_text().splitlines()
    hea.write_text("\n".join(fn(lines)) + "\n")
    return hea


def _edf(path: Path, x: np.ndarray, fs: int = 250, label: str = "ECG I", dim: str = "mV",
         kind: str = "edf+") -> Path:
    import pyedflib

    ft = {"edf": pyedflib.FILETYPE_EDF, "edf+": pyedflib.FILETYPE_EDFPLUS,
          "bdf": pyedflib.FILETYPE_BDF, "bdf+": pyedflib.FILETYPE_BDFPLUS}[kind]
    w = pyedflib.EdfWriter(str(path), 1, file_type=ft)
    big = 10.0 if dim == "mV" else 10000.0
    w.setSignalHeaders([{"label": label, "dimension": dim, "sample_frequency": fs,
                         "physical_max": big, "physical_min": -big,
                         "digital_max": 8388607 if kind.startswith("bdf") else 32767,
                         "digital_min": -8388608 if kind.startswith("bdf") else -32768}])
    w.writeSamples([x])
    w.close()
    return path


def make_cases(d: Path) -> list[Case]:
    """Write every case's files under `d`; return the cases (>= 100)."""
    d.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    n = int(20 * FS)
    x = ecg(n)
    t = np.arange(n) / FS

    def refuse(name: str, args: list[str], needle: str = "") -> None:
        cases.append(Case(name, args, "refuse", needle))

    def ok(name: str, args: list[str], missing: np.ndarray, lead: np.ndarray, fs: float) -> None:
        cases.append(Case(name, args, "ok", missing=missing, lead_i=lead, fs_hz=fs))

    good = _csv(d / "good.csv", {"t_s": t, "I": x})
    R = ["reconstruct"]

    # ---------------------------------------------------------------- CSV: unreadable
    (d / "empty.csv").write_text("")
    refuse("csv empty", R + [str(d / "empty.csv")], "empty CSV")
    (d / "header_only.csv").write_text("t_s,I\n")
    refuse("csv header only", R + [str(d / "header_only.csv")], "no data rows")
    (d / "comments.csv").write_text("# a comment\n# another\n\n")
    refuse("csv only comments", R + [str(d / "comments.csv")], "empty CSV")
    (d / "binary.csv").write_bytes(np.random.default_rng(1).bytes(5000))
    refuse("csv binary bytes", R + [str(d / "binary.csv")], "not")
    (d / "latin1.csv").write_bytes("t_s,I (\xb5V)\n0,1\n".encode("latin-1"))
    refuse("csv latin-1 header", R + [str(d / "latin1.csv")], "UTF-8")
    (d / "zip.csv").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 10)
    refuse("csv zip named csv", R + [str(d / "zip.csv")], "")
    refuse("--report-at past the end of the file", R + [str(good), "--report-at", "1e9"],
           "lasts 20 s; the report's 10 s must start within it")
    refuse("stream --report-at past --duration",
           ["stream", "--source", "sim:?speed=0", "--duration", "12", "--report-at", "15",
            "--out", str(d / "stream_out")], "the run lasts 12 s")
    bad = good.read_text().splitlines()
    bad[1000] = "3.996,abc"
    (d / "nonnumeric.csv").write_text("\n".join(bad) + "\n")
    refuse("csv non-numeric value", R + [str(d / "nonnumeric.csv")], "'abc' is not a number")
    bad = good.read_text().splitlines()
    bad[2000] = "7.996"
    (d / "ragged.csv").write_text("\n".join(bad) + "\n")
    refuse("csv ragged row", R + [str(d / "ragged.csv")], "line 2001 has 1 values")
    bad = good.read_text().splitlines()
    bad[1500] = bad[1500] + ",5"
    (d / "extra_col.csv").write_text("\n".join(bad) + "\n")
    refuse("csv extra value", R + [str(d / "extra_col.csv")], "line 1501 has 3 values")
    tb = t.copy()
    tb[3000] = tb[2990]
    _csv(d / "backwards.csv", {"t_s": tb, "I": x})
    refuse("csv time goes back", R + [str(d / "backwards.csv")], "goes back")
    td = t.copy()
    td[3000] = td[2999]
    _csv(d / "duplicate_t.csv", {"t_s": td, "I": x})
    refuse("csv time repeats", R + [str(d / "duplicate_t.csv")], "repeats")
    tj = t + np.random.default_rng(2).uniform(-0.45, 0.45, n) / FS
    _csv(d / "jitter.csv", {"t_s": tj, "I": x}, fmt="{:.7f}")
    refuse("csv non-uniform time", R + [str(d / "jitter.csv")], "not uniform")
    tv = np.cumsum(np.where(np.arange(n) < n // 2, 1 / 250, 1 / 260))
    _csv(d / "two_rates.csv", {"t_s": tv, "I": x}, fmt="{:.7f}")
    refuse("csv rate changes midway", R + [str(d / "two_rates.csv")], "not uniform")
    tdrift = t * (1 + 0.004 * t / t[-1])
    _csv(d / "drift.csv", {"t_s": tdrift, "I": x}, fmt="{:.7f}")
    refuse("csv clock drifts", R + [str(d / "drift.csv")], "not uniform")
    tn = t.copy()
    tn[100] = np.nan
    _csv(d / "nan_time.csv", {"t_s": tn, "I": x})
    refuse("csv empty time cell", R + [str(d / "nan_time.csv")], "not a finite time")
    _csv(d / "time_ms_as_s.csv", {"time": t * 1000, "I": x})
    refuse("csv ms time column named time", R + [str(d / "time_ms_as_s.csv")], "outside")
    for rate in (5, 10, 50, 2000, 1e6):
        m = int(max(20, min(20 * rate, 200000)))
        _csv(d / f"rate_{rate:g}.csv", {"t_s": np.arange(m) / rate, "I": ecg(m, rate)},
             fmt="{:.9f}")
        refuse(f"csv {rate:g} Hz", R + [str(d / f"rate_{rate:g}.csv")], "outside")
    _csv(d / "one_row.csv", {"t_s": [0.0], "I": [0.1]})
    refuse("csv one row", R + [str(d / "one_row.csv")], "")
    _csv(d / "no_time.csv", {"I": x})
    refuse("csv no time, no --fs", R + [str(d / "no_time.csv")], "--fs")
    for v in ("0", "-250", "nan", "inf", "5", "abc", "1e6", ""):
        refuse(f"--fs {v!r}", R + [str(d / "no_time.csv"), "--fs", v], "--fs")
    refuse("--fs contradicts time column", R + [str(good), "--fs", "500"], "contradicts")
    _csv(d / "all_nan.csv", {"t_s": t, "I": [math.nan] * n})
    refuse("csv all NaN", R + [str(d / "all_nan.csv")], "")
    (d / "all_nan_text.csv").write_text("t_s,I\n" + "".join(f"{v:.4f},nan\n" for v in t))
    refuse("csv all 'nan' text", R + [str(d / "all_nan_text.csv")], "")
    m3 = int(1.5 * FS)  # shorter than one window of the shipped (8 s) and the test (2 s) model
    _csv(d / "short.csv", {"t_s": t[:m3], "I": x[:m3]})
    refuse("csv shorter than a window", R + [str(d / "short.csv")], "window")
    _csv(d / "dup_names.csv", {"t_s": t, "I": x, "II": x})
    (d / "dup_names.csv").write_text((d / "dup_names.csv").read_text().replace("II", "I", 1))
    refuse("csv two columns named I", R + [str(d / "dup_names.csv")], "named like 'I'")
    _csv(d / "dup_names2.csv", {"t_s": t, "lead I": x, "I_mV": x})
    refuse("csv 'lead I' and 'I_mV'", R + [str(d / "dup_names2.csv")], "named like 'I'")
    refuse("csv no such lead", R + [str(good), "--lead", "V1"], "no lead 'V1'")
    refuse("csv channel out of range", R + [str(good), "--channel", "7"], "channel index 7")
    refuse("csv channel is the time column", R + [str(good), "--channel", "0"], "channel index 0")
    refuse("--channel -1", R + [str(good), "--channel", "-1"], "--channel")
    refuse("--channel abc", R + [str(good), "--channel", "abc"], "--channel")
    refuse("--lead and --channel", R + [str(good), "--lead", "I", "--channel", "1"], "not both")
    _csv(d / "three_unnamed.csv", {"a": x, "b": x, "c": x}, header=False)
    refuse("csv 3 unnamed columns", R + [str(d / "three_unnamed.csv"), "--fs", "250"],
           "no lead 'I'")
    _csv(d / "uv_as_mv.csv", {"t_s": t, "I_mV": x * 1000})
    refuse("csv uV values in an mV column", R + [str(d / "uv_as_mv.csv")], "looks like uV")
    _csv(d / "mv_as_uv.csv", {"t_s": t, "I_uV": x})
    refuse("csv mV values in a uV column", R + [str(d / "mv_as_uv.csv")], "looks like V")
    _csv(d / "huge.csv", {"t_s": t, "I": x * 1e300}, fmt="{:.6e}")
    refuse("csv 1e300 values", R + [str(d / "huge.csv")], "implausible")
    _csv(d / "inf_all.csv", {"t_s": t, "I": [math.inf] * n})
    refuse("csv all inf", R + [str(d / "inf_all.csv")], "")
    refuse("--units bogus", R + [str(good), "--units", "mmHg"], "--units")
    refuse("directory as file", R + [str(d)], "FILE")
    refuse("missing file", R + [str(d / "nope.csv")], "does not exist")
    (d / "weird.xyz").write_text("hello")
    refuse("unknown extension", R + [str(d / "weird.xyz")], "unknown recording format")

    # ---------------------------------------------------------------- options
    for opt, v, needle in (("--mc-samples", "-1", "--mc-samples"),
                           ("--mc-samples", "1e9", "--mc-samples"),
                           ("--mc-samples", "abc", "--mc-samples"),
                           ("--seed", "-1", "--seed"), ("--seed", "1.5", "--seed"),
                           ("--seed", str(2**40), "--seed"), ("--format", "xml", "--format"),
                           ("--bundle", str(d / "no_bundle"), "bundle")):
        refuse(f"reconstruct {opt} {v}", R + [str(good), opt, v], needle)
    # a bundle whose atypicality model was damaged (copied from the shipped one)
    shipped = Path(__file__).resolve().parents[1] / "edge" / "bundles" / "default"
    man = json.loads((shipped / "manifest.json").read_text())
    if "atypicality" in man.get("uncertainty", {}):
        bad = d / "bad_atypicality_bundle"
        shutil.copytree(shipped, bad, dirs_exist_ok=True)
        man["uncertainty"]["atypicality"]["components"]["data"] = "@@@"
        (bad / "manifest.json").write_text(json.dumps(man))
        refuse("bundle with a damaged atypicality model", R + [str(good), "--bundle", str(bad)],
               "uncertainty.atypicality.components.data")
    for v in ("0", "-1", "nan", "inf", "1.5", "1e9"):
        refuse(f"demo --seconds {v}", ["demo", "--seconds", v, "--out", str(d / "demo_out")],
               "seconds" if v != "1.5" else "window")
    refuse("demo --speed -1", ["demo", "--speed", "-1", "--out", str(d / "demo_out")], "--speed")
    refuse("--profile empty", R + [str(good), "--profile", ""], "empty path")
    S = ["stream", "--duration", "10", "--out", str(d / "stream_out")]
    refuse("stream --mqtt-username without --publish", S + ["--mqtt-username", "u"],
           "add --publish")
    refuse("stream --view-host empty", S + ["--view", "--view-host", ""], "--view-host is empty")
    refuse("enroll --lead without --wearable", ["enroll", str(good), "--lead", "V1", "--out",
                                                str(d / "enroll_out.json")], "--wearable")
    for name in ("leads.csv", "summary.json"):
        refuse(f"--events over the run's {name}", R + [str(good), "--out", str(d / "ev_out"),
                                                       "--events", str(d / "ev_out" / name)],
               f"own {name}")
    for v in ("-5", "0", "nan", "abc"):
        refuse(f"stream --duration {v}", ["stream", "--duration", v, "--out",
                                          str(d / "stream_out")], "--duration")
    for uri, needle in (("sim:?fs=5", "outside"), ("sim:?fs=nan", "fs"), ("sim:?fs=0", "fs"),
                        ("sim:?seed=-1", "seed"), ("sim:?hr=abc", "hr"), ("nope:", "scheme"),
                        ("sim:?fs=1e6", "outside"), ("sim:?duration=1.5", "window"),
                        ("sim:?chunk=0", "chunk"), ("sim:?speed=-1", "speed"),
                        ("file:" + str(d / "nope.csv"), "not found"),
                        ("file:" + str(d / "no_time.csv") + "?fs=0", "fs"),
                        ("sim:?fs=62.4725&duration=30", "outside"),
                        ("serial:/dev/null?format=ascii&adc_bits=64", "adc_bits"),
                        ("serial:/dev/null?format=ascii&adc_bits=-5", "adc_bits"),
                        ("serial:/dev/null?format=ascii&gain=0", "gain"),
                        ("serial:/dev/null?format=ascii&gain=-1", "gain"),
                        ("sim:/some/target", "takes no target"),
                        ("file:" + str(good) + "?lead=I&channel=1", "not both")):
        refuse(f"stream --source {uri[:40]}", ["stream", "--source", uri, "--duration", "30",
                                               "--out", str(d / "stream_out")], needle)

    # ---------------------------------------------------------------- profiles
    prof = {"binary": np.random.default_rng(3).bytes(300), "invalid json": b"{age: 5",
            "list": b"[1, 2]", "unknown field": b'{"height": 170}', "age -4": b'{"age": -4}',
            "age abc": b'{"age": "abc"}', "sex X": b'{"sex": "X"}', "age true": b'{"age": true}',
            "age list": b'{"age": [54]}', "age huge": b'{"age": 1e400}',
            "utf16": '{"age": 5}'.encode("utf-16"), "nested deep": b"[" * 100000}
    for name, data in prof.items():
        pf = d / f"profile_{name.replace(' ', '_')}.json"
        pf.write_bytes(data)
        refuse(f"profile {name}", R + [str(good), "--profile", str(pf)], "profile")
    (d / "bad.toml").write_text("age = = 5\n")
    refuse("profile bad toml", R + [str(good), "--profile", str(d / "bad.toml")], "TOML")
    refuse("profile missing", R + [str(good), "--profile", str(d / "nope.json")], "not found")

    # ---------------------------------------------------------------- WFDB
    x5 = ecg(int(20 * 500), 500.0)
    for v in ("-500", "nan", "0", "abc", "inf", "1e6", "62.4725", "1", "-0"):
        hea = _wfdb(d / f"rate_{v.replace('.', '_')}", x5)
        _edit_header(hea, lambda ls, v=v: [" ".join([*ls[0].split()[:2], v,
                                                     *ls[0].split()[3:]]), *ls[1:]])
        refuse(f"wfdb header rate {v}", R + [str(hea)], "sampling")
    hea = _wfdb(d / "no_rate", x5)
    _edit_header(hea, lambda ls: [" ".join(ls[0].split()[:2]), *ls[1:]])
    refuse("wfdb header without rate", R + [str(hea)], "--fs")
    refuse("wfdb --fs contradicts header", R + [str(_wfdb(d / "r500", x5)), "--fs", "250"],
           "contradicts")
    hea = _wfdb(d / "zero_sig", x5)
    _edit_header(hea, lambda ls: [" ".join([ls[0].split()[0], "0", *ls[0].split()[2:]])])
    refuse("wfdb 0 signals", R + [str(hea)], "")
    (d / "garbage.hea").write_bytes(np.random.default_rng(4).bytes(400))
    refuse("wfdb binary header", R + [str(d / "garbage.hea")], "")
    (d / "textgarbage.hea").write_text("hello world this is not a header\n")
    refuse("wfdb text garbage header", R + [str(d / "textgarbage.hea")], "")
    hea = _wfdb(d / "no_dat", x5)
    hea.with_suffix(".dat").unlink()
    refuse("wfdb .dat missing", R + [str(hea)], "")
    hea = _wfdb(d / "truncated", x5)
    os.truncate(hea.with_suffix(".dat"), 4000)
    refuse("wfdb .dat truncated", R + [str(hea)], "")
    hea = _wfdb(d / "negative_len", x5)
    _edit_header(hea, lambda ls: [" ".join(ls[0].split()[:3] + ["-2500"])] + ls[1:])
    refuse("wfdb negative number of samples", R + [str(hea)],
           "field 'number of samples' '-2500' is not a whole number")
    hea = _wfdb(d / "no_len", x5)
    _edit_header(hea, lambda ls: [" ".join(ls[0].split()[:3])] + ls[1:])
    refuse("wfdb record line without number of samples", R + [str(hea)],
           "no 'number of samples' field")
    hea = _wfdb(d / "two_sig_one_line", np.column_stack([x5, x5]), names=["I", "II"])
    _edit_header(hea, lambda ls: ls[:2])
    refuse("wfdb 2 signals declared, 1 signal line", R + [str(hea)], "has 1 signal line")
    hea = _wfdb(d / "neg_gain", x5)
    _edit_header(hea, lambda ls: [ls[0], ls[1].replace(ls[1].split()[2], "-200(0)/mV", 1)])
    refuse("wfdb negative gain", R + [str(hea)], "gain -200 is not > 0")
    hea = _wfdb(d / "corrupt", x5)
    with hea.with_suffix(".dat").open("r+b") as f:  # one sample's bytes overwritten mid-file
        f.seek(3000)
        f.write(bytes([0x5A, 0x3C]))
    refuse("wfdb .dat corrupt (checksum)", R + [str(hea)], "does not match the samples")
    hea = _wfdb(d / "bad_fmt", x5)
    _edit_header(hea, lambda ls: [ls[0], ls[1].replace(" 16 ", " 999 ", 1)])
    refuse("wfdb unknown format", R + [str(hea)], "")
    hea = _wfdb(d / "dup_wfdb", np.column_stack([-x5, x5]), names=["I", "II"])
    _edit_header(hea, lambda ls: [ls[0], ls[1], ls[2].rsplit(" ", 1)[0] + " I"])
    refuse("wfdb two signals named I", R + [str(hea)], "named like 'I'")
    hea = _wfdb(d / "unnamed2", np.column_stack([-x5, x5]), names=["I", "II"])
    _edit_header(hea, lambda ls: [ls[0]] + [" ".join(ln.split()[:8]) for ln in ls[1:]])
    refuse("wfdb 2 unnamed signals", R + [str(hea)], "no lead 'I'")
    hea = _wfdb(d / "mmhg", x5, units="mmHg")
    refuse("wfdb units mmHg", R + [str(hea)], "not a voltage unit")
    hea = _wfdb(d / "wfdb_uv_as_mv", x5 * 1000)
    refuse("wfdb uV values labelled mV", R + [str(hea)], "looks like uV")
    hea = _wfdb(d / "wfdb_short", x5[:750])
    refuse("wfdb shorter than a window", R + [str(hea)], "window")
    hea = _wfdb(d / "wfdb_lowrate", ecg(2000, 50.0), fs=50.0)
    refuse("wfdb 50 Hz", R + [str(hea)], "outside")
    _wfdb(d / "mseg_a", x5[:2000])
    (d / "mseg_null.hea").write_text("mseg_null/2 1 500 4000\n~ 2000\n~ 2000\n")
    refuse("wfdb all-null multi-segment", R + [str(d / "mseg_null.hea")], "null")
    (d / "mseg_missing.hea").write_text("mseg_missing/2 1 500 4000\nmseg_a 2000\nnope 2000\n")
    refuse("wfdb multi-segment, segment missing", R + [str(d / "mseg_missing.hea")], "")
    hea = _wfdb(d / "spf_high", x5)
    _edit_header(hea, lambda ls: [ls[0], ls[1].replace(" 16 ", " 16x4 ", 1)])
    refuse("wfdb 4 x 500 Hz = 2000 Hz", R + [str(hea)], "")

    # ---------------------------------------------------------------- EDF / BDF
    x250 = ecg(int(20 * 250), 250.0)
    (d / "garbage.edf").write_bytes(b"0       " + np.random.default_rng(5).bytes(2000))
    refuse("edf garbage", R + [str(d / "garbage.edf")], "cannot read")
    e = _edf(d / "trunc.edf", x250)
    os.truncate(e, e.stat().st_size - 3000)
    refuse("edf truncated", R + [str(e)], "cannot read")
    refuse("edf 50 Hz", R + [str(_edf(d / "low.edf", ecg(1000, 50.0), fs=50))], "outside")
    refuse("edf mmHg", R + [str(_edf(d / "mmhg.edf", x250, dim="mmHg"))], "not a voltage")
    e = _edf(d / "disc.edf", x250)
    raw = bytearray(e.read_bytes())
    raw[192:197] = b"EDF+D"
    e.write_bytes(bytes(raw))
    refuse("edf+D", R + [str(e)], "EDF+D")
    refuse("edf no lead", R + [str(_edf(d / "v1.edf", x250, label="V1")), "--lead", "II"],
           "no lead 'II'")
    (d / "empty.edf").write_bytes(b"")
    refuse("edf empty", R + [str(d / "empty.edf")], "cannot read")
    (d / "garbage.bdf").write_bytes(b"\xffBIOSEMI" + bytes(1000))
    refuse("bdf garbage", R + [str(d / "garbage.bdf")], "cannot read")

    # ---------------------------------------------------------------- readable: exact time line
    none = np.zeros(n, bool)
    ok("csv good", R + [str(good)], none, x, FS)
    xh = x.copy()
    hole = np.zeros(n, bool)
    hole[1200:1500] = True  # 1.2 s: a real gap
    keep = ~hole
    _csv(d / "hole.csv", {"t_s": t[keep], "I": x[keep]})
    xh[hole] = np.nan
    ok("csv time column with a hole", R + [str(d / "hole.csv")], hole, xh, FS)
    hole2 = np.zeros(n, bool)
    hole2[2000:2100] = True  # 0.4 s: bridged for the model, NaN out
    _csv(d / "short_hole.csv", {"t_ms": t[~hole2] * 1000, "I": x[~hole2]}, fmt="{:.3f}")
    ok("csv t_ms with a short hole", R + [str(d / "short_hole.csv")], hole2,
       np.where(hole2, np.nan, x), FS)
    xn = x.copy()
    xn[3000:3400] = np.nan
    _csv(d / "nan_stretch.csv", {"time": t, "ECG": xn})
    ok("csv NaN stretch", R + [str(d / "nan_stretch.csv")], np.isnan(xn), xn, FS)
    _csv(d / "flat_all.csv", {"t_s": t, "I": np.zeros(n)})
    refuse("csv flat all through (leads off)", R + [str(d / "flat_all.csv")], "Lead I was poor")
    xc = np.where((t % 3.0) >= 1.5, np.nan, x)  # 1.5 s of signal, 1.5 s missing, and again
    _csv(d / "choppy.csv", {"t_s": t, "I": xc})
    refuse("csv no gap-free stretch of one window", R + [str(d / "choppy.csv")],
           "no stretch between gaps is long enough")
    _csv(d / "millis_hole.csv", {"millis": t[keep] * 1000, "I": x[keep]}, fmt="{:.0f}")
    ok("csv Arduino millis column with a hole", R + [str(d / "millis_hole.csv")], hole, xh, FS)
    for name in ("timestamp", "sample"):
        _csv(d / f"{name}_hole.csv", {name: t[keep] * (FS if name == "sample" else 1.0),
                                      "I": x[keep]})
        refuse(f"csv {name} column of unknown unit, --fs",
               R + [str(d / f"{name}_hole.csv"), "--fs", "250"], "unit is unknown")
    _csv(d / "ms_no_header_hole.csv", {"t": t[keep] * 1000, "I": x[keep]}, header=False,
         fmt="{:.0f}")
    refuse("csv no header, ms counter in column 0, --channel 1 --fs",
           R + [str(d / "ms_no_header_hole.csv"), "--channel", "1", "--fs", "250"],
           "increases steadily")
    for where, cut in (("start", slice(0, 2500)), ("end", slice(n - 1250, n))):
        xe = x.copy()
        xe[cut] = np.nan  # empty cells before the first (after the last) sample
        _csv(d / f"nan_at_{where}.csv", {"t_s": t, "I": xe})
        ok(f"csv NaN at the {where}", R + [str(d / f"nan_at_{where}.csv")], np.isnan(xe), xe, FS)
    for hdr in (True, False):  # a European spreadsheet export: ';' and decimal commas
        body = "".join(f"{a:.3f};{v:.6f}\n".replace(".", ",") for a, v in zip(t, x, strict=True))
        name = f"decimal_comma{'' if hdr else '_no_header'}.csv"
        (d / name).write_text(("t_s;I\n" if hdr else "") + body)
        ok(f"csv ';' with decimal commas{'' if hdr else ', no header'}", R + [str(d / name)],
           none, x, FS)
    xb = x.copy()
    xb[[1000, 3000, 3001]] = np.nan  # empty cells: blank lines in a one-column file
    _csv(d / "one_column_blank.csv", {"I": xb}, header=False)
    ok("csv one column with blank lines, --fs", R + [str(d / "one_column_blank.csv"), "--fs",
                                                     "250"], np.isnan(xb), xb, FS)
    _csv(d / "headerless_one.csv", {"I": x}, header=False)
    ok("csv one column, no header, --fs", R + [str(d / "headerless_one.csv"), "--fs", "250"],
       none, x, FS)
    _csv(d / "headerless_two.csv", {"t": t, "I": x}, header=False)
    ok("csv time + value, no header", R + [str(d / "headerless_two.csv")], none, x, FS)
    _csv(d / "tabs.tsv", {"time_s": t, "II": -x, "I": x}, sep="\t")
    ok("tsv by name", R + [str(d / "tabs.tsv")], none, x, FS)
    ok("tsv by index", R + [str(d / "tabs.tsv"), "--channel", "2"], none, x, FS)
    _csv(d / "semicolon.csv", {"t_s": t, "I": x}, sep=";")
    ok("csv semicolons", R + [str(d / "semicolon.csv")], none, x, FS)
    _csv(d / "uv.csv", {"t_s": t, "ecg": x * 1000}, fmt=["{:.6f}", "{:.1f}"])
    ok("csv uV detected by amplitude", R + [str(d / "uv.csv")], none, x, FS)
    _csv(d / "uv_named.csv", {"t_s": t, "I (uV)": x * 1000}, fmt=["{:.6f}", "{:.1f}"])
    ok("csv uV from the column name", R + [str(d / "uv_named.csv")], none, x, FS)
    ok("csv uV in mV column, --units uV", R + [str(d / "uv_as_mv.csv"), "--units", "uV"], none,
       x, FS)
    (d / "utf16.csv").write_text(good.read_text(), encoding="utf-16")
    ok("csv UTF-16", R + [str(d / "utf16.csv")], none, x, FS)
    (d / "bom.csv").write_text("\ufeff" + good.read_text(), encoding="utf-8")
    ok("csv UTF-8 BOM", R + [str(d / "bom.csv")], none, x, FS)
    (d / "crlf.csv").write_bytes(good.read_bytes().replace(b"\n", b"\r\n"))
    ok("csv CRLF", R + [str(d / "crlf.csv")], none, x, FS)
    fs_odd = 250.01
    n_odd = int(20 * fs_odd)
    _csv(d / "odd_rate.csv", {"t_s": np.arange(n_odd) / fs_odd, "I": ecg(n_odd, fs_odd)},
         fmt="{:.9f}")
    ok("csv 250.01 Hz (approximated)", R + [str(d / "odd_rate.csv")], np.zeros(n_odd, bool),
       ecg(n_odd, fs_odd), None)
    ok("wfdb 500 Hz", R + [str(d / "r500.hea")], np.zeros(len(x5), bool), x5, 500.0)
    hea = _wfdb(d / "no_rate_fs", x5)
    _edit_header(hea, lambda ls: [" ".join(ls[0].split()[:2]), *ls[1:]])
    ok("wfdb without rate, --fs 500", R + [str(hea), "--fs", "500"],
       np.zeros(len(x5), bool), x5, 500.0)
    hea = _wfdb(d / "unnamed1", x5)
    _edit_header(hea, lambda ls: [ls[0], " ".join(ls[1].split()[:8])])
    ok("wfdb single unnamed signal", R + [str(hea)], np.zeros(len(x5), bool), x5, 500.0)
    ok("wfdb 2 unnamed, --channel 1", R + [str(d / "unnamed2.hea"), "--channel", "1"],
       np.zeros(len(x5), bool), x5, 500.0)
    ok("wfdb two named I, --channel 1", R + [str(d / "dup_wfdb.hea"), "--channel", "1"],
       np.zeros(len(x5), bool), x5, 500.0)
    _wfdb(d / "mseg_b", x5[3000:])
    (d / "mseg.hea").write_text(f"mseg/3 1 500 {len(x5)}\nmseg_a 2000\n~ 1000\n"
                                f"mseg_b {len(x5) - 3000}\n")
    gap = np.zeros(len(x5), bool)
    gap[2000:3000] = True
    ok("wfdb multi-segment with a null segment", R + [str(d / "mseg.hea")], gap,
       np.where(gap, np.nan, x5), 500.0)
    e = _edf(d / "ok.edf", x250)
    ok("edf+", R + [str(e)], np.zeros(len(x250), bool), x250, 250.0)
    e = _edf(d / "ok.bdf", x250, kind="bdf")
    ok("bdf", R + [str(e)], np.zeros(len(x250), bool), x250, 250.0)
    e = _edf(d / "uv.edf", x250 * 1000, dim="uV", kind="edf")
    ok("edf uV", R + [str(e)], np.zeros(len(x250), bool), x250, 250.0)
    return cases


def _frame_lines(stderr: str) -> list[str]:
    """stderr lines that are not progress/library noise (TFLite's INFO line)."""
    return [ln for ln in stderr.splitlines()
            if ln.strip() and not ln.startswith(("INFO:", "WARNING: All log messages"))]


def check(case: Case, rc: int, stderr: str, out: Path) -> list[str]:
    """Problems with one run ([] = as expected); kinds: traceback, exit0, exit, shifted."""
    problems: list[str] = []
    if "Traceback" in stderr:
        problems.append("traceback")
    if case.expect == "refuse":
        if rc == 0:
            problems.append("exit0: exit 0 for a bad input")
        lines = [ln for ln in _frame_lines(stderr) if ln.startswith("Error")]
        if len(lines) != 1 or len(_frame_lines(stderr)) != 1:
            problems.append(f"exit: not one line: {_frame_lines(stderr)[:3]}")
        elif case.needle and case.needle.lower() not in lines[0].lower():
            problems.append(f"exit: message lacks {case.needle!r}: {lines[0]}")
        if out.exists() and any(out.iterdir()):
            problems.append(f"exit: output left behind: {sorted(p.name for p in out.iterdir())}")
        return problems
    if rc != 0:
        return problems + [f"exit: exit {rc} for a good input: {_frame_lines(stderr)[-1:]}"]
    return problems + shifted(case, out)


def shifted(case: Case, out: Path) -> list[str]:
    """Compare the output time line with the case's: rows, NaN positions, Lead I lag 0."""
    from edge.sinks import read_csv

    try:
        t, leads, _ = read_csv(out / "leads.csv")
        summary = json.loads((out / "summary.json").read_text())
    except Exception as exc:  # noqa: BLE001
        return [f"shifted: unreadable output ({exc})"]
    assert case.missing is not None and case.lead_i is not None
    probs = []
    if len(t) != len(case.missing):
        probs.append(f"shifted: {len(t)} rows for {len(case.missing)} input samples")
        return probs
    if case.fs_hz is not None and abs(summary["fs_hz"] - case.fs_hz) > 1e-9 * case.fs_hz:
        probs.append(f"shifted: output at {summary['fs_hz']} Hz, input at {case.fs_hz} Hz")
    got_nan = np.isnan(leads[:, 0])
    if not np.array_equal(got_nan, case.missing):
        bad = np.flatnonzero(got_nan != case.missing)
        probs.append(f"shifted: NaN rows differ from the missing samples at {bad[:5]}...")
    ok = ~case.missing & ~got_nan
    x, y = case.lead_i, leads[:, 0].astype(np.float64)
    lags = range(-8, 9)
    idx = np.flatnonzero(ok)
    idx = idx[(idx >= 8) & (idx < len(x) - 8)]
    if idx.size > 100:
        score = [np.nansum((x[idx + k] - np.nanmean(x[idx])) * (y[idx] - np.nanmean(y[idx])))
                 for k in lags]
        best = list(lags)[int(np.nanargmax(score))]
        if best != 0:
            probs.append(f"shifted: Lead I out best matches Lead I in at lag {best} samples")
    return probs


def run_all(cases: list[Case], runner: Callable[[list[str], Path], tuple[int, str]],
            work: Path) -> dict[str, object]:
    """Run every case with `runner(args, out_dir) -> (exit code, stderr)`; count problems."""
    counts = {"cases": len(cases), "refuse": 0, "ok": 0, "traceback": 0, "exit0": 0, "exit": 0,
              "shifted": 0, "failed": []}
    for i, case in enumerate(cases):
        out = work / f"out{i:03d}"
        args = list(case.args)
        if "--out" not in args:
            args += ["--out", str(out)]
        else:
            out = Path(args[args.index("--out") + 1])
        rc, err = runner(args, out)
        counts[case.expect] += 1  # type: ignore[operator]
        probs = check(case, rc, err, out)
        for kind in {p.split(":")[0] for p in probs}:
            counts[kind] += 1  # type: ignore[operator]
        if probs:
            counts["failed"].append(f"{case.name}: {'; '.join(probs)}")  # type: ignore[union-attr]
    return counts


def _subprocess_runner(bundle: str | None, mc: str) -> Callable[[list[str], Path], tuple[int, str]]:
    def run(args: list[str], out: Path) -> tuple[int, str]:
        extra = (["--bundle", bundle] if bundle and "--bundle" not in args else []) + \
            (["--mc-samples", mc] if "--mc-samples" not in args else []) + ["--quiet"]
        if args[0] in {"reconstruct", "demo", "stream"}:
            args = args + extra
        res = subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True,
                             text=True, timeout=600)
        return res.returncode, res.stderr

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", default=None, help="bundle folder (default: the shipped one)")
    ap.add_argument("--mc-samples", default="2", help="MC samples per window (speed)")
    ap.add_argument("--keep", default=None, help="keep the files and outputs in this folder")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.keep) if a.keep else Path(tmp)
        cases = make_cases(root / "files")
        counts = run_all(cases, _subprocess_runner(a.bundle, a.mc_samples), root / "runs")
    for line in counts["failed"]:  # type: ignore[union-attr]
        print("FAIL", line)
    print(f"{counts['cases']} cases ({counts['refuse']} bad inputs, {counts['ok']} readable): "
          f"{counts['traceback']} tracebacks, {counts['exit0']} exit-0 failures, "
          f"{counts['exit']} wrong exits/messages, {counts['shifted']} shifted samples")
    return 1 if counts["failed"] else 0


__all__ = ["Case", "check", "make_cases", "run_all"]

if __name__ == "__main__":
    sys.exit(main())
