"""The documentation builds as `make lint` builds it, and the README's links lead somewhere.

`mkdocs build --strict` fails on a link to a missing page or heading, so a page renamed or a
section moved without its links shows up here as well as in the lint.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_site_builds_strictly(tmp_path: Path) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "architecture.html").is_file()
    reference = (tmp_path / "reference" / "sdk.html").read_text()
    assert "TrackerBufferFull" in reference  # generated from the docstrings


def test_the_readme_links_to_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links to the docs pages"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []


def test_the_readme_keeps_the_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run    # creates .venv, installs trackd" in readme
    assert "make test   # installs everything, starts a real PostgreSQL" in readme
