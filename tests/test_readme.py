"""The README's Python snippets run as written, and its commands name real options."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), re.S)


def test_python_snippets_run() -> None:
    blocks = _blocks("python")
    assert blocks, "the README has no python block"
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})  # noqa: S102 - our own README


def test_no_uri_style_option_hints() -> None:
    text = README.read_text()
    assert "?fs=HZ" not in text and "?lead=I" not in text
    assert "ecg12 evaluate runs/" not in text  # the runs live in training/runs/


def test_included_generated_files_are_current() -> None:
    """Tables the README shows come from their generated files (python -m benchmarks.readme)."""
    from benchmarks.readme import blocks

    found = blocks(README.read_text())
    assert {p for p, _ in found} >= {"converters/variants.md", "benchmarks/results.md"}
    for path, body in found:
        assert body == (README.parent / path).read_text(), f"README block of {path} is stale"
