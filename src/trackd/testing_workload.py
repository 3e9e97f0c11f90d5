"""A simulated multi-agent workload: plans of realistic events, delivered as producers do.

Plans of three kinds (research, data pipeline, support triage): a planner takes a goal, plans
subtasks (pending), delegates them to worker agents that report progress and results, waits,
and completes the goal and the plan. Among them: a task that fails on attempt 1 and succeeds
on attempt 2, a task that fails for good (so its plan fails), a watchdog that fails a task
which had just completed (an anomaly), and events delivered late or twice, as real producers
deliver them. `trackd demo` serves over it; tests and benchmarks may use it as well.

    workload = Workload(random.Random(2026))
    workload.add_plan(datetime.now(UTC) - timedelta(minutes=30))
    events = workload.happened(datetime.now(UTC))
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from trackd.testing import Envelope, EventFactory

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
