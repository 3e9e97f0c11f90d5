"""The task-monitoring seed's shared utilities, for code that runs the tracked work itself.

    async def update_etf_price(service, tracking_id):
        try:
            await update_task_status(service, tracking_id, "PROCESSING")
            ...  # the work
            await update_task_status(service, tracking_id, "COMPLETED")
        except Exception as exc:
            delay = await handle_task_error(service, tracking_id, exc)
            # Celery: raise self.retry(exc=exc, countdown=delay) if delay is not None

or let `retry_with_backoff` run the work and run it again after each failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from trackd.domain.states import TaskState
from trackd.jobs.models import BaseTaskTracking
from trackd.jobs.service import BaseTaskTrackingService

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseTaskTracking)
R = TypeVar("R")


async def update_task_status(
    service: BaseTaskTrackingService[M],
    tracking_id: int,
    status: str | TaskState,
    error_message: str | None = None,
) -> M:
    """Move a task to `status` (any vocabulary), with its timestamps; see `update_status`."""
    return await service.update_status(tracking_id, status, error_message)


async def handle_task_error(
    service: BaseTaskTrackingService[M], tracking_id: int, error: BaseException | str
) -> float | None:
    """Record a failure; if the task has attempts left, schedule its retry after a backoff.

    Returns the seconds until the retry is due (to hand to the runner, e.g. Celery's
    `countdown`), or None when the task stays failed (its dependents are then failed or
    blocked as the service's policy says).
    """
    task = await service.fail(tracking_id, error, retry=True)
    if task.status != TaskState.PENDING or task.next_attempt_at is None:
        return None
    return max(0.0, (task.next_attempt_at - service.clock()).total_seconds())


async def retry_with_backoff(
    service: BaseTaskTrackingService[M],
    tracking_id: int,
    work: Callable[[M], Awaitable[R]],
    *,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> R:
    """Run `work(task)` as the task: start it, complete it, and after each failure wait the
    backoff and run it again, until it succeeds or its attempts are used up. What `work`
    writes in the service's session is committed with the completion, or rolled back when
    it fails.

    Raises:
        Exception: the last error of `work`, once no attempt is left.
        TaskBlocked: the task may not start yet (a prerequisite has not completed).
        PrerequisiteFailed: the task may not start (a prerequisite failed).
    """
    while True:
        task = await service.start(tracking_id)
        try:
            result = await work(task)
        except Exception as exc:
            await service.db.rollback()  # what the failed attempt wrote goes
            delay = await handle_task_error(service, tracking_id, exc)
            if delay is None:
                raise
            log.info(
                "retrying domain=%s task=%s in %.1f s after %s",
                service.domain,
                tracking_id,
                delay,
                type(exc).__name__,
            )
            await sleep(delay)
            continue
        await service.complete(tracking_id)
        return result
