"""A small runner for applications without a task queue: run the tasks that are due.

    summary = await run_due(service, handler)     # one pass, like a worker's burst mode

A task is due when it is pending and its retry delay (if any) has passed. Each runs as
`handler(task)`: started first (prerequisites checked), completed when the handler returns
(what it wrote in the service's session is committed with the completion), and on an
exception rolled back, failed and retried after a backoff while it has attempts left — the
retry runs in a later pass, once it is due. A task whose prerequisites have not completed
is skipped and stays pending.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from trackd.jobs.helpers import handle_task_error
from trackd.jobs.models import BaseTaskTracking
from trackd.jobs.service import BaseTaskTrackingService, PrerequisiteFailed, TaskBlocked

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseTaskTracking)


@dataclass(frozen=True, slots=True)
class RunSummary:
    completed: int = 0
    retried: int = 0  # failed, with a retry scheduled
    failed: int = 0  # failed for good (no attempt left, or a prerequisite failed)
    blocked: int = 0  # not started: prerequisites still running, or blocked

    @property
    def ran(self) -> int:
        return self.completed + self.retried + self.failed


async def run_due(
    service: BaseTaskTrackingService[M],
    handler: Callable[[M], Awaitable[Any]],
    *,
    limit: int = 100,
) -> RunSummary:
    """Run up to `limit` due tasks of the service's domain, oldest first, one at a time."""
    due = await service.crud.get_due(service.db, service.clock(), limit=limit)
    # Ids, not rows: a failed handler's rollback expires every row the session holds.
    due_ids = [t.id for t in due]
    await service.db.commit()
    completed = retried = failed = blocked = 0
    for listed_id in due_ids:
        try:
            task = await service.claim(listed_id)
        except TaskBlocked:
            blocked += 1
            continue
        except PrerequisiteFailed:
            failed += 1
            continue
        if task is None:
            continue  # another worker took it meanwhile
        task_id = task.id
        try:
            await handler(task)
        except Exception as exc:
            # What the handler wrote before it failed goes, and the failure is recorded.
            await service.db.rollback()
            delay = await handle_task_error(service, task_id, exc)
            if delay is None:
                failed += 1
            else:
                retried += 1
            continue
        await service.complete(task_id)
        completed += 1
    summary = RunSummary(completed, retried, failed, blocked)
    if due_ids:
        log.info("ran due tasks domain=%s %s", service.domain, summary)
    return summary
