"""Choosing the bus by URL: lazy backends, the missing extra named, the in-process test."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trackd.bus.memory import MemoryBus
from trackd.bus.urls import from_url, in_process
from trackd.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "extra", "package"),
    [("redis://127.0.0.1:6379/0", "redis", "redis"), ("nats://127.0.0.1:4222", "nats", "nats")],
)
def test_a_missing_optional_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str, extra: str, package: str
) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] == package or name.startswith(f"trackd.bus.{extra}"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # what an import of a missing package does
    with pytest.raises(ConfigError, match=rf"pip install 'trackd\[{extra}\]'"):
        from_url(url)


def test_the_memory_bus_imports_no_other_backend() -> None:
    code = (
        "import sys; from trackd.bus import from_url; from_url('memory://'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'nats')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_in_process_is_the_memory_scheme_only() -> None:
    assert isinstance(from_url("memory://"), MemoryBus)
    assert in_process("memory://") and in_process("MEMORY://x")
    assert not in_process("redis://127.0.0.1:6379/0")
    assert not in_process("nats://memory:4222")
    assert not in_process("memory")  # not a URL
    with pytest.raises(ConfigError, match="unsupported bus URL"):
        from_url("kafka://x")
