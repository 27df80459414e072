"""Open report.html in headless Chromium: no console errors, every image decodes, screenshot.

Skipped where no Chromium is installed (``apt-get install chromium``). Set
``MISTRUST_SCREENSHOT_DIR`` to keep the screenshot (e.g. as a CI artifact).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest
from fake_run import shared_report

CONSOLE_ERROR = re.compile(r"uncaught|error|failed|refused|not allowed", re.IGNORECASE)


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


BROWSER = chromium()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium installed (apt-get install chromium) to open the report in a browser",
)


def open_page(page: Path, profile: Path, *extra: str) -> tuple[str, list[str]]:
    """Load ``page`` headless; return ``(stdout, console lines that look like errors)``."""
    cmd = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    return proc.stdout, [ln for ln in console if CONSOLE_ERROR.search(ln)]


def test_the_checks_catch_a_broken_page(tmp_path: Path) -> None:
    # the detectors must fire on a page with a broken image and a script error
    bad = tmp_path / "bad.html"
    template = (resources.files("mistrust.present.report") / "template.html").read_text()
    script = template[template.index("<script>") : template.index("</script>") + 9]
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
        f"<script>undefinedFunction();</script>{script}</body></html>"
    )
    dom, errors = open_page(bad, tmp_path / "profile", "--dump-dom")
    assert 'data-images-ok="false"' in dom
    assert any("Uncaught" in ln for ln in errors)


def test_report_renders_without_errors(tmp_path_factory: pytest.TempPathFactory) -> None:
    run = shared_report(tmp_path_factory.mktemp("shared"))
    page = run / "report.html"
    n_images = page.read_text().count("<img ")
    profile = tmp_path_factory.mktemp("profile")
    dom, errors = open_page(page, profile, "--dump-dom")
    assert errors == []
    assert f'data-images="{n_images}"' in dom
    assert 'data-images-ok="true"' in dom

    shot = profile.parent / "report.png"
    _, errors = open_page(page, profile, f"--screenshot={shot}", "--window-size=1400,2000")
    assert errors == []
    assert shot.is_file() and shot.stat().st_size > 50_000
    if keep := os.environ.get("MISTRUST_SCREENSHOT_DIR"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")


#: the report's first screen at a laptop's resolution: the summary must end above its fold
SCREEN = (1400, 1000)
PROBE = (
    '<script>window.addEventListener("load", function () {'
    ' var s = document.getElementById("summary").getBoundingClientRect();'
    ' document.body.setAttribute("data-summary-bottom", String(Math.ceil(s.bottom + scrollY)));'
    "});</script></body>"
)


def test_the_summary_fits_one_screen(tmp_path: Path) -> None:
    """On a run of the default preset's shape (6 attacks x 8 sets, 5 variants; the rows of
    ``mistrust.audit`` with every check): headline, verdict matrix, grouped reasons and
    the at-a-glance table end within 1400 x 1000."""
    from fake_run import make_audited_run

    from mistrust.present.report import build_report

    page = build_report(make_audited_run(tmp_path / "run"))
    html = page.read_text()
    assert html.count('<td class="v-') == 6 * 8  # the matrix: every attack on every set
    assert html.count('<ul class="reasons"><li>') == 1 and html.count("</li>") >= 3
    probe = page.with_name("probe.html")
    probe.write_text(html.replace("</body>", PROBE))
    dom, errors = open_page(
        probe, tmp_path / "profile", "--dump-dom", f"--window-size={SCREEN[0]},{SCREEN[1]}"
    )
    assert errors == []
    bottom = int(re.search(r'data-summary-bottom="(\d+)"', dom).group(1))
    assert 300 < bottom <= SCREEN[1], bottom
