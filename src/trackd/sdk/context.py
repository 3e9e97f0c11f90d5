"""The task running now, carried in a context variable.

A context variable follows the code that runs: it is per thread, per asyncio task (a task
starts with a copy of its creator's), so a tracked call nested in another, even in a task
the parent spawned, finds its parent without anyone passing ids around.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trackd.sdk.handle import TaskHandle

current: ContextVar[TaskHandle | None] = ContextVar("trackd_current_task", default=None)


def current_task() -> TaskHandle | None:
    """The innermost task being tracked in this context, or None.

    Inside a `@tracked` function this is how to reach the task's handle:

        @tracked
        def index(paths: list[str]) -> None:
            task = current_task()
            ...
            if task is not None:
                task.progress(0.5, "half way")
    """
    return current.get()
