"""`BaseTaskTrackingService`: what each operation on a tracking row means.

    service = ETFPriceUpdateService(session, publisher=BusEventPublisher(bus))
    task = await service.create_tracking(etf_id="VWCE", date=date(2026, 3, 2))
    await service.update_status(task.id, "PROCESSING")
    await service.update_status(task.id, "COMPLETED")

Every public method is one unit of work: it commits the session it was given, then publishes
the trackd events of the changes it made and counts them in the Prometheus metrics (so
nothing is announced that was rolled back). The rules themselves (which change is legal, what
it does to timestamps and attempts, when prerequisites let a task start) are pure functions in
`trackd.domain.jobs`; the service loads rows, applies them and follows the dependencies.
"""

from __future__ import annotations

from trackd.jobs.service.base import (
    DEFAULT_BACKOFF,
    BaseTaskTrackingService,
    CancelHook,
    PrerequisitePolicy,
)
from trackd.jobs.service.errors import (
    IllegalStatusChange,
    InvalidTask,
    PrerequisiteFailed,
    TaskBlocked,
    TaskNotFound,
)
from trackd.jobs.service.retention import DEFAULT_RETENTION_DAYS, CleanupResult
from trackd.jobs.service.stale import DEFAULT_STALE_AFTER, StaleAction
from trackd.jobs.service.views import TaskView

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_STALE_AFTER",
    "BaseTaskTrackingService",
    "CancelHook",
    "CleanupResult",
    "IllegalStatusChange",
    "InvalidTask",
    "PrerequisiteFailed",
    "PrerequisitePolicy",
    "StaleAction",
    "TaskBlocked",
    "TaskNotFound",
    "TaskView",
]
