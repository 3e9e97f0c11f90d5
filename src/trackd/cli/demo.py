"""`trackd demo`: serve trackd over a simulated multi-agent workload.

Plans of three kinds (research, data pipeline, support triage) ran over the last hour: a planner
takes a goal, plans subtasks (pending), delegates them to worker agents that report progress and
results, waits, and completes the goal and the plan. Among them: a task that fails on attempt 1
and succeeds on attempt 2, a task that fails for good (so its plan fails), a watchdog that
fails a task which had just completed (an anomaly), and events delivered late or twice, as real
producers deliver them. Everything goes through the bus the way producers publish it.

With --live a new plan starts every ~10 s and its events are published as their time comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from trackd.bus.base import Bus
from trackd.cli.common import fail, load_settings, run, setup_logging
from trackd.domain.access import Role
from trackd.ingest import intake
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.store.migrate import upgrade
from trackd.store.repos import tokens
from trackd.testing import Envelope, EventFactory

TENANT = "default"
DEMO_DATABASE = "trackd-demo.db"
SEED = 2026
LIVE_EVERY_S = 10.0
LIVE_PACE = 0.25  # live plans run at a quarter of the seeded plans' durations
HISTORY = timedelta(hours=1)
PUBLISH_CHUNK = 100
RETRY_ERROR = "upstream timed out after 30 s (HTTP 504)"


@dataclass(frozen=True, slots=True)
class Subtask:
    """A kind of work a planner delegates: `action.requested` → `action.completed`."""

    action: str
    agent: str
    steps: tuple[str, ...]  # progress messages, in order
    seconds: tuple[int, int]  # how long it takes, at least and at most
    error: str  # what it says when it fails for good

    @property
    def slug(self) -> str:
        return self.action.replace(".", "-")


@dataclass(frozen=True, slots=True)
class PlanKind:
    name: str
    goal: str  # the goal's event type
    requester: str
    planner: str
    done_state: str
    subtasks: tuple[Subtask, ...]


KINDS = (
    PlanKind(
        "research",
        "research.goal",
        "research-app",
        "research-planner",
        "report delivered",
        (
            Subtask(
                "web.search",
                "web-search-worker",
                ("Querying 3 search engines", "Fetched 24 results", "Ranking sources"),
                (40, 150),
                "search quota exhausted",
            ),
            Subtask(
                "papers.search",
                "scholar-worker",
                ("Querying arXiv", "Downloading 5 PDFs"),
                (30, 120),
                "arXiv returned HTTP 503",
            ),
            Subtask(
                "analyze.text",
                "analysis-worker",
                ("Reading 8 sources", "Extracting claims", "Summarizing findings"),
                (60, 240),
                "context window exceeded",
            ),
            Subtask(
                "report.write",
                "writer-worker",
                ("Drafting outline", "Writing sections", "Checking citations"),
                (45, 180),
                "citation check failed",
            ),
        ),
    ),
    PlanKind(
        "data-pipeline",
        "pipeline.run",
        "scheduler",
        "pipeline-planner",
        "tables refreshed",
        (
            Subtask(
                "data.extract",
                "extract-worker",
                ("Connecting to orders DB", "Read 120k rows", "Read 240k rows"),
                (30, 120),
                "orders DB unreachable",
            ),
            Subtask(
                "data.transform",
                "transform-worker",
                ("Deduplicating", "Joining customers", "Computing aggregates"),
                (40, 160),
                "join produced 0 rows",
            ),
            Subtask(
                "data.validate",
                "quality-worker",
                ("Checking schema", "Checking row counts"),
                (15, 60),
                "row count off by 12%",
            ),
            Subtask(
                "data.load",
                "load-worker",
                ("Writing to warehouse", "Swapping partitions"),
                (20, 90),
                "schema mismatch: column 'amount' is text in the warehouse",
            ),
        ),
    ),
    PlanKind(
        "support-triage",
        "support.ticket",
        "helpdesk",
        "triage-planner",
        "reply sent",
        (
            Subtask(
                "ticket.classify",
                "classifier-agent",
                ("Detecting language", "Classifying"),
                (5, 30),
                "unsupported language",
            ),
            Subtask(
                "kb.search",
                "kb-agent",
                ("Searching knowledge base", "Ranking 6 articles"),
                (10, 60),
                "knowledge base index missing",
            ),
            Subtask(
                "reply.draft",
                "reply-agent",
                ("Drafting reply", "Checking tone"),
                (20, 90),
                "draft rejected by policy filter",
            ),
        ),
    ),
)


class Twist(StrEnum):
    """What, besides the normal flow, happens in a plan."""

    NONE = "none"
    RETRY = "retry"  # a subtask fails on attempt 1 and succeeds on attempt 2
    WATCHDOG = "watchdog"  # a watchdog fails a task that had just completed: an anomaly
    FAIL = "fail"  # a subtask fails twice, for good, and the plan fails


# The first five plans show every twist; later ones repeat the pattern.
TWISTS = (Twist.NONE, Twist.RETRY, Twist.WATCHDOG, Twist.NONE, Twist.FAIL, Twist.NONE)
TWIST_NOTES = {
    Twist.NONE: "",
    Twist.RETRY: "a task retried once",
    Twist.WATCHDOG: "a watchdog contradicts a result (anomaly)",
    Twist.FAIL: "a task failed for good",
}


@dataclass(slots=True)
class SimulatedPlan:
    plan_id: str
    kind: PlanKind
    twist: Twist
    events: list[Envelope] = field(default_factory=list)
    ends_at: datetime | None = None


class Planner:
    """Writes the events of one plan, from the goal to the plan's end, in time order.

    The planner's own task is the goal: running when asked, delegated once it has planned the
    subtasks (each pending until a worker is asked for it), waiting for results, then completed
    or failed.
    """

    def __init__(
        self,
        plan_id: str,
        kind: PlanKind,
        twist: Twist,
        start: datetime,
        rng: random.Random,
        pace: float,
    ) -> None:
        self.kind = kind
        self.twist = twist
        self.rng = rng
        self.pace = pace
        self.plan = SimulatedPlan(plan_id, kind, twist)
        self.f = EventFactory(
            source=kind.planner,
            trace_id=f"trace-{plan_id}",
            plan_id=plan_id,
            now=start.replace(microsecond=0),
            id_prefix=f"{plan_id}-e",
        )
        self.goal_id = f"{plan_id}-goal"

    def write(self) -> SimulatedPlan:
        goal = self._receive_goal()
        subtasks = self._plan_subtasks(goal)
        trouble = None if self.twist is Twist.NONE else self.rng.choice(list(subtasks)[1:])
        parent = goal
        for n, (task_id, sub) in enumerate(subtasks.items()):
            self.wait(2, 8)
            parent, ok = self._delegate(task_id, sub, parent, troubled=task_id == trouble)
            if n == 0:
                self._goal_state("delegated", "waiting", "waiting for subtask results", goal)
            if not ok:
                self._fail(sub, parent, untouched=list(subtasks)[n + 1 :])
                break
        else:
            self._complete(parent)
        self.plan.ends_at = self.f.now
        return self.plan

    # -- the planner ---------------------------------------------------------------------

    def _receive_goal(self) -> Envelope:
        kind = self.kind
        goal = self.emit(
            self.f.request(self.goal_id, kind.goal, source=kind.requester, data={"kind": kind.name})
        )
        self.wait(1, 3)
        self.emit(self.f.plan_started(current_state="planning", parent=goal))
        return goal

    def _plan_subtasks(self, goal: Envelope) -> dict[str, Subtask]:
        subtasks = {f"{self.plan.plan_id}-{s.slug}": s for s in self.kind.subtasks}
        for task_id, sub in subtasks.items():
            data = {"event_type": f"{sub.action}.requested"}
            self.emit(
                self.f.state_changed(task_id, None, "pending", "planned", parent=goal, data=data)
            )
            self.f.advance(1)
        self.wait(2, 6)
        self._goal_state("running", "delegated", f"delegating {len(subtasks)} subtasks", goal)
        return subtasks

    def _goal_state(self, previous: str, new: str, reason: str, goal: Envelope) -> None:
        self.emit(self.f.state_changed(self.goal_id, previous, new, reason, parent=goal))

    def _complete(self, parent: Envelope) -> None:
        self.wait(2, 5)
        done = self.emit(self.f.result(self.goal_id, f"{self.kind.goal}.completed", parent=parent))
        self.emit(self.f.plan_completed(current_state=self.kind.done_state, parent=done))

    def _fail(self, sub: Subtask, parent: Envelope, *, untouched: list[str]) -> None:
        self.wait(2, 5)
        reason = f"{sub.action} failed for good: {sub.error}"
        for task_id in untouched:
            self.emit(
                self.f.state_changed(task_id, "pending", "cancelled", "plan failed", parent=parent)
            )
        done = self.emit(
            self.f.result(
                self.goal_id, f"{self.kind.goal}.failed", success=False, error=reason, parent=parent
            )
        )
        self.emit(
            self.f.plan_failed(current_state=f"failed at {sub.action}", reason=reason, parent=done)
        )

    # -- the workers, one method per twist -----------------------------------------------

    def _delegate(
        self, task_id: str, sub: Subtask, parent: Envelope, *, troubled: bool
    ) -> tuple[Envelope, bool]:
        """Run one subtask; returns its last event and whether it succeeded."""
        if troubled and self.twist is Twist.RETRY:
            return self._retried(task_id, sub, parent), True
        if troubled and self.twist is Twist.FAIL:
            return self._failed_twice(task_id, sub, parent), False
        done = self._attempt(task_id, sub, parent, attempt=1)
        if troubled and self.twist is Twist.WATCHDOG:
            self._watchdog(task_id, done)
        return done, True

    def _retried(self, task_id: str, sub: Subtask, parent: Envelope) -> Envelope:
        """Attempt 1 times out; the planner puts the task back to pending; attempt 2 succeeds."""
        failed = self._attempt(task_id, sub, parent, attempt=1, error=RETRY_ERROR)
        self.wait(10, 30)
        self.emit(
            self.f.state_changed(
                task_id, "failed", "pending", "retrying after a timeout", attempt=2, parent=failed
            )
        )
        return self._attempt(task_id, sub, failed, attempt=2)

    def _failed_twice(self, task_id: str, sub: Subtask, parent: Envelope) -> Envelope:
        """Both of the task's two allowed attempts fail: it has failed for good."""
        first = self._attempt(task_id, sub, parent, attempt=1, error=sub.error, max_attempts=2)
        self.wait(10, 30)
        return self._attempt(task_id, sub, first, attempt=2, error=sub.error, max_attempts=2)

    def _watchdog(self, task_id: str, done: Envelope) -> None:
        """The result was in flight when a watchdog gave up on the task: two terminal events
        in one attempt, which trackd keeps as an anomaly whatever order they arrive in."""
        self.wait(5, 15)
        self.emit(
            self.f.state_changed(
                task_id,
                "running",
                "failed",
                "watchdog: no heartbeat for 60 s",
                source="watchdog",
                parent=done,
            )
        )

    def _attempt(
        self,
        task_id: str,
        sub: Subtask,
        parent: Envelope,
        *,
        attempt: int,
        error: str | None = None,
        max_attempts: int = 3,
    ) -> Envelope:
        """One attempt: request, progress updates, result (a failure comes halfway through)."""
        f = self.f
        request = self.emit(
            f.request(
                task_id,
                f"{sub.action}.requested",
                parent=parent,
                attempt=attempt,
                data={"max_attempts": max_attempts},
            )
        )
        parts = len(sub.steps) + 1
        step = self.rng.uniform(*sub.seconds) / parts
        done = sub.steps[: max(1, len(sub.steps) // 2)] if error else sub.steps
        for n, message in enumerate(done, start=1):
            self.pass_time(step)
            progress = round(n / parts, 2)
            self.emit(
                f.progress(
                    task_id,
                    "running",
                    progress,
                    message,
                    source=sub.agent,
                    parent=request,
                    attempt=attempt,
                )
            )
        self.pass_time(step)
        outcome = "failed" if error else "completed"
        return self.emit(
            f.result(
                task_id,
                f"{sub.action}.{outcome}",
                success=error is None,
                error=error,
                source=sub.agent,
                parent=request,
                attempt=attempt,
            )
        )

    # -- time and output -------------------------------------------------------------------

    def emit(self, event: Envelope) -> Envelope:
        self.plan.events.append(event)
        return event

    def wait(self, low: float, high: float) -> None:
        self.pass_time(self.rng.uniform(low, high))

    def pass_time(self, seconds: float) -> None:
        # Whole seconds keep the demo's times and durations easy to read.
        self.f.advance(max(1, round(seconds * self.pace)))


@dataclass(order=True, slots=True)
class _Due:
    at: datetime
    order: int
    event: Envelope = field(compare=False)


class Workload:
    """Plans and the schedule their events are delivered on: some late, some twice."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.plans: list[SimulatedPlan] = []
        self._queue: list[_Due] = []
        self._order = itertools.count()
        self._numbers = itertools.count(1)

    def add_plan(
        self,
        start: datetime,
        *,
        pace: float = 1.0,
        remember: bool = True,
    ) -> SimulatedPlan:
        """Write the next plan and schedule its events; `remember` keeps it in `plans`."""
        n = next(self._numbers)
        kind = KINDS[(n - 1) % len(KINDS)]
        twist = TWISTS[(n - 1) % len(TWISTS)]
        plan = Planner(f"{kind.name}-{n:03d}", kind, twist, start, self.rng, pace).write()
        for event in plan.events:
            self._schedule(event)
        if remember:
            self.plans.append(plan)
        return plan

    def _schedule(self, event: Envelope) -> None:
        at = datetime.fromisoformat(event["time"])
        late = event["type"] == "task.progress" and self.rng.random() < 0.15
        delay = timedelta(seconds=self.rng.uniform(20, 90) if late else 0)
        self._push(at + delay, event)
        if self.rng.random() < 0.08:  # at-least-once delivery: the same event again
            self._push(at + timedelta(seconds=self.rng.uniform(1, 30)), event)

    def _push(self, at: datetime, event: Envelope) -> None:
        heapq.heappush(self._queue, _Due(at, next(self._order), event))

    def due(self, now: datetime) -> list[Envelope]:
        """Events whose delivery time has come, in delivery order."""
        out = []
        while self._queue and self._queue[0].at <= now:
            out.append(heapq.heappop(self._queue).event)
        return out

    def happened(self, now: datetime) -> list[Envelope]:
        """Every event that took place by `now`, late deliveries last (for the seeded past)."""
        taken: list[_Due] = []
        later: list[_Due] = []
        for due in self._queue:
            (taken if datetime.fromisoformat(due.event["time"]) <= now else later).append(due)
        heapq.heapify(later)
        self._queue = later
        return [d.event for d in sorted(taken)]


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


def banner(
    settings: Settings, token: str, workload: Workload, published: int, *, live: bool, now: datetime
) -> str:
    # A wildcard address is where the server listens, not an address a browser can open.
    wildcard = settings.host in ("0.0.0.0", "::", "")  # noqa: S104
    host = "127.0.0.1" if wildcard else settings.host
    base = f"http://{host}:{settings.port}"
    shown = workload.plans[0].plan_id
    failed = next((p.plan_id for p in workload.plans if p.twist is Twist.FAIL), shown)
    auth = f'-H "Authorization: Bearer {token}"'
    lines = [
        f"trackd demo: {len(workload.plans)} plans, {published} events over the last hour "
        f"(tenant {TENANT})",
        "",
        f"  API docs  {base}/docs",
        f"  token     {token}",
        f"  dashboard {base}/ui (log in with the token above)",
        f"  database  {settings.database_url}",
        "",
        "Plans:",
        *(_plan_line(p, now) for p in workload.plans),
        "",
        "Try:",
        f"  curl {auth} {base}/v1/tracker/plans/{shown}",
        f"  curl {auth} {base}/v1/tracker/plans/{shown}/tasks",
        f"  curl {auth} {base}/v1/tracker/plans/{shown}/timeline",
        f"  trackd plans show {failed} --database-url {settings.database_url}",
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


async def _demo(settings: Settings, plans: int, live: bool) -> None:
    runtime = Runtime.build(settings)
    await upgrade(runtime.engine)
    async with runtime.sessions() as session, session.begin():
        token = await tokens.create(session, TENANT, user_id=None, role=Role.ADMIN)
    now = datetime.now(UTC)
    workload, past = simulate(plans, now)
    await seed(runtime, past)
    typer.echo(banner(settings, token, workload, len(past), live=live, now=now))
    setup_logging(settings.log_level)

    # Imported here: cli.main imports this module to register the command.
    from trackd.cli.main import serve_runtime

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
    settings = load_settings(host=host, port=port, database_url=url)
    if not settings.bus_url.startswith("memory://"):
        raise fail("the demo runs on the in-process bus; unset TRACKD_BUS_URL")
    run(_demo(settings, plans, live))
