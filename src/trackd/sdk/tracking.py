"""`track()` and `@tracked`: the ways producers mark a piece of work as a task.

configure(Tracker("http://trackd:8000", token=TOKEN, source="indexer"))

@tracked
def fetch(url: str) -> bytes: ...

@tracked(name="index.build", max_attempts=3)
async def build(paths: list[str]) -> int: ...

with track("nightly", plan_id="plan-7") as task:   # or `async with`
    fetch(URL)                                      # a child of "nightly" in its trace
    task.progress(0.5, "fetched")
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast, overload

from trackd.sdk.client import Tracker
from trackd.sdk.errors import TrackerError, TrackerNotConfigured
from trackd.sdk.handle import TaskHandle, check_attempts, check_name

P = ParamSpec("P")
R = TypeVar("R")

_default: Tracker | None = None


def configure(tracker: Tracker | None) -> Tracker | None:
    """Set the tracker `track()` and `@tracked` use when given none; returns the previous one.

    A process-wide setting, not a context variable: threads and tasks started before the
    call see it too. `configure(None)` unsets it.
    """
    global _default
    previous, _default = _default, tracker
    return previous


def default_tracker() -> Tracker:
    """The configured tracker.

    Raises:
        TrackerNotConfigured: `configure()` was never called (or was given None).
    """
    tracker = _default
    if tracker is None:
        raise TrackerNotConfigured(
            "no tracker configured: call trackd.sdk.configure(Tracker(...)) at start-up, "
            "or pass tracker= to track() / @tracked"
        )
    return tracker


def track(
    name: str,
    *,
    task_id: str | None = None,
    plan_id: str | None = None,
    attempt: int = 1,
    max_attempts: int | None = None,
    data: dict[str, Any] | None = None,
    tracker: Tracker | None = None,
) -> TaskHandle:
    """A task run named `name`, as a sync or async context manager.

    Emits `pending` and `running` on enter and `completed` (with its duration) or `failed`
    (with the error's type and message) on exit. Inside another tracked task it joins that
    task's trace, with the enclosing task's first event as its parent, and inherits its plan.

    Args:
        name: the task's type, shown as its `event_type`.
        task_id: the task's id; a new unique one by default. Pass the same id with the next
            `attempt` to record a retry of the same task.
        plan_id: the plan the task belongs to; by default the enclosing task's.
        attempt: which attempt this run is, from 1.
        max_attempts: how many attempts the task may take (the store refuses more).
        data: extra fields for the task's first event.
        tracker: the tracker to send with; by default the one set by `configure()`.
    """
    return (tracker or default_tracker()).track(
        name,
        task_id=task_id,
        plan_id=plan_id,
        attempt=attempt,
        max_attempts=max_attempts,
        data=data,
    )


@overload
def tracked(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def tracked(
    func: None = None,
    /,
    *,
    name: str | None = None,
    tracker: Tracker | None = None,
    max_attempts: int | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def tracked(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    tracker: Tracker | None = None,
    max_attempts: int | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Track every call of a function, sync or async, as a task; bare or with arguments.

    Args:
        name: the task's type; by default `module.qualname` of the function.
        tracker: the tracker to send with; by default the configured one, looked up at each
            call (so `configure()` may come after the decorated module is imported).
        max_attempts: with a number above 1, a call that raises an `Exception` runs again,
            at once, as the next attempt of the same task, until it succeeds or the attempts
            are used up (the last error is raised). Without it a call runs once.

    The wrapper keeps the function's signature (for type checkers too), name and docstring;
    `__wrapped__` is the function itself and `__trackd_name__` the task name.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        task_name = name or f"{fn.__module__}.{fn.__qualname__}"
        check_name(task_name)  # at decoration, not at the first call
        check_attempts(1, max_attempts)
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(fn):
            wrapper = _async_wrapper(
                cast(Callable[P, Awaitable[Any]], fn), task_name, tracker, max_attempts
            )
        else:
            wrapper = _sync_wrapper(fn, task_name, tracker, max_attempts)
        setattr(wrapper, "__trackd_name__", task_name)  # noqa: B010 - not a declared attribute
        return cast(Callable[P, R], wrapper)

    if func is not None:
        return decorate(func)
    return decorate


def _sync_wrapper(
    fn: Callable[P, R], name: str, tracker: Tracker | None, max_attempts: int | None
) -> Callable[P, R]:
    attempts = max_attempts or 1

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        t = tracker or default_tracker()
        if attempts == 1:
            with t.track(name, max_attempts=max_attempts):
                return fn(*args, **kwargs)
        task_id: str | None = None
        for attempt in range(1, attempts + 1):
            handle = t.track(name, task_id=task_id, attempt=attempt, max_attempts=max_attempts)
            task_id = handle.task_id
            try:
                with handle:
                    return fn(*args, **kwargs)
            except TrackerError:
                raise  # the tracker's own trouble (a full buffer, say) is not the call's
            except Exception:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    return call


def _async_wrapper(
    fn: Callable[P, Awaitable[Any]], name: str, tracker: Tracker | None, max_attempts: int | None
) -> Callable[P, Awaitable[Any]]:
    attempts = max_attempts or 1

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> Any:
        t = tracker or default_tracker()
        if attempts == 1:
            async with t.track(name, max_attempts=max_attempts):
                return await fn(*args, **kwargs)
        task_id: str | None = None
        for attempt in range(1, attempts + 1):
            handle = t.track(name, task_id=task_id, attempt=attempt, max_attempts=max_attempts)
            task_id = handle.task_id
            try:
                async with handle:
                    return await fn(*args, **kwargs)
            except TrackerError:
                raise  # the tracker's own trouble (a full buffer, say) is not the call's
            except Exception:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    return call
