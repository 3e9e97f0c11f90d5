"""Running `trackd` as a subprocess, shared by the acceptance tests."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import pytest


def trackd_executable() -> str:
    """The `trackd` script of the environment running the tests."""
    beside = Path(sys.executable).parent / "trackd"
    if beside.exists():
        return str(beside)
    found = shutil.which("trackd")
    if found is None:
        pytest.fail("no trackd executable; install the project (pip install -e '.[dev]')")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without TRACKD_ settings; rich tables wide enough not to wrap."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200", **extra)
    return env
