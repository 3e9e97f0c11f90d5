"""What a `trackd` command loads before it runs: scipy's statistics take about half a second to
import, and only the observer's analysis uses them, so they load on its first use."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_starts_without_loading_scipy() -> None:
    code = (
        "import sys, trackd.app, trackd.cli.main; "
        "print(sorted(m for m in sys.modules if 'scipy' in m))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_analysis_still_finds_scipy_when_it_runs() -> None:
    code = (
        "import sys, numpy as np; from trackd.domain.observer import statistics as st; "
        "print(round(st.spearman(np.arange(5.0), np.arange(5.0)), 3), 'scipy.stats' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1.0", "True"]
