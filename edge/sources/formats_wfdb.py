"""WFDB records for the input layer: single- and multi-segment, several samples per frame.

The record line's rate is parsed here (wfdb silently defaults a missing or unparsable rate to
250 Hz); a channel with k samples per frame is read at k x the frame rate; multi-segment
records are read segment by segment (null `~` segments and segments without the channel are
gaps), so fixed and variable layouts both stream in blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge.sources.recording import (
    _CHECK_S,
    Recording,
    RecordingInputError,
    UnitsSample,
    _fail,
    _one_line,
    check_rate,
    merge_fs,
    pick_channel,
    resolve_units,
    unit_key,
)


def _record_line(hea: Path) -> list[str]:
    try:
        text = hea.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(hea, f"not a text WFDB header (byte {exc.start} is not UTF-8)") from None
    except OSError as exc:
        raise _fail(hea, f"cannot read ({_one_line(exc)})") from None
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.split()
    raise _fail(hea, "empty WFDB header (no record line)")


def _signal_lines(hea: Path) -> int:
    """Signal lines of a single-segment header: the non-comment lines after the record
    line."""
    lines = [ln for ln in hea.read_bytes().decode("utf-8").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    return len(lines) - 1


_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12,
         "310": 32 / 3, "311": 32 / 3}


def _with_rate(base: Path, hea: Path, fs: float) -> Path:
    """A copy of a header that has no rate (and so no length), with both filled in, in a
    temporary folder, next to links to the original signal files. wfdb cannot read
    a record without a length."""
    import atexit
    import shutil
    import tempfile

    lines = [ln for ln in hea.read_text().splitlines()]
    idx = [i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    rec = lines[idx[0]].split()
    sigs = [lines[i].split() for i in idx[1:1 + int(rec[1])]]
    if not sigs:
        raise _fail(hea, "no signal lines")
    files: dict[str, tuple[float, int]] = {}
    for tok in sigs:
        fmt, _, spf = tok[1].split("+")[0].partition("x")
        if fmt not in _BITS:
            raise _fail(hea, f"signal format {fmt!r}: cannot infer the record length without "
                             "a rate in the record line", "add the rate and length to the header")
        bits, n = files.get(tok[0], (0.0, 0))
        files[tok[0]] = (bits + _BITS[fmt] * int(spf or 1), n)
    lengths = []
    for name, (bits, _) in files.items():
        f = base.parent / name
        if not f.is_file():
            raise _fail(hea, f"signal file {name!r} not found")
        lengths.append(int(f.stat().st_size * 8 // bits))
    tmp = Path(tempfile.mkdtemp(prefix="ecg12-wfdb-"))
    atexit.register(shutil.rmtree, tmp, True)
    rec = [rec[0], rec[1], repr(float(fs)), str(min(lengths))]
    for name in files:
        (tmp / name).symlink_to((base.parent / name).resolve())
    out = [" ".join(rec)] + [" ".join(t) for t in sigs]
    (tmp / f"{rec[0].split('/')[0]}.hea").write_text("\n".join(out) + "\n")
    return tmp / rec[0].split("/")[0]


def _header_fs(tokens: list[str], hea: Path) -> float | None:
    """The record line's sampling frequency field; None when absent."""
    if len(tokens) < 3:
        return None
    raw = tokens[2].split("/")[0]
    try:
        fs = float(raw)
    except ValueError:
        raise _fail(hea, f"record line field 'sampling frequency' {raw!r} is not a number",
                    "fix the header or give the rate with --fs HZ") from None
    if not math.isfinite(fs) or fs <= 0:
        raise _fail(hea, f"record line field 'sampling frequency' {raw!r} is not a positive "
                         "rate", "fix the header or give the rate with --fs HZ")
    return fs


def _names(header: Any, n_sig: int) -> list[str]:
    names = list(header.sig_name) if getattr(header, "sig_name", None) else []
    return [str(n or "").strip() for n in names] + [""] * (n_sig - len(names))


def _rdheader(base: Path) -> Any:
    import wfdb

    try:
        return wfdb.rdheader(str(base))
    except Exception as exc:  # noqa: BLE001 - wfdb raises many types for bad headers
        raise _fail(base.with_suffix(".hea"), f"cannot parse WFDB header ({_one_line(exc)})",
                    "check the record line and signal lines") from None


def _read(base: Path, ch: int, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) of channel `ch`, all samples of each frame, physical units."""
    import wfdb

    try:
        rec = wfdb.rdrecord(str(base), channels=[ch], sampfrom=start, sampto=stop,
                            smooth_frames=False)
    except Exception as exc:  # noqa: BLE001
        raise _fail(base, f"cannot read WFDB signal frames {start}-{stop} "
                          f"({_one_line(exc)})") from None
    return np.asarray(rec.e_p_signal[0], dtype=np.float64)


def _check_end(base: Path, ch: int, n_frames: int, hea: Path) -> None:
    """Refuse now, not mid-stream, a signal file shorter than its header says."""
    try:
        _read(base, ch, n_frames - 1, n_frames)
    except RecordingInputError:
        raise _fail(hea, f"record line field 'number of samples' {n_frames}: the signal file "
                         "holds fewer (truncated?)") from None


_SUM_BLOCK = 1 << 18  # frames per read of the checksum pass (bounded memory on 24 h files)


def _check_sum(base: Path, header: Any, ch: int, n_frames: int, hea: Path) -> None:
    """Refuse, before any sample is used, a signal file whose samples do not add up to the
    header's checksum (the 16-bit sum of the digital samples): a corrupt or swapped .dat.
    A header without a checksum for the channel is not checked."""
    sums = header.checksum or []
    want = sums[ch] if ch < len(sums) else None
    if want is None:
        return
    import wfdb

    total = 0
    for f0 in range(0, n_frames, _SUM_BLOCK):
        f1 = min(n_frames, f0 + _SUM_BLOCK)
        try:
            rec = wfdb.rdrecord(str(base), channels=[ch], sampfrom=f0, sampto=f1,
                                physical=False, smooth_frames=False)
        except Exception as exc:  # noqa: BLE001
            raise _fail(base, f"cannot read WFDB signal frames {f0}-{f1} "
                              f"({_one_line(exc)})") from None
        total += int(np.asarray(rec.e_d_signal[0], dtype=np.int64).sum())
    if total % 65536 != int(want) % 65536:
        signed = (total + 32768) % 65536 - 32768  # the header's 16-bit signed convention
        raise _fail(hea, f"signal {ch} checksum {int(want)} does not match the samples in the "
                         f"signal file (their checksum is {signed}): the signal file is "
                         "corrupt or not this header's",
                    f"restore the record's signal file from its source; a hand-written header "
                    f"takes {signed} in that field")


def open_wfdb(p: Path, lead: str | None, channel: int | None, fs_opt: float | None,
              units: str | None) -> Recording:
    """Check a WFDB record (the .hea, .dat or base path) and return its chosen channel."""
    base = p.with_suffix("") if p.suffix.lower() in {".hea", ".dat", ".mat"} else p
    hea = base.with_suffix(".hea")
    tokens = _record_line(hea)
    file_fs = _header_fs(tokens, hea)
    if len(tokens) > 3 and not tokens[3].isdigit():
        raise _fail(hea, f"record line field 'number of samples' {tokens[3]!r} is not a "
                         "whole number >= 0", "fix the header's record line")
    shown = base
    if file_fs is None and fs_opt is not None and "/" not in tokens[0]:
        base = _with_rate(base, hea, fs_opt)  # only the length matters for reading
    header = _rdheader(base)
    if getattr(header, "seg_name", None):
        return _open_multi(base, hea, header, file_fs, lead, channel, fs_opt, units)
    n_sig = int(header.n_sig or 0)
    if n_sig == 0:
        raise _fail(hea, "record line field 'number of signals' is 0: no signals")
    lines = _signal_lines(hea)
    if lines != n_sig:
        raise _fail(hea, f"record line field 'number of signals' is {n_sig} but the header "
                         f"has {lines} signal line{'s' if lines != 1 else ''}",
                    "make the two agree")
    names = _names(header, n_sig)
    ch = pick_channel(names, lead, channel, hea)
    gain = (header.adc_gain or [None] * n_sig)[ch]
    if gain is not None and not float(gain) > 0:
        raise _fail(hea, f"signal {ch} ({names[ch] or 'unnamed'}) gain {float(gain):g} is not > 0 "
                         "ADC units per physical unit (0 = uncalibrated)",
                    "fix the signal line's gain, e.g. 200(0)/mV")
    spf = int((header.samps_per_frame or [1] * n_sig)[ch] or 1)
    label = "record line field 'sampling frequency'"
    frame_fs, fs_from = merge_fs(file_fs, None if fs_opt is None else fs_opt / spf, hea, label)
    fs = check_rate(frame_fs * spf, hea, f"channel {names[ch] or ch} rate ({spf} x frame rate)"
                    if spf > 1 else label)
    n_frames = header.sig_len
    if n_frames is None:  # length not in the header: wfdb cannot read it in pieces
        raise _fail(hea, "record line has no 'number of samples' field",
                    "add it after the sampling frequency (the samples per signal)")
    n_frames = int(n_frames)
    if n_frames <= 0:
        raise _fail(hea, f"record line field 'number of samples' is {n_frames}: no samples")
    step = max(1, int(_CHECK_S * frame_fs))
    sample = UnitsSample(step * spf)
    for f0 in range(0, n_frames, step):  # past a flat or missing lead-in, to the signal
        sample.add(_read(base, ch, f0, min(n_frames, f0 + step)))
        if sample.full:
            break
    first = sample.values()
    _check_end(base, ch, n_frames, hea)
    _check_sum(base, header, ch, n_frames, hea)
    declared = unit_key((header.units or [None] * n_sig)[ch], hea, f"signal {ch} units")
    unit, unit_from = resolve_units(first, declared, units, hea, names[ch] or str(ch))

    def reader(block_n: int) -> Iterator[tuple[int, np.ndarray]]:
        step = max(1, block_n // spf)
        for f0 in range(0, n_frames, step):
            yield f0 * spf, _read(base, ch, f0, min(n_frames, f0 + step))

    notes = [f"{spf} samples per frame: read at {fs:g} Hz"] if spf > 1 else []
    gains = _gain_check(base, header, names, int(min(n_frames, max(1, _CHECK_S * frame_fs))))
    if gains:
        notes.append(gains)
    rec = Recording(shown, "WFDB", names[ch] or f"channel {ch}", ch, fs,
                    "header" if fs_from == label else fs_from, n_frames * spf, unit, unit_from,
                    reader, notes)
    rec.origin = _base_time(header)
    return rec


def _base_time(header: Any) -> str | None:
    """The record line's base date and time (ISO 8601), or its base time alone; None if
    the header gives neither."""
    when = getattr(header, "base_datetime", None)
    if when is not None:
        return when.isoformat()
    t = getattr(header, "base_time", None)
    return t.isoformat() if t is not None else None


def _open_multi(base: Path, hea: Path, header: Any, file_fs: float | None, lead: str | None,
                channel: int | None, fs_opt: float | None, units: str | None) -> Recording:
    """A multi-segment record: channel by name (variable layout) or index (fixed layout)."""
    segs = [(str(n), int(ln)) for n, ln in zip(header.seg_name, header.seg_len, strict=False)]
    label = "record line field 'sampling frequency'"
    fs, fs_from = merge_fs(file_fs, fs_opt, hea, label)
    fs = check_rate(fs, hea, label)
    variable = segs and segs[0][1] == 0 and segs[0][0] != "~"
    layout_name = segs[0][0] if variable else next((n for n, _ in segs if n != "~"), None)
    if layout_name is None:
        raise _fail(hea, "every segment is null ('~'): no samples")
    layout = _rdheader(base.parent / layout_name)
    names = _names(layout, int(layout.n_sig or 0))
    if not names:
        raise _fail(base.parent / f"{layout_name}.hea", "layout has no signals")
    ch = pick_channel(names, lead, channel, hea)
    want = names[ch]
    data_segs = segs[1:] if variable else segs
    plan: list[tuple[Path | None, int, int]] = []  # (segment base or None = gap, channel, n)
    first: np.ndarray | None = None
    declared: str | None = None
    for name, n in data_segs:
        if name == "~" or n == 0:
            plan.append((None, 0, n))
            continue
        seg_base = base.parent / name
        sh = _rdheader(seg_base)
        seg_names = _names(sh, int(sh.n_sig or 0))
        k = ch if not variable else (seg_names.index(want) if want and want in seg_names
                                     else -1)
        if not variable and k >= len(seg_names):
            raise _fail(seg_base.with_suffix(".hea"), f"segment has {len(seg_names)} signals; "
                                                      f"channel {ch} is missing")
        if k < 0:
            plan.append((None, 0, n))
            continue
        spf = int((sh.samps_per_frame or [1] * len(seg_names))[k] or 1)
        if spf != 1 or (sh.fs and abs(float(sh.fs) - fs) > 1e-9 * fs):
            raise _fail(seg_base.with_suffix(".hea"),
                        f"segment rate {float(sh.fs or 0) * spf:g} Hz differs from the "
                        f"record's {fs:g} Hz")
        seg_unit = unit_key((sh.units or [None] * len(seg_names))[k], seg_base,
                            f"signal {k} units")
        _check_end(seg_base, k, n, seg_base.with_suffix(".hea"))
        _check_sum(seg_base, sh, k, n, seg_base.with_suffix(".hea"))
        if first is None:
            first, declared = _read(seg_base, k, 0, min(n, int(_CHECK_S * fs))), seg_unit
        elif seg_unit != declared:
            raise _fail(seg_base.with_suffix(".hea"), f"signal {k} units {seg_unit!r} differ "
                                                      f"from the first segment's {declared!r}")
        plan.append((seg_base, k, n))
    if first is None:
        raise _fail(hea, f"no segment holds channel {want or ch!r}")
    unit, unit_from = resolve_units(first, declared, units, hea, want or str(ch))
    total = sum(n for _, _, n in plan)

    def reader(block_n: int) -> Iterator[tuple[int, np.ndarray]]:
        offset = 0
        for seg_base, k, n in plan:
            if seg_base is not None:
                for s in range(0, n, block_n):
                    yield offset + s, _read(seg_base, k, s, min(n, s + block_n))
            offset += n

    gaps = sum(1 for b, _, _ in plan if b is None)
    notes = [f"multi-segment record: {len(plan)} segments, {gaps} without data (gaps)"]
    return Recording(base, "WFDB", want or f"channel {ch}", ch, fs,
                     "header" if fs_from == label else fs_from, total, unit, unit_from, reader,
                     notes)


__all__ = ["open_wfdb", "RecordingInputError"]


def _gain_check(base: Path, header: Any, names: list[str], n: int) -> str | None:
    """A warning when the header's gains break Einthoven (III = II - I) on the first ``n``
    frames while the raw sample values keep it: the gains are wrong (LUDB's are) and so is
    the physical amplitude of Lead I."""
    import wfdb

    keys = [nm.strip().lower() for nm in names]
    if not {"i", "ii", "iii"} <= set(keys) or any(
            int(x or 1) != 1 for x in (header.samps_per_frame or [])):
        return None
    chans = [keys.index(k) for k in ("i", "ii", "iii")]
    try:
        rec = wfdb.rdrecord(str(base), channels=chans, sampto=n, physical=False)
        d = np.asarray(rec.d_signal, dtype=np.float64)
        gain = np.asarray(rec.adc_gain, dtype=np.float64)
        zero = np.asarray(rec.baseline, dtype=np.float64)
    except Exception:  # noqa: BLE001 - the channel read itself reports real read errors
        return None
    if len(d) < 2 or not np.all(gain > 0):
        return None
    p = (d - zero) / gain
    scale = float(np.sqrt(np.mean(p[:, 2] ** 2)))
    if scale == 0.0:
        return None
    off = float(np.sqrt(np.mean((p[:, 2] - (p[:, 1] - p[:, 0])) ** 2))) / scale
    raw_ok = float(np.max(np.abs((d[:, 2] - zero[2]) - (d[:, 1] - zero[1]) + (d[:, 0] - zero[0])
                               ))) <= 1.0
    if off <= 0.1 or not raw_ok:
        return None
    return (f"header gains break Einthoven: III differs from II - I by {off:.0%} in physical "
            f"units while the raw values agree (gains I {gain[0]:g}, II {gain[1]:g}, III "
            f"{gain[2]:g}): Lead I's amplitude is probably wrong (LUDB's headers are)")
