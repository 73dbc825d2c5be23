"""Shared fixtures. Tests that need the real corpora use `data_root` (or the needs_data mark).

Outside CI they skip with a clear reason when the corpora are absent (a fresh clone). Under
CI=true nothing that needs the data may be skipped: a missing data folder fails those tests,
and any skip of a data test turns the session's exit status into a failure (so the README's
plain test command is also CI's check).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"


def _data_root() -> Path:
    env = os.environ.get("ECG12_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


DATA_ROOT = _data_root()
HAVE_DATA = (DATA_ROOT / "README.md").is_file()
SKIP_REASON = (
    f"real ECG corpora not found at {DATA_ROOT} (set ECG12_DATA or place shared/data beside "
    "the repo)"
)
_DATA_SKIPS: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_DATA:
        return
    for item in items:
        if "needs_data" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and ("needs_data" in report.keywords or "needs_tools" in report.keywords
                           or "corpora" in str(report.longrepr)):
        _DATA_SKIPS.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _DATA_SKIPS:
        print(f"\nCI: {len(_DATA_SKIPS)} test(s) needing {DATA_ROOT} (or chromium/playwright/"
              "mosquitto/mne-lsl) were skipped; CI must run them:\n  " + "\n  ".join(_DATA_SKIPS))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The corpora folder; skips (fails in CI) when absent."""
    if not HAVE_DATA:
        if IN_CI:
            pytest.fail(SKIP_REASON + " — CI must have the data")
        pytest.skip(SKIP_REASON)
    return DATA_ROOT
