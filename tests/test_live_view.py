"""`ecg12 stream --view`: the live page in a real browser (Debian chromium driven by
playwright), and the token rule off loopback.

The browser test skips with a reason when chromium or playwright is missing locally; CI
(`.ci/run`) installs both, and under CI=true a skip here fails the session (conftest).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
BROWSER_SKIP = "browser test needs Debian chromium (/usr/bin/chromium) and playwright " \
               "(apt-get install chromium; pip install playwright)"


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """Start `ecg12 stream ... --view`; returns (process, URL printed, stderr lines)."""
    cmd = [sys.executable, "-m", "edge.cli", "stream", "--view", "--view-port", "0",
           "--out", str(tmp_path / "out"), "--quiet", *args]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "live view:" in line:
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(60):
        proc.kill()
        pytest.fail("ecg12 stream --view printed no URL: " + "".join(lines)[-2000:])
    url = re.search(r"live view: (\S+)", "".join(lines)).group(1)  # type: ignore[union-attr]
    return proc, url, lines


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9


def _browser_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists()


@pytest.mark.needs_tools
@pytest.mark.skipif(not _browser_available(), reason=BROWSER_SKIP)
def test_live_page_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    # 4x real time, 250 Hz, 70 bpm; ~5 % of 0.2 s chunks dropped -> gaps
    proc, url, lines = _start(tmp_path, "--source", "sim:?seed=3&hr=70&speed=4&drop=0.05")
    assert url.startswith("http://127.0.0.1:") and "token" not in url  # loopback: no token
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(url)
            page.wait_for_function("window.ecg12 && window.ecg12.samples > 0", timeout=40000)
            t1 = page.evaluate("window.ecg12.lastT")
            img1 = page.evaluate("document.getElementById('ecg').toDataURL()")
            page.wait_for_function(f"window.ecg12.lastT > {t1} + 1.0", timeout=20000)
            img2 = page.evaluate("document.getElementById('ecg').toDataURL()")
            assert img1 != img2, "the traces did not move"
            assert page.evaluate("window.ecg12.frames") > 10
            # a dropout in the simulator -> a gap flag on the page
            page.wait_for_selector("#flags li[data-kind='gap']", timeout=20000)
            # ... shown as it happens: before the reconstruction (a window late) gets there
            assert page.evaluate("window.ecg12.flags.some(f => f.kind === undefined && "
                                 "f.seenAtT < f.start_s)")
            # HR from Lead I (the simulator's 70 bpm), status and delay shown
            page.wait_for_function("document.getElementById('hr').textContent !== '--'",
                                   timeout=20000)
            hr = float(page.inner_text("#hr"))
            assert 60 <= hr <= 80
            assert page.inner_text("#conn") == "receiving"
            assert int(page.inner_text("#gaps")) >= 1
            page.wait_for_function(
                "!isNaN(parseFloat(document.getElementById('delay').textContent))",
                timeout=20000)
            delay = float(page.inner_text("#delay"))
            assert 0 <= delay < 30
            shot = tmp_path / "live.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20000
        keep = os.environ.get("ECG12_KEEP_SCREENSHOT")
        if keep:
            shutil.copy(shot, keep)
    finally:
        rc = _stop(proc)
    assert rc == 0, "".join(lines)[-2000:]
    assert (tmp_path / "out" / "summary.json").is_file()


def test_view_off_loopback_needs_the_token(tmp_path: Path) -> None:
    proc, url, lines = _start(tmp_path, "--view-host", "0.0.0.0", "--source",
                              "sim:?seed=1&speed=1")
    try:
        m = re.match(r"http://0\.0\.0\.0:(\d+)/\?token=([\w-]{16,})$", url)
        assert m, url
        base = f"http://127.0.0.1:{m.group(1)}/"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base, timeout=10)
        assert err.value.code == 403
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "events?token=wrong", timeout=10)
        page = urllib.request.urlopen(f"{base}?token={m.group(2)}", timeout=10).read()
        assert b"<canvas" in page and b"app.js" in page
        js = urllib.request.urlopen(f"{base}app.js?token={m.group(2)}", timeout=10).read()
        assert b"EventSource" in js and b"http" not in js  # nothing fetched from elsewhere
    finally:
        _stop(proc)


def test_view_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    port = s.getsockname()[1]
    try:
        r = subprocess.run([sys.executable, "-m", "edge.cli", "stream", "--view", "--view-port",
                            str(port), "--source", "sim:?duration=10&speed=0", "--out",
                            str(tmp_path / "o"), "--quiet"], cwd=REPO, capture_output=True,
                           text=True, timeout=120)
    finally:
        s.close()
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()[-1]
    assert f"127.0.0.1:{port}" in err and "Traceback" not in r.stderr


def test_page_serves_without_time_passing() -> None:
    """The shipped page and script are package data (no CDN)."""
    from importlib import resources

    html = resources.files("edge.live").joinpath("static", "index.html").read_text()
    assert '<script src="app.js">' in html and "http" not in html.replace("http-equiv", "")
