"""The mutation check's CI subset: each mutation in ``benchmarks/mutations.py --short`` is
applied in a copy of the repository and must be killed by its tests (< 60 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_short_mutation_run_kills_every_mutation() -> None:
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "mutations.py"), "--short"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "kill rate: 6/6 = 100.0%" in r.stdout, r.stdout


def test_mutations_are_well_formed() -> None:
    """At least 30 mutations, unique ids, each old text exactly once in its file now."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import mutations
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    ms = mutations.MUTATIONS
    assert len(ms) >= 30 and len({m.id for m in ms}) == len(ms)
    assert set(mutations.SHORT) <= {m.id for m in ms}
    for m in ms:
        assert (REPO / m.path).read_text().count(m.old) == 1, m.id
        assert m.old != m.new and m.tests, m.id
