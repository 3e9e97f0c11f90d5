"""Running `trackd` as a subprocess: plain helpers shared by the acceptance tests.

The fixtures built on them (databases, Redis prefixes, started processes killed afterwards,
a served trackd) are in conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from trackd.bus.redis.layout import RedisStreamsOptions, stream_name
from trackd.domain.events import TRACKED_TOPICS
from trackd.ingest.consumer import INGEST_GROUP

WITHIN = 60.0  # seconds: for a process to start, or for what it does to be seen
STOP_TIMEOUT_S = 20.0
# uvicorn shuts down gracefully, then re-raises the signal it caught, so a server ends
# "killed by SIGTERM" after a clean shutdown; 0 is fine too.
SERVED = (0, -signal.SIGTERM)


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


def trackd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`trackd ARGS` to its end, output captured as text (`clean_env()` by default)."""
    return subprocess.run(
        [trackd_executable(), *args],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def benchmark(*args: str, timeout: float = 200) -> list[dict[str, Any]]:
    """`python -m benchmarks.NAME ARGS` from the repository (benchmarks/ is its package, not
    the installed project's) to its end; the JSON lines it printed."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=Path(__file__).resolve().parents[2],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def create_token(
    tenant: str,
    role: str = "service",
    *,
    database: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """A new token from `trackd token create`, on `database` or the one `env` names."""
    where = ["--database-url", database] if database else []
    done = trackd("token", "create", "--tenant", tenant, "--role", role, *where, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def bus_url(redis_url: str, prefix: str) -> str:
    """A Redis bus under `prefix`, with short leases so that processes share partitions out
    quickly."""
    return f"{redis_url}?prefix={prefix}&lease_ttl=3&rebalance_interval=0.2"


def recent_start() -> datetime:
    """Half an hour ago, in whole seconds: inside every metrics period."""
    return (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)


@dataclass
class Process:
    """A `trackd` subprocess whose output goes to `log`."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    terminated: bool = False

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_running(self) -> None:
        if self.popen.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")

    def terminate(self) -> None:
        """SIGTERM, once: a second one, arriving while the first is being handled, would
        end the process the default way."""
        if not self.terminated and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit code."""
        self.terminate()
        try:
            return self.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"{self.name} ignored SIGTERM for {STOP_TIMEOUT_S} s:\n{self.output()}")

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def start(
    name: str,
    args: list[str],
    logs: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    """`trackd ARGS` in the background, its output in `logs/NAME.log`."""
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [trackd_executable(), *args],
            env=env or clean_env(),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Process(name, popen, log)


Spawn = Callable[[str, list[str]], Process]  # the `spawn` fixture
StartApi = Callable[[str, str], Awaitable[tuple[Process, str]]]  # the `start_api` fixture


def wait_healthy(url: str, process: Process, within: float = WITHIN) -> None:
    """Until `url`/health answers 200; fails if `process` exits or `within` s pass."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        process.check_running()
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"{process.name} was not healthy within {within} s:\n{process.output()}")


def assert_stopped_cleanly(process: Process, codes: tuple[int, ...] = (0,)) -> None:
    """SIGTERM; the process ends with one of `codes` and without a traceback."""
    code = process.stop()
    output = process.output()
    assert code in codes, output
    assert "Traceback" not in output, output


# -- `trackd serve` -------------------------------------------------------------------------


def trackd_env(database: Path) -> dict[str, str]:
    """`clean_env()` with TRACKD_DATABASE_URL naming a SQLite file."""
    return clean_env(TRACKD_DATABASE_URL=f"sqlite+aiosqlite:///{database}")


@dataclass
class Server:
    """A running `trackd serve` and tokens by name for it."""

    url: str
    process: Process
    tokens: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.process.output()


def start_server(
    env: dict[str, str], logs: Path, tokens: dict[str, str], name: str = "serve"
) -> Server:
    """`trackd serve` on a free port with `env`, healthy."""
    port = free_port()
    process = start(name, ["serve", "--port", str(port)], logs, env=env)
    server = Server(f"http://127.0.0.1:{port}", process, tokens)
    wait_healthy(server.url, process)
    return server


def assert_server_stopped_cleanly(server: Server) -> None:
    assert_stopped_cleanly(server.process, SERVED)
    output = server.output()
    assert "Application shutdown complete" in output, output


async def eventually(ready: Callable[[], Awaitable[bool]], *running: Process) -> None:
    """Until `await ready()` is true, a tenth of a second apart; fails if one of `running`
    exits, and raises TimeoutError after WITHIN seconds."""
    async with asyncio.timeout(WITHIN):
        while True:
            for process in running:
                process.check_running()
            if await ready():
                return
            await asyncio.sleep(0.1)


# -- `trackd ingest` on Redis ---------------------------------------------------------------


async def unfinished(redis_url: str, prefix: str) -> int:
    """Streams whose entries the ingest group has not all been delivered and acknowledged."""
    client = Redis.from_url(redis_url)
    count = 0
    try:
        for topic in TRACKED_TOPICS:
            for p in range(RedisStreamsOptions().partitions):
                stream = stream_name(prefix, topic, p)
                if not await client.exists(stream):
                    continue
                last = (await client.xinfo_stream(stream))["last-generated-id"]
                groups = {_text(g["name"]): g for g in await client.xinfo_groups(stream)}
                group = groups.get(INGEST_GROUP)
                if group is None or group["pending"] or group["last-delivered-id"] != last:
                    count += 1
    finally:
        await client.aclose()
    return count


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def wait_until_consumed(redis_url: str, prefix: str, processes: Sequence[Process]) -> None:
    """Until the ingest group has had every entry under `prefix` delivered and acknowledged."""

    async def consumed() -> bool:
        return await unfinished(redis_url, prefix) == 0

    await eventually(consumed, *processes)


def ingest_args(database: str, bus: str, name: str, *extra: str) -> list[str]:
    return [
        "ingest",
        "--database-url",
        database,
        "--bus-url",
        bus,
        "--consumer-name",
        name,
        *extra,
    ]
