"""Job tracking for applications: domain tracking tables (`BaseTaskTracking` and its service,
queries and REST routes) and integrations such as Celery (`trackd.jobs.celery`).

    from trackd.jobs import BaseTaskTracking, BaseTaskTrackingService

The names below are loaded on first use, so `trackd.jobs.celery` does not pay for the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trackd.jobs.api import DomainRegistry, JobDomain, single_tenant, tasks_router
    from trackd.jobs.crud import BaseTaskTrackingCRUD
    from trackd.jobs.models import BaseTaskTracking, task_tracking_aggregates
    from trackd.jobs.service import BaseTaskTrackingService

_EXPORTS = {
    "BaseTaskTracking": "trackd.jobs.models",
    "task_tracking_aggregates": "trackd.jobs.models",
    "BaseTaskTrackingService": "trackd.jobs.service",
    "BaseTaskTrackingCRUD": "trackd.jobs.crud",
    "DomainRegistry": "trackd.jobs.api",
    "JobDomain": "trackd.jobs.api",
    "single_tenant": "trackd.jobs.api",
    "tasks_router": "trackd.jobs.api",
}

__all__ = [
    "BaseTaskTracking",
    "BaseTaskTrackingCRUD",
    "BaseTaskTrackingService",
    "DomainRegistry",
    "JobDomain",
    "single_tenant",
    "task_tracking_aggregates",
    "tasks_router",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'trackd.jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
