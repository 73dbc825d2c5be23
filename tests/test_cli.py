"""The ecg12 command line on a gateway (base) install: workstation commands say what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_without_tensorflow(*args: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import sys
        for name in ("tensorflow", "keras", "tf_keras"):
            sys.modules[name] = None
        from edge.cli import main
        main({list(args)!r})
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_train_without_the_train_extra_names_the_fix() -> None:
    res = run_without_tensorflow("train", "training/configs/tiny.json", "--out", "/tmp/never")
    assert res.returncode == 1
    assert "'ecg12 train' needs" in res.stderr and "Traceback" not in res.stderr
    assert "pip install -e '.[train]'" in res.stderr  # from the checkout, not a registry
    assert len(res.stderr.strip().splitlines()) == 1


def test_help_lists_all_commands_without_tensorflow() -> None:
    res = run_without_tensorflow("--help")
    assert res.returncode == 0, res.stderr
    for name in ("stream", "reconstruct", "demo", "bench", "train", "evaluate", "convert",
                 "data", "device"):
        assert f"  {name} " in res.stdout
