"""Schedules, the scheduler and the poller (DESIGN §9).

A feature calls the functions exported here; `trackd scheduler` and `trackd worker` (or
`trackd serve`) run `Scheduler` and `Poller`.
"""

from trackd.scheduling.poller import Poller, PollerOptions
from trackd.scheduling.requests import POLL_REQUESTS, POLLERS_GROUP
from trackd.scheduling.scheduler import Scheduler, SchedulerOptions
from trackd.scheduling.service import (
    ScheduleRun,
    announce_polls,
    cancel_poll,
    cancel_schedule,
    create_schedule,
    request_poll,
    schedule_run,
)

__all__ = [
    "POLLERS_GROUP",
    "POLL_REQUESTS",
    "Poller",
    "PollerOptions",
    "ScheduleRun",
    "Scheduler",
    "SchedulerOptions",
    "announce_polls",
    "cancel_poll",
    "cancel_schedule",
    "create_schedule",
    "request_poll",
    "schedule_run",
]
