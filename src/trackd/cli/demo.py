"""`trackd demo`: serve trackd over a simulated multi-agent workload.

The plans (`trackd.testing_workload`) ran over the last hour: three kinds of plans, with a task
retried, a task that fails for good, a watchdog's contradiction, and events delivered late or
twice. Everything goes through the bus the way producers publish it.

With --live a new plan starts every ~10 s and its events are published as their time comes.

Cosmic tracking runs too: space weather from NOAA-shaped payloads served by a local fake (its
times moved to now; nothing is fetched from the internet) and the Moon computed locally, each
polled at once and then hourly by the demo's own scheduler and worker. A demo user with a
natal chart has a token of their own: their transits are real, computed for now.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shlex
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from trackd.bus.base import Bus
from trackd.bus.urls import in_process
from trackd.cli.common import fail, load_settings, run, setup_logging
from trackd.cli.demo_observer import demo_observer
from trackd.cli.serving import serve_runtime
from trackd.demo_feeds import noaa_app
from trackd.domain.access import Role
from trackd.ingest import intake
from trackd.modules import natal, transits
from trackd.modules.tracking import ensure_schedules
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.migrate import upgrade
from trackd.store.repos import tokens
from trackd.testing import Envelope
from trackd.testing_server import LocalServer
from trackd.testing_workload import TWIST_NOTES, SimulatedPlan, Twist, Workload

TENANT = "default"
DEMO_DATABASE = "trackd-demo.db"
SEED = 2026
LIVE_EVERY_S = 10.0
LIVE_PACE = 0.25  # live plans run at a quarter of the seeded plans' durations
HISTORY = timedelta(hours=1)
# The demo user and their birth: Paris, noon local time on 1 May 1990.
DEMO_USER = "demo"
DEMO_BIRTH = datetime(1990, 5, 1, 12, 0)
DEMO_ZONE = "Europe/Paris"
DEMO_PLACE = (48.85, 2.35)
PUBLISH_CHUNK = 100


def _chunks(items: list[Envelope], size: int) -> Iterator[list[Envelope]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def publish(bus: Bus, events: list[Envelope]) -> None:
    """Publish as a producer would; on the memory bus this returns once they are stored."""
    ok, refused = intake.check(events, TENANT)
    if refused:  # the simulation wrote a bad event: a bug in this file
        raise RuntimeError(f"demo event refused: {refused[0].reason}")
    await intake.publish(bus, ok)


async def seed(runtime: Runtime, events: list[Envelope]) -> None:
    """Fold the past: a burst consumer stores what is published, then steps aside for serve."""
    if runtime.ingest is None:
        raise RuntimeError("the demo needs a runtime that ingests")
    consumer = asyncio.create_task(runtime.ingest.run(burst=True))
    try:
        for chunk in _chunks(events, PUBLISH_CHUNK):
            await publish(runtime.bus, chunk)
    finally:
        await consumer


async def _live(bus: Bus, workload: Workload) -> None:
    """Start a plan every LIVE_EVERY_S seconds and deliver events as their time comes."""
    loop = asyncio.get_running_loop()
    next_plan = loop.time()
    while True:
        if loop.time() >= next_plan:
            workload.add_plan(datetime.now(UTC), pace=LIVE_PACE, remember=False)
            next_plan += LIVE_EVERY_S
        due = workload.due(datetime.now(UTC))
        if due:
            await publish(bus, due)
        await asyncio.sleep(0.5)


def _plan_line(plan: SimulatedPlan, now: datetime) -> str:
    if plan.ends_at is not None and plan.ends_at > now:
        status = "running"
    else:
        status = "failed" if plan.twist is Twist.FAIL else "completed"
    note = TWIST_NOTES[plan.twist]
    return f"  {plan.plan_id:<22} {status:<10} {note}".rstrip()


def trackd_command() -> str:
    """How to run this very trackd from a shell, as a user can paste it.

    `make run` starts `.venv/bin/trackd`, which is not on the PATH unless the virtualenv is
    activated, so a bare `trackd` would be "command not found": the running executable's
    absolute path is given unless `trackd` on the PATH is that same file.
    """
    script = Path(sys.argv[0])
    on_path = shutil.which("trackd")
    if script.is_file() and os.access(script, os.X_OK) and script.suffix != ".py":
        if on_path is not None and os.path.samefile(on_path, script):
            return "trackd"
        return shlex.quote(str(script.absolute()))
    # Started some other way (python -c, a test runner): the script beside this Python.
    return "trackd" if on_path else shlex.quote(str(Path(sys.executable).parent / "trackd"))


def banner(
    settings: Settings,
    token: str,
    workload: Workload,
    published: int,
    *,
    live: bool,
    now: datetime,
    user_token: str,
) -> str:
    # A wildcard address is where the server listens, not an address a browser can open.
    wildcard = settings.host in ("0.0.0.0", "::", "")  # noqa: S104
    host = "127.0.0.1" if wildcard else settings.host
    base = f"http://{host}:{settings.port}"
    shown = workload.plans[0].plan_id
    failed = next((p.plan_id for p in workload.plans if p.twist is Twist.FAIL), shown)
    auth = f'-H "Authorization: Bearer {token}"'
    user_auth = f'-H "Authorization: Bearer {user_token}"'
    database = shlex.quote(settings.database_url)
    lines = [
        f"trackd demo: {len(workload.plans)} plans, {published} events over the last hour "
        f"(tenant {TENANT})",
        "",
        f"  API docs  {base}/docs",
        f"  token     {token}",
        f"  user      {user_token} (user {DEMO_USER}, with a natal chart)",
        f"  dashboard {base}/ui (log in with either token)",
        f"  database  {settings.database_url}",
        "",
        "Plans:",
        *(_plan_line(p, now) for p in workload.plans),
        "",
        "Try:",
        f"  curl {auth} {base}/v1/tracker/plans/{shown}",
        f"  curl {auth} {base}/v1/tracker/plans/{shown}/tasks",
        f"  curl {auth} {base}/v1/tracker/plans/{shown}/timeline",
        f"  {trackd_command()} plans show {failed} --database-url {database}",
        "",
        "Cosmic tracking (space weather from a local NOAA stand-in, the Moon computed):",
        f"  {base}/ui/cosmic (log in with the user token to see {DEMO_USER}'s transits)",
        f"  curl {auth} {base}/v1/tracking/all",
        f"  {trackd_command()} tracking show lunar --tenant {TENANT} --database-url {database}",
        f"Transits of {DEMO_USER} (born {DEMO_BIRTH:%Y-%m-%d %H:%M} {DEMO_ZONE}):",
        f"  curl {user_auth} {base}/v1/tracking/transits",
        f"  curl {user_auth} {base}/v1/tracking/upcoming",
        f"  {trackd_command()} tracking show transits --user {DEMO_USER} --tenant {TENANT} "
        f"--database-url {database}",
        f"Observer ({DEMO_USER}'s journal of mood and energy, one run):",
        f"  {base}/ui/observer",
        f"  curl {user_auth} {base}/v1/observer/findings",
        "",
        f"Live: a new plan every {LIVE_EVERY_S:.0f} s. Ctrl+C stops." if live else "Ctrl+C stops.",
    ]
    return "\n".join(lines)


def simulate(plans: int, now: datetime) -> tuple[Workload, list[Envelope]]:
    """The demo's workload (the same for every run) and the events that happened by `now`:
    earlier plans spread over the last hour and have ended; the last one is still running."""
    rng = random.Random(SEED)
    workload = Workload(rng)
    slot = (HISTORY - timedelta(minutes=12)) / max(1, plans - 1)
    for n in range(plans - 1):
        workload.add_plan(now - HISTORY + slot * (n + rng.uniform(0.0, 0.5)))
    workload.add_plan(now - timedelta(minutes=2))
    return workload, workload.happened(now)


async def demo_user(session: AsyncSession) -> str:
    """The demo user's token, their natal chart, and the tenant's daily transit refresh; the
    caller commits."""
    user_token = await tokens.create(session, TENANT, user_id=DEMO_USER, role=Role.USER)
    latitude, longitude = DEMO_PLACE
    await natal.set_chart(
        session,
        TENANT,
        DEMO_USER,
        birth=DEMO_BIRTH,
        timezone=DEMO_ZONE,
        latitude=latitude,
        longitude=longitude,
    )
    config = await transits.config_of(session, TENANT)
    await transits.ensure_refresh_schedule(session, TENANT, config)
    return user_token


async def _demo(settings: Settings, plans: int, live: bool) -> None:
    # The scheduler and a worker in this process poll the tracking modules' sources.
    runtime = Runtime.build(settings, schedule=True, poll=True)
    await upgrade(runtime.engine)
    async with runtime.sessions() as session, session.begin():
        token = await tokens.create(session, TENANT, user_id=None, role=Role.ADMIN)
        await ensure_schedules(session, TENANT)
        user_token = await demo_user(session)
    now = datetime.now(UTC)
    workload, past = simulate(plans, now)
    await seed(runtime, past)
    # About 2.5 s: the demo user's journal and one observer run for the dashboard.
    await demo_observer(runtime, TENANT, DEMO_USER, now)
    typer.echo(
        banner(settings, token, workload, len(past), live=live, now=now, user_token=user_token)
    )
    setup_logging(settings.log_level)

    feeder = asyncio.create_task(_live(runtime.bus, workload)) if live else None
    try:
        await serve_runtime(runtime, settings)
    finally:
        if feeder is not None:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await feeder


def _fresh_database(path: Path) -> str:
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


def demo(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            show_default=False,
            help=f"Where to keep the demo's data (default: ./{DEMO_DATABASE}, recreated each run).",
        ),
    ] = None,
    plans: Annotated[
        int,
        typer.Option(
            "--plans", min=1, max=200, help="How many plans to simulate over the last hour."
        ),
    ] = 6,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="Keep starting a new plan every ~10 s.")
    ] = True,
) -> None:
    """Serve trackd with a simulated multi-agent workload."""
    url = database_url or _fresh_database(Path.cwd() / DEMO_DATABASE)
    with LocalServer(noaa_app()) as noaa:
        # The NOAA stand-in listens on 127.0.0.1, which trackd refuses to fetch unless told.
        settings = load_settings(
            host=host,
            port=port,
            database_url=url,
            noaa_swpc_url=noaa.url,
            allow_private_fetch=True,
        )
        if not in_process(settings.bus_url):
            raise fail("the demo runs on the in-process bus; unset TRACKD_BUS_URL")
        run(_demo(settings, plans, live))
