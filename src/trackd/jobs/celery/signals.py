"""Opt-in tracking through Celery's signals, for apps that cannot turn worker events on.

    # in the module that creates the Celery app, so clients and workers both run it
    from trackd.jobs.celery import instrument
    instrument(app, "http://trackd:8000", token=SERVICE_TOKEN)  # or a bus URL: redis://...

Each signal is turned into the Celery event it stands for (after_task_publish → task-sent,
task_received, task_prerun → task-started, task_success, task_failure, task_retry,
task_revoked, task_rejected / task_unknown → task-rejected) and goes through the same mapping
as `trackd celery`, so both ways give the same records. Use one way or the other for an app,
not both: signal events and worker events of a task do not share ids.

Events leave from a background thread per process (started in each prefork child on first
use), through a bounded queue; a handler never raises into Celery. When trackd is away long
enough for the queue to fill, a handler waits `emit_timeout` seconds for room, then drops the
event and logs it (counted in `Instrumentation.dropped`).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from trackd.bus.urls import from_url, in_process, scheme
from trackd.errors import ConfigError
from trackd.jobs.celery.book import TaskBook, app_task_limits
from trackd.jobs.celery.forwarder import Forwarder, Send, bus_sender, sink_sender

log = logging.getLogger(__name__)

_STARTS_MAX = 10_000  # start times of running tasks kept for their runtime


class _Sender:
    """A forwarder on a thread and loop of its own; made again in a forked child."""

    def __init__(self, url: str, token: str | None, max_pending: int) -> None:
        self._url = url
        self._token = token
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._pid = -1
        self._forwarder: Forwarder | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def forwarder(self) -> Forwarder:
        with self._lock:
            if self._pid != os.getpid() or self._forwarder is None:
                self._start()
            assert self._forwarder is not None  # noqa: S101 - set by _start
            return self._forwarder

    def _start(self) -> None:
        ready = threading.Event()
        forwarder_box: list[Forwarder] = []

        def main() -> None:
            async def serve() -> None:
                send, close = _open(self._url, self._token)
                forwarder = Forwarder(send, max_pending=self._max_pending)
                forwarder_box.append(forwarder)
                self._loop = asyncio.get_running_loop()
                ready.set()
                try:
                    await forwarder.run()
                finally:
                    await close()

            asyncio.run(serve())

        self._pid = os.getpid()
        self._thread = threading.Thread(target=main, name="trackd-celery-signals", daemon=True)
        self._thread.start()
        ready.wait(10)
        self._forwarder = forwarder_box[0] if forwarder_box else None
        if self._forwarder is None:
            raise ConfigError(f"could not start sending to {self._url}")

    def flush(self, timeout: float) -> bool:
        forwarder = self._forwarder
        if forwarder is None or self._pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        while forwarder.pending and time.monotonic() < deadline:
            time.sleep(0.01)
        return forwarder.pending == 0

    def close(self, timeout: float) -> None:
        forwarder, loop, thread = self._forwarder, self._loop, self._thread
        if forwarder is None or loop is None or thread is None or self._pid != os.getpid():
            return
        try:
            loop.call_soon_threadsafe(forwarder.stop)
        except RuntimeError:  # the loop already ended
            return
        thread.join(timeout)
        self._forwarder = None


def _open(url: str, token: str | None) -> tuple[Send, Callable[[], Any]]:
    """A send function for a trackd server (http[s]://) or a bus URL, and how to close it."""
    if scheme(url) in ("http", "https"):
        from trackd.sdk.http import HttpSink

        sink = HttpSink(url, token)
        return sink_sender(sink), sink.close
    bus = from_url(url)
    return bus_sender(bus), bus.close


class Instrumentation:
    """Celery signal handlers connected to one app; `disconnect()` removes them."""

    def __init__(
        self,
        app: Any,
        url: str,
        *,
        token: str | None = None,
        tenant_id: str | None = None,
        max_tasks: int = 10_000,
        max_pending: int = 10_000,
        emit_timeout: float = 5.0,
    ) -> None:
        if in_process(url):
            raise ConfigError(
                "instrument() needs a trackd reachable from every Celery process: "
                "http(s)://trackd:8000, redis://... or nats://..., not memory://"
            )
        if scheme(url) not in ("http", "https"):
            from_url(url)  # a wrong URL or a missing extra fails now, not in a worker
        self.app = app
        self.dropped = 0
        self._book = TaskBook(
            max_tasks, heartbeat_every=0, tenant_id=tenant_id, task_limits=app_task_limits(app)
        )
        self._book_lock = threading.Lock()
        self._sender = _Sender(url, token, max_pending)
        self._emit_timeout = emit_timeout
        self._starts: dict[str, float] = {}
        self._hostname = socket.gethostname()
        self._connected: list[tuple[Any, Callable[..., None]]] = []
        atexit.register(self.close)

    # -- lifecycle --------------------------------------------------------------------------

    def connect(self) -> Instrumentation:
        from celery import signals

        handlers: list[tuple[Any, Callable[..., None]]] = [
            (signals.after_task_publish, self._on_published),
            (signals.task_received, self._on_received),
            (signals.task_prerun, self._on_prerun),
            (signals.task_success, self._on_success),
            (signals.task_failure, self._on_failure),
            (signals.task_retry, self._on_retry),
            (signals.task_revoked, self._on_revoked),
            (signals.task_rejected, self._on_rejected),
            (signals.task_unknown, self._on_unknown),
        ]
        for signal, handler in handlers:
            signal.connect(handler, weak=False)
            self._connected.append((signal, handler))
        return self

    def disconnect(self) -> None:
        for signal, handler in self._connected:
            signal.disconnect(handler)
        self._connected.clear()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until this process's events are sent; False if `timeout` ran out first."""
        return self._sender.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued and stop this process's sending thread."""
        self._sender.close(timeout)

    # -- the handlers: each one builds the Celery event its signal stands for ---------------

    def _emit(self, event: dict[str, Any]) -> None:
        try:
            event.setdefault("timestamp", time.time())
            with self._book_lock:
                envelopes = self._book.translate(event)
            if envelopes and not self._sender.forwarder().put(envelopes, self._emit_timeout):
                self.dropped += len(envelopes)
                log.error(
                    "trackd is not keeping up; dropped %d event(s) of task %s",
                    len(envelopes),
                    event.get("uuid"),
                )
        except Exception:  # tracking must never break the app's tasks
            log.exception("could not track Celery event %s", event.get("type"))

    def _on_published(
        self, sender: Any = None, headers: Mapping[str, Any] | None = None, **kw: Any
    ) -> None:
        headers = headers or {}
        body = kw.get("body")
        task_id = headers.get("id") or (body.get("id") if isinstance(body, Mapping) else None)
        if not task_id:
            return
        self._emit(
            {
                "type": "task-sent",
                "uuid": task_id,
                "name": headers.get("task") or sender,
                "retries": headers.get("retries") or 0,
                "root_id": headers.get("root_id"),
                "parent_id": headers.get("parent_id"),
                "args": headers.get("argsrepr"),
                "kwargs": headers.get("kwargsrepr"),
                "eta": headers.get("eta"),
                "expires": headers.get("expires"),
                "exchange": kw.get("exchange"),
                "routing_key": kw.get("routing_key"),
                "hostname": self._hostname,
            }
        )

    def _on_received(self, sender: Any = None, request: Any = None, **kw: Any) -> None:
        if request is None:
            return
        self._emit(
            {
                "type": "task-received",
                "uuid": request.id,
                "name": request.name,
                "retries": (getattr(request, "request_dict", None) or {}).get("retries", 0),
                "root_id": getattr(request, "root_id", None),
                "parent_id": getattr(request, "parent_id", None),
                "args": getattr(request, "argsrepr", None),
                "kwargs": getattr(request, "kwargsrepr", None),
                "hostname": getattr(request, "hostname", None),
            }
        )

    def _on_prerun(self, sender: Any = None, task_id: str | None = None, **kw: Any) -> None:
        if task_id is None or sender is None:
            return
        if len(self._starts) < _STARTS_MAX:
            self._starts[task_id] = time.monotonic()
        self._emit({"type": "task-started", **_request_fields(sender, task_id)})

    def _runtime(self, task_id: str) -> float | None:
        start = self._starts.pop(task_id, None)
        return None if start is None else time.monotonic() - start

    def _on_success(self, sender: Any = None, result: Any = None, **kw: Any) -> None:
        task_id = _task_id(sender)
        if task_id is None:
            return
        self._emit(
            {
                "type": "task-succeeded",
                **_request_fields(sender, task_id),
                "result": _safe_repr(result),
                "runtime": self._runtime(task_id),
            }
        )

    def _on_failure(
        self,
        sender: Any = None,
        task_id: str | None = None,
        exception: BaseException | None = None,
        einfo: Any = None,
        **kw: Any,
    ) -> None:
        task_id = task_id or _task_id(sender)
        if task_id is None:
            return
        self._emit(
            {
                "type": "task-failed",
                **_request_fields(sender, task_id),
                "exception": _safe_repr(exception),
                "traceback": str(einfo.traceback) if einfo is not None else None,
                "runtime": self._runtime(task_id),
            }
        )

    def _on_retry(
        self,
        sender: Any = None,
        request: Any = None,
        reason: Any = None,
        einfo: Any = None,
        **kw: Any,
    ) -> None:
        if request is None:
            return
        self._runtime(request.id)
        self._emit(
            {
                "type": "task-retried",
                "uuid": request.id,
                "name": getattr(sender, "name", None),
                "retries": getattr(request, "retries", 0) or 0,
                "root_id": getattr(request, "root_id", None),
                "parent_id": getattr(request, "parent_id", None),
                "exception": _safe_repr(reason),
                "traceback": str(einfo.traceback) if einfo is not None else None,
                "hostname": getattr(request, "hostname", None),
            }
        )

    def _on_revoked(self, sender: Any = None, request: Any = None, **kw: Any) -> None:
        if request is None:
            return
        task_id = getattr(request, "id", None) or getattr(request, "task_id", None)
        if not task_id:
            return
        self._runtime(task_id)
        self._emit(
            {
                "type": "task-revoked",
                "uuid": task_id,
                "name": getattr(sender, "name", None),
                "terminated": bool(kw.get("terminated")),
                "signum": kw.get("signum"),
                "expired": bool(kw.get("expired")),
            }
        )

    def _on_rejected(self, sender: Any = None, message: Any = None, **kw: Any) -> None:
        headers = getattr(message, "headers", None) or {}
        if headers.get("id"):
            self._emit(
                {
                    "type": "task-rejected",
                    "uuid": headers["id"],
                    "name": headers.get("task"),
                    "requeue": False,
                }
            )

    def _on_unknown(
        self, sender: Any = None, name: str | None = None, id: str | None = None, **kw: Any
    ) -> None:
        if id:
            self._emit({"type": "task-rejected", "uuid": id, "name": name, "requeue": False})


def _task_id(task: Any) -> str | None:
    request = getattr(task, "request", None)
    task_id = getattr(request, "id", None)
    return task_id if isinstance(task_id, str) else None


def _request_fields(task: Any, task_id: str) -> dict[str, Any]:
    """What the running task's request says: name, attempt, trace and worker."""
    request = getattr(task, "request", None)
    return {
        "uuid": task_id,
        "name": getattr(task, "name", None),
        "retries": getattr(request, "retries", 0) or 0,
        "root_id": getattr(request, "root_id", None),
        "parent_id": getattr(request, "parent_id", None),
        "hostname": getattr(request, "hostname", None),
    }


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a result whose repr fails must not fail the task
        return f"<unrepresentable {type(value).__name__}>"


def instrument(
    app: Any,
    url: str | None = None,
    *,
    token: str | None = None,
    tenant_id: str | None = None,
    max_tasks: int = 10_000,
    max_pending: int = 10_000,
    emit_timeout: float = 5.0,
) -> Instrumentation:
    """Track `app`'s tasks by connecting Celery's signals; call it where the app is made.

    Args:
        app: the Celery app (its clients and workers must all run this call).
        url: a trackd server (`http://trackd:8000`, with `token` a service token) or trackd's
            bus (`redis://...`, `nats://...`); default TRACKD_URL, else TRACKD_BUS_URL.
        token: bearer token for a server URL.
        tenant_id: the tenant events name on a bus (a server takes it from the token).
        max_tasks: tasks remembered between their signals, per process.
        max_pending: events queued for sending, per process.
        emit_timeout: seconds a handler waits for room in a full queue before dropping.

    Raises:
        ConfigError: no URL, memory://, or the bus's optional dependency is missing.
    """
    url = url or os.environ.get("TRACKD_URL") or os.environ.get("TRACKD_BUS_URL")
    if not url:
        raise ConfigError(
            "instrument() needs where to send events: a trackd URL (http://trackd:8000) "
            "or a bus URL (redis://...), as an argument or TRACKD_URL / TRACKD_BUS_URL"
        )
    return Instrumentation(
        app,
        url,
        token=token,
        tenant_id=tenant_id,
        max_tasks=max_tasks,
        max_pending=max_pending,
        emit_timeout=emit_timeout,
    ).connect()
