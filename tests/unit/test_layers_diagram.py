"""The import graph drawn in docs/layers.md is the code's (scripts/layers_diagram.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "layers_diagram.py"


def test_the_drawn_import_graph_matches_the_code() -> None:
    done = _run("--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_fails_on_a_stale_picture(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "layers.md").read_text()
    stale = page.replace("    cli --> app\n", "", 1)
    assert stale != page, "the picture draws cli --> app"
    copy = tmp_path / "layers.md"
    copy.write_text(stale)
    done = _run("--check", "--page", str(copy))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "out of date" in done.stdout
    assert _run("--page", str(copy)).returncode == 0  # redrawn
    assert copy.read_text() == page


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
