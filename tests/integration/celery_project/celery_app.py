"""The Celery app the Celery integration tests run a real worker for.

Configured from the environment so that the worker (a subprocess) and the test use the same
broker and result backend: TRACKD_TEST_CELERY_BROKER, TRACKD_TEST_CELERY_BACKEND, and
TRACKD_TEST_CELERY_INSTRUMENT (a trackd bus URL) to track through signals instead of events.
"""

from __future__ import annotations

import os
import time

from celery import Celery, Task

app = Celery(
    "trackd_test",
    broker=os.environ["TRACKD_TEST_CELERY_BROKER"],
    backend=os.environ["TRACKD_TEST_CELERY_BACKEND"],
)
app.conf.update(
    result_extended=True,  # retries in the backend: reconciled attempts are exact
    task_send_sent_event=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

if os.environ.get("TRACKD_TEST_CELERY_INSTRUMENT"):
    from trackd.jobs.celery import instrument

    instrumentation = instrument(app, os.environ["TRACKD_TEST_CELERY_INSTRUMENT"])


class FlakyError(Exception):
    pass


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def total(values: list[int]) -> int:
    return sum(values)


@app.task
def boom(n: int) -> None:
    raise ValueError(f"boom {n}")


@app.task(bind=True, autoretry_for=(FlakyError,), max_retries=3, default_retry_delay=0)
def flaky(self: Task, n: int, fails: int) -> int:
    """Fails `fails` times, then returns the attempt's retries count; Celery retries it."""
    if self.request.retries < fails:
        raise FlakyError(f"flaky {n}")
    return int(self.request.retries)


@app.task(bind=True, autoretry_for=(FlakyError,), max_retries=2, default_retry_delay=0)
def retried_once(self: Task, n: int) -> int:
    """Fails on its first attempt and succeeds on its second (of the 3 Celery allows)."""
    if self.request.retries < 1:
        raise FlakyError(f"retried once {n}")
    return n


@app.task
def gated(gate: str) -> str:
    """Runs until the key `gate` exists in the result backend's Redis (at most a minute), so
    a test decides when it ends instead of guessing how long the machine takes to see it."""
    from redis import Redis

    with Redis.from_url(os.environ["TRACKD_TEST_CELERY_BACKEND"]) as client:
        for _ in range(1200):
            if client.exists(gate):
                return gate
            time.sleep(0.05)
    raise TimeoutError(f"{gate} was never opened")
