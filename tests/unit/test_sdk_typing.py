"""@tracked keeps the decorated function's signature for type checkers (mypy, strict)."""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """
from trackd.sdk import Tracker, tracked

t = Tracker("http://localhost:8000")

@tracked
def fetch(url: str, *, retries: int = 1) -> bytes:
    return b""

@tracked(name="index.build", tracker=t, max_attempts=3)
async def build(paths: list[str]) -> int:
    return len(paths)

reveal_type(fetch)
reveal_type(build)
fetch(42)
"""


def test_the_wrapped_signature_survives_bare_and_with_arguments(tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    # The project's settings and cache: a warm cache (from `make lint`) keeps this fast.
    stdout, stderr, _ = api.run(
        [
            str(snippet),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
        ]
    )
    assert not stderr, stderr
    revealed = re.findall(r'Revealed type is "(.*)"', stdout)
    assert revealed == [
        "def (url: str, *, retries: int =) -> bytes",
        "def (paths: list[str]) -> typing.Coroutine[Any, Any, int]",
    ], stdout
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, stdout
    assert 'Argument 1 to "fetch" has incompatible type "int"; expected "str"' in errors[0]
