"""Durable ingest through `POST /v1/events`: a `trackd serve` process (API and ingest in one,
on the in-process bus and SQLite, as `make run` serves) fed by 4 concurrent HTTP clients
posting 500-event batches of the workload mix (benchmarks/workload.py, the same events as the
ingest section) until every batch is answered. On the in-process bus a 202 comes only once
every event of the batch is committed, so the last answer is the last commit.

`python -m benchmarks.http_ingest --tasks N` runs it alone, with Celery's `State` on the same
events for the ratio, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks import workload
from benchmarks.fleet import cpu_seconds
from benchmarks.trackers import Child, trackd_executable

CLIENTS = 4
BATCH = 500
TENANT = "bench"


@dataclass
class HttpIngestResult:
    events: int
    batches: int
    clients: int
    seconds: float
    # CPU seconds the server process spent meanwhile (API, ingest and SQLite: one process).
    server_cpu_seconds: float
    folded: int  # events the server's ingest folded into records (its /metrics counters)
    duplicates: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def events_per_server_cpu_s(self) -> float:
        return self.events / self.server_cpu_seconds if self.server_cpu_seconds else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "events_per_s": self.events_per_s,
            "events_per_server_cpu_s": self.events_per_server_cpu_s,
        }


def request_bodies(tasks: int, batch: int = BATCH) -> tuple[list[bytes], int]:
    """The mix as `{"events": [...]}` bodies of `batch` events each, and the event count."""
    bodies = [body for _, _, body in workload.build(tasks)]
    out = [
        b'{"events":[' + b",".join(bodies[i : i + batch]) + b"]}"
        for i in range(0, len(bodies), batch)
    ]
    return out, len(bodies)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKD_")}
    env["TRACKD_DATABASE_URL"] = database_url  # and the in-process bus, the default
    env["TRACKD_LOG_LEVEL"] = "INFO"  # uvicorn says when it listens
    return env


def _counter(metrics: str, name: str) -> int:
    for line in metrics.splitlines():
        if line.startswith(f"{name}_total "):
            return int(float(line.split()[1]))
    return 0


async def _post_all(url: str, token: str, bodies: list[bytes], clients: int) -> None:
    batches: Iterator[bytes] = iter(bodies)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:
            for body in batches:  # one shared iterator: each batch goes out once
                response = await http.post("/v1/events", content=body)
                if response.status_code != 202:
                    raise RuntimeError(
                        f"POST /v1/events answered {response.status_code}: {response.text[:300]}"
                    )

    await asyncio.gather(*(client() for _ in range(clients)))


def measure(tasks: int, clients: int = CLIENTS) -> HttpIngestResult:
    """Serve trackd on a new SQLite database, post the mix, stop the server."""
    bodies, events = request_bodies(tasks)
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(f"sqlite+aiosqlite:///{tmp}/http.db")
        made = subprocess.run(
            [trackd_executable(), "token", "create", "--tenant", TENANT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        token = made.stdout.strip().splitlines()[-1]
        return asyncio.run(_measure(Path(tmp), env, token, bodies, events, clients))


async def _measure(
    tmp: Path, env: dict[str, str], token: str, bodies: list[bytes], events: int, clients: int
) -> HttpIngestResult:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    serve = [trackd_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = Child("trackd serve", serve, env, tmp / "server.log")
    try:
        await server.started("Uvicorn running")
        cpu_started = cpu_seconds(server.proc.pid)
        started = time.perf_counter()
        await _post_all(url, token, bodies, clients)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(server.proc.pid) - cpu_started
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics", timeout=30)).text
    finally:
        await server.stop()
    folded = _counter(metrics, "trackd_ingest_events_folded")
    duplicates = _counter(metrics, "trackd_ingest_events_duplicate")
    if folded + duplicates != events:
        raise RuntimeError(
            f"the run was not clean: {events} events posted, {folded} folded and "
            f"{duplicates} duplicates counted by the server"
        )
    return HttpIngestResult(
        events=events,
        batches=len(bodies),
        clients=clients,
        seconds=seconds,
        server_cpu_seconds=cpu,
        folded=folded,
        duplicates=duplicates,
    )


def main() -> None:
    from benchmarks import peer_celery

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000, help="tasks in the mix (9 events each)")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="concurrent HTTP clients")
    args = parser.parse_args()
    result = measure(args.tasks, args.clients).as_dict()
    celery = peer_celery.celery_stream(args.tasks)
    peer = len(celery) / peer_celery.run_celery(celery)
    ratio = result["events_per_s"] / peer
    print(json.dumps({**result, "celery_events_per_s": peer, "ratio_to_celery": ratio}))


if __name__ == "__main__":
    main()
