"""`load_corpus` / `load_all`: run a corpus reader, check every record, report counts, cache."""

from __future__ import annotations

import hashlib
import os
import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress

from . import chapman, cinc, ludb, ptbxl
from .checks import (
    EINTHOVEN_MAX_REL_ERR,
    EINTHOVEN_MAX_REL_ERR_BY_SOURCE,
    check_signal,
    einthoven_error,
)
from .record import DataError, Recording, RecordRejected

REPO = Path(__file__).resolve().parents[2]
CORPORA: tuple[str, ...] = ("chapman", "ptbxl", "ludb", "cinc2021")


def data_root() -> Path:
    """`$ECG12_DATA`, else `../shared/data` beside the repo."""
    env = os.environ.get("ECG12_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def cache_dir() -> Path:
    """`$ECG12_CACHE`, else `runs/cache` in the repo (gitignored)."""
    env = os.environ.get("ECG12_CACHE")
    return Path(env) if env else REPO / "runs" / "cache"


@dataclass
class LoadReport:
    """Outcome of loading one corpus."""

    name: str
    root: Path
    records: list[Recording] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    found: int = 0
    seconds: float = 0.0
    from_cache: bool = False

    @property
    def loaded(self) -> int:
        return len(self.records)

    def rejected_by_reason(self) -> Counter[str]:
        """Counts per reason category (the text before the first ':')."""
        return Counter(reason.split(":", 1)[0] for _, reason in self.rejected)

    def einthoven_errors(self) -> list[float]:
        return [float(r.metadata.get("einthoven_rel_err", 0.0)) for r in self.records]


def corpus_path(name: str, root: Path) -> Path:
    """Folder of corpus `name` under the data root."""
    paths = {"chapman": [root / "chapman"], "ptbxl": [root / "ptbxl"], "ludb": [root / "ludb"],
             "cinc2021": [root / "cinc2021", root / "others" / "cinc2021_torch_ecg"]}
    if name not in paths:
        raise DataError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    for p in paths[name]:
        if p.is_dir():
            return p
    looked = [str(p) for p in paths[name]]
    raise DataError(f"corpus {name!r}: folder not found (looked for {looked})")


def _reader(name: str, path: Path, root: Path) -> tuple[int, Callable[[], Iterator[Any]]]:
    if name == "chapman":
        return len(chapman.signal_files(path)), lambda: chapman.iter_records(path)
    if name == "ptbxl":
        return len(ptbxl.record_paths(path)), lambda: ptbxl.iter_records(path)
    if name == "ludb":
        return len(ludb.record_paths(path)), lambda: ludb.iter_records(path)
    ptb = root / "ptbxl"
    return len(list(path.rglob("*.hea"))), lambda: cinc.iter_records(path, ptb)


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    for src in sorted(Path(__file__).parent.glob("*.py")):
        if src.name not in ("splits.py", "summary.py"):  # not part of what is cached
            h.update(src.read_bytes())
    for p in sorted(path.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def load_corpus(name: str, root: Path | None = None, progress: bool = True, *,
                limit: int | None = None, cache: bool = True) -> LoadReport:
    """Load and check every record of corpus `name`; rejected records are listed with reasons.

    `limit` stops after that many records found (tests). With `cache`, a full load is pickled
    under `cache_dir()`, keyed by the corpus files and this package's source.
    """
    root = Path(root) if root is not None else data_root()
    path = corpus_path(name, root)
    cache_file = None
    if cache and limit is None:
        cache_file = cache_dir() / f"{name}-{_fingerprint(path)}.pkl"
        if cache_file.is_file():
            t0 = time.perf_counter()
            with cache_file.open("rb") as f:
                report = pickle.load(f)
            report.from_cache, report.seconds = True, time.perf_counter() - t0
            return report
    t0 = time.perf_counter()
    total, make_iter = _reader(name, path, root)
    total = min(total, limit) if limit is not None else total
    report = LoadReport(name=name, root=path)
    seen: dict[str, str] = {}
    einthoven_max = EINTHOVEN_MAX_REL_ERR_BY_SOURCE.get(name, EINTHOVEN_MAX_REL_ERR)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"loading {name}", total=total)
        for item_name, item in make_iter():
            if limit is not None and report.found >= limit:
                break
            report.found += 1
            bar.advance(task)
            try:
                if isinstance(item, RecordRejected):
                    raise item
                check_signal(item.signal_mv, item.fs_hz, item.key, einthoven_max)
                digest = hashlib.sha256(item.signal_mv.tobytes()).hexdigest()
                if digest in seen:
                    raise RecordRejected(item.key, f"duplicate: identical signal to {seen[digest]}")
                seen[digest] = item.key
                item.metadata["einthoven_rel_err"] = round(einthoven_error(item.signal_mv), 4)
                report.records.append(item)
            except RecordRejected as exc:
                report.rejected.append((item_name, exc.reason))
    report.seconds = time.perf_counter() - t0
    if cache_file is not None:
        write_pickle_atomic(cache_file, report)
    return report


def write_pickle_atomic(path: Path, obj: Any) -> None:
    """Pickle `obj` to `path` via a temporary file, so a killed run leaves no torn cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)


def load_all(root: Path | None = None, progress: bool = True, cache: bool = True
             ) -> dict[str, LoadReport]:
    """`load_corpus` for every corpus in CORPORA."""
    return {name: load_corpus(name, root, progress, cache=cache) for name in CORPORA}
