"""Generated files included in the README between ``<!-- include: PATH -->`` and
``<!-- include:end -->`` markers: ``python -m benchmarks.readme`` copies each file in again
(``tests/test_readme.py`` fails while a block differs from its file)."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks import REPO

README = REPO / "README.md"
BLOCK = re.compile(r"(<!-- include: (?P<path>[^ ]+) -->\n)(?P<body>.*?)(<!-- include:end -->)",
                   re.S)


def blocks(text: str) -> list[tuple[str, str]]:
    """(path, body) of every include block of ``text``."""
    return [(m["path"], m["body"]) for m in BLOCK.finditer(text)]


def refresh(readme: Path = README) -> list[str]:
    """Rewrite every include block of ``readme`` from its file; returns the paths."""
    text = readme.read_text()
    done: list[str] = []

    def repl(m: re.Match) -> str:
        done.append(m["path"])
        body = (REPO / m["path"]).read_text()
        return m.group(1) + body + ("" if body.endswith("\n") else "\n") + m.group(4)

    readme.write_text(BLOCK.sub(repl, text))
    return done


if __name__ == "__main__":
    print("refreshed: " + ", ".join(refresh()))
