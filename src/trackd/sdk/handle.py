"""One tracked run of a task: the events it emits and the context it sets for nested calls."""

from __future__ import annotations

import asyncio
import itertools
import numbers
import threading
import time
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from trackd.domain.ids import id_problem
from trackd.sdk.context import current
from trackd.sdk.ids import new_id
from trackd.sdk.wire import KIND_END, KIND_PENDING, KIND_PROGRESS, KIND_RUNNING, Pending

if TYPE_CHECKING:
    from trackd.sdk.client import Tracker

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "pending",
    "running",
    "completed",
    "failed",
    "cancelled",
)
_TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
_ID_MAX = 100
_NAME_MAX = 255
_MESSAGE_MAX = 2000
_ATTEMPTS_MAX = 10_000


class TaskHandle:
    """A task run: `pending → running` on enter, `completed` or `failed` on exit.

    Use it as a context manager, sync or async (`with track("x") as task:` /
    `async with track("x") as task:`); the body is the task. Every event carries the task's
    own `sequence` number, so the store orders them exactly even when they share a timestamp.
    A handle is entered once; a retry is a new handle with the same `task_id` and the next
    `attempt`.

    Attributes:
        name: the task's type (its `event_type` in the store).
        task_id: given, or a new unique id.
        plan_id: given, or the enclosing task's.
        trace_id: the enclosing task's, or a new one for a task at the top.
        event_id: the id of the task's first event, known from the start; nested tasks name
            it as their parent.
        parent_event_id: the enclosing task's `event_id`, or None at the top.
        state: None before enter, then running, then completed, failed or cancelled.
        duration: seconds the body took, once it ended.
    """

    __slots__ = (
        "_data",
        "_last_emit",
        "_lock",
        "_seq",
        "_t0",
        "_token",
        "_tracker",
        "_wire",
        "attempt",
        "duration",
        "event_id",
        "max_attempts",
        "name",
        "parent_event_id",
        "plan_id",
        "state",
        "task_id",
        "trace_id",
    )

    def __init__(
        self,
        tracker: Tracker,
        name: str,
        *,
        task_id: str | None = None,
        plan_id: str | None = None,
        attempt: int = 1,
        max_attempts: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        check_name(name)
        if task_id is not None:
            check_id("task_id", task_id)
        if plan_id is not None:
            check_id("plan_id", plan_id)
        if attempt != 1 or max_attempts is not None:
            check_attempts(attempt, max_attempts)
        self._tracker = tracker
        self.name = name
        # The first event's id doubles as the task's id and, at the top, the trace's: three
        # ids for the price of one, and a trace named after the task that began it.
        self.event_id = new_id()
        self.task_id = task_id or self.event_id
        self.plan_id = plan_id
        self.attempt = attempt
        self.max_attempts = max_attempts
        self._data = dict(data) if data else None  # as it was at the call
        self.trace_id: str | None = None
        self.parent_event_id: str | None = None
        self.state: str | None = None
        self.duration: float | None = None
        self._seq = itertools.count()
        # Heartbeats come from the delivery thread; the lock keeps a heartbeat's sequence
        # number and the state it reports together, so one never outruns the final event.
        # Without heartbeats only the task's own code emits, and the lock is not needed.
        self._lock = threading.Lock() if tracker._heartbeat_interval is not None else None
        self._t0 = 0.0
        self._last_emit = 0.0
        self._token: Token[TaskHandle | None] | None = None
        self._wire: Any = None  # the JSON parts common to its events, made by the delivery loop

    def __repr__(self) -> str:
        return f"<TaskHandle {self.name} task_id={self.task_id} state={self.state}>"

    # -- as a context manager -----------------------------------------------------------------

    def __enter__(self) -> Self:
        self._tracker._emit(*self._begin())
        self._started()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tracker._emit(self._end(exc))

    async def __aenter__(self) -> Self:
        tracker = self._tracker
        items = self._begin()
        if not tracker._try_emit(*items):
            await tracker._emit_later(*items)
        self._started()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        item = self._end(exc)
        if not self._tracker._try_emit(item):
            await self._tracker._emit_later(item)

    # -- while running --------------------------------------------------------------------------

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far the task got: `fraction` from 0 to 1, and what it is doing.

        Raises:
            ValueError: `fraction` is not a number from 0 to 1.
            RuntimeError: the task is not running (before enter or after exit).
        """
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, numbers.Real)
            or not 0.0 <= fraction <= 1.0
        ):
            raise ValueError(f"progress is a fraction from 0 to 1, got {fraction!r}")
        state, seq = self._next(None)
        if state is None or state in _TERMINAL:
            raise RuntimeError(
                f"task {self.task_id} is not running ({state or 'not started'}); "
                "report progress inside its `with` block"
            )
        if message is not None:
            message = str(message)[:_MESSAGE_MAX]
        self._last_emit = time.monotonic()
        self._tracker._emit(
            (time.time(), self, KIND_PROGRESS, seq, (state, float(fraction), message))
        )

    def _heartbeat(self, now: float, interval: float) -> Pending | None:
        """A liveness event if the task said nothing for `interval` (delivery thread)."""
        if now - self._last_emit < interval:
            return None
        state, seq = self._next(None)
        if state is None or state in _TERMINAL:
            return None
        self._last_emit = now
        return (time.time(), self, KIND_PROGRESS, seq, (state, None, None))

    def _next(self, new_state: str | None) -> tuple[str | None, int]:
        """The state before, and the next sequence number; moves to `new_state` if given.

        A sequence number drawn for a state that turns out not to be running goes unused:
        gaps are harmless, only the order counts.
        """
        lock = self._lock
        if lock is None:
            state = self.state
            if new_state is not None:
                self.state = new_state
            return state, next(self._seq)
        with lock:
            state = self.state
            if new_state is not None:
                self.state = new_state
            return state, next(self._seq)

    # -- the events -----------------------------------------------------------------------------

    def _begin(self) -> tuple[Pending, Pending]:
        if self.state is not None:
            raise RuntimeError(
                f"task {self.task_id} was already entered; call track() again for another run"
            )
        parent = current.get()
        if parent is not None:
            self.trace_id = parent.trace_id
            self.parent_event_id = parent.event_id
            if self.plan_id is None:
                self.plan_id = parent.plan_id
        else:
            self.trace_id = self.event_id
        when = time.time()
        pending = (when, self, KIND_PENDING, next(self._seq), self._data)
        return pending, (when, self, KIND_RUNNING, next(self._seq), None)

    def _started(self) -> None:
        self.state = RUNNING
        self._token = current.set(self)
        self._tracker._register(self)
        self._last_emit = self._t0 = time.monotonic()

    def _end(self, exc: BaseException | None) -> Pending:
        self.duration = time.monotonic() - self._t0
        self._tracker._unregister(self)
        if self._token is not None:
            try:
                current.reset(self._token)
            except ValueError:
                # Exited in another context than the one it was entered in: that context
                # never saw this task as current, so there is nothing to undo there.
                pass
            self._token = None
        if exc is None:
            new = COMPLETED
        elif isinstance(exc, asyncio.CancelledError):
            new = CANCELLED
        else:
            new = FAILED
        previous, seq = self._next(new)
        detail: tuple[str, str | None, float, str | None, str | None, str | None]
        if exc is None:
            detail = (new, previous, self.duration, None, None, None)
        else:
            reason = "cancelled" if new == CANCELLED else _describe(exc)
            message = str(exc)[:_MESSAGE_MAX]
            detail = (new, previous, self.duration, reason, _type_name(type(exc)), message)
        return (time.time(), self, KIND_END, seq, detail)


def check_id(field: str, value: object) -> None:
    """Raises ValueError unless `value` is an id trackd stores (`trackd.domain.ids`).

    The server refuses such ids too, but only later and in the background; here the caller
    learns it at the line that is wrong.
    """
    if not isinstance(value, str) or not value or len(value) > _ID_MAX:
        raise ValueError(f"{field} is a string of 1 to {_ID_MAX} characters: {value!r}")
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"{field} {problem}: {value!r}")


def check_name(name: object) -> None:
    """Raises ValueError unless `name` can be a task's type."""
    if not isinstance(name, str) or not name or len(name) > _NAME_MAX:
        raise ValueError(f"a task name is a string of 1 to {_NAME_MAX} characters: {name!r}")


def check_attempts(attempt: object, max_attempts: object) -> None:
    """Raises ValueError unless `attempt` and `max_attempts` make sense together."""
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise ValueError(f"attempt counts from 1: {attempt!r}")
    if max_attempts is None:
        return
    if (
        not isinstance(max_attempts, int)
        or isinstance(max_attempts, bool)
        or not 1 <= max_attempts <= _ATTEMPTS_MAX
    ):
        raise ValueError(f"max_attempts is from 1 to {_ATTEMPTS_MAX}: {max_attempts!r}")
    if attempt > max_attempts:
        raise ValueError(f"attempt {attempt} is past max_attempts {max_attempts}")


def _type_name(cls: type[BaseException]) -> str:
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return (f"{name}: {text}" if text else name)[:_MESSAGE_MAX]
