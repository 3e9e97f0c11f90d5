"""The Tracker: where a producer's events go, and the background delivery loop that sends them."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from trackd.bus.base import Bus
from trackd.bus.memory import MemoryBus
from trackd.bus.urls import from_url, in_process, scheme
from trackd.errors import ConfigError
from trackd.sdk.buffer import EventBuffer
from trackd.sdk.delivery import Counters, Delivery, TrackerStats
from trackd.sdk.errors import TrackerBufferFull, TrackerDeliveryFailed, TrackerError
from trackd.sdk.handle import TaskHandle, check_id
from trackd.sdk.sinks import BusSink, Sink
from trackd.sdk.wire import Pending

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

_STOP_WAIT = 5.0  # seconds to wait for a delivery loop that was told to stop
_POLL = 0.005  # seconds between looks while waiting across threads or loops


class Tracker:
    """Sends a producer's events to trackd, in the background, in batches.

    Args:
        url: a bus URL (`redis://...`, `nats://...`) or the `http(s)://` URL of a trackd
            server, which gets the batches on `POST /v1/events`.
        bus: a bus object instead of a URL; the way to use `memory://`, whose bus exists
            only inside one process (e.g. `Tracker(bus=runtime.bus)`).
        token: the bearer token for a server (a `service` token).
        source: the `source` of every event: which producer sent it.
        tenant_id: the tenant named on the events when publishing to a bus; a server takes
            the tenant from the token instead.
        batch_size: events per batch; a full batch goes out at once.
        flush_interval: seconds an event waits at most for its batch to fill.
        max_buffer: events held at most while they wait to be sent; when it is full, `emit`
            waits up to `emit_timeout` seconds, then raises `TrackerBufferFull`.
        heartbeat_interval: seconds between heartbeats of a running task that says nothing
            else (a `task.progress` with its state and no progress); None for none.
        emit_timeout: seconds an event may wait for room in a full buffer.
        transport: an httpx transport for the server (tests use `httpx.ASGITransport`).
        http_timeout: seconds per HTTP request.
        max_request_bytes: bytes per request to a server at most; None for the server's
            default limit (`TRACKD_MAX_REQUEST_BYTES`, 5 MiB). A server set lower answers
            413 and the request is halved until it fits.

    Publishing starts with the first event (or `with` / `async with`): as an asyncio task
    when that event comes from async code, else on a daemon thread with a loop of its own.
    In async code, close the tracker in its loop (`async with Tracker(...)` or
    `await tracker.aclose()`); events a loop leaves behind when it ends go out at the next
    flush or at interpreter exit, where every tracker still open is closed.

    Emitting never blocks an event loop: where a sync call in the publishing loop finds the
    buffer full it raises `TrackerBufferFull` at once, and async enters and exits wait for
    room without blocking.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        bus: Bus | None = None,
        token: str | None = None,
        source: str = "app",
        tenant_id: str | None = None,
        batch_size: int = 200,
        flush_interval: float = 0.2,
        max_buffer: int = 10_000,
        heartbeat_interval: float | None = None,
        emit_timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http_timeout: float = 10.0,
        max_request_bytes: int | None = None,
    ) -> None:
        if (url is None) == (bus is None):
            raise ValueError(
                "pass either a url or a bus: Tracker('http://host:8000') or Tracker(bus=b)"
            )
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if flush_interval <= 0 or emit_timeout < 0:
            raise ValueError("flush_interval must be positive and emit_timeout not negative")
        if heartbeat_interval is not None and heartbeat_interval <= 0:
            raise ValueError("heartbeat_interval must be positive, or None for no heartbeats")
        if not source or len(source) > 255:
            raise ValueError("source is a string of 1 to 255 characters")
        if tenant_id is not None:
            check_id("tenant_id", tenant_id)
        self.source = source
        self.tenant_id = tenant_id
        self._token = token
        self._transport = transport
        self._http_timeout = http_timeout
        self._max_request_bytes = max_request_bytes
        self._batch_size = batch_size
        self._interval = flush_interval
        self._heartbeat_interval = heartbeat_interval
        self._emit_timeout = emit_timeout
        self._bus = bus
        self._http_url: str | None = None
        self._url_for_bus: str | None = None
        self._spare_bus: Bus | None = None
        if url is None:
            self._target = type(bus).__name__
        elif scheme(url) in ("http", "https"):
            self._http_url = url
            self._target = url
        elif in_process(url):
            raise ConfigError(
                "memory:// is a bus inside one process, so a URL cannot reach it: "
                "pass the bus itself, Tracker(bus=runtime.bus)"
            )
        else:
            self._spare_bus = from_url(url)  # a wrong URL or a missing extra fails here, now
            self._url_for_bus = url
            self._target = _redact(url)
        self._init_state(max_buffer)
        _trackers.add(self)

    def _init_state(self, max_buffer: int) -> None:
        self._buffer = EventBuffer(max_buffer)
        self._counters = Counters()
        self._delivery: Delivery | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._active: dict[int, TaskHandle] = {}
        self._start_lock = threading.Lock()
        self._accepting = True
        self._closed = False

    def __repr__(self) -> str:
        mode = "idle" if self._delivery is None else ("thread" if self._thread else "task")
        return f"<Tracker {self._target} source={self.source} {mode}>"

    # -- tasks --------------------------------------------------------------------------------

    def track(
        self,
        name: str,
        *,
        task_id: str | None = None,
        plan_id: str | None = None,
        attempt: int = 1,
        max_attempts: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> TaskHandle:
        """A task run to use as a (sync or async) context manager; see `TaskHandle`."""
        return TaskHandle(
            self,
            name,
            task_id=task_id,
            plan_id=plan_id,
            attempt=attempt,
            max_attempts=max_attempts,
            data=data,
        )

    @property
    def stats(self) -> TrackerStats:
        """Counts of emitted, delivered, rejected and dropped events so far."""
        return self._counters.snapshot(self._buffer)

    # -- emitting (the hot path) ----------------------------------------------------------------

    def _emit(self, *items: Pending) -> None:
        """Buffer events; wait for room if the buffer is full.

        Raises:
            TrackerBufferFull: no room came within `emit_timeout`; the events were not taken.
        """
        delivery, n = self._offer(items)
        if not n:
            self._wait_for_room(items, delivery)

    def _try_emit(self, *items: Pending) -> bool:
        """Buffer events if there is room now (async callers then wait with `_emit_later`)."""
        return self._offer(items)[1] > 0

    def _offer(self, items: tuple[Pending, ...]) -> tuple[Delivery, int]:
        """Put events in the buffer if there is room for all (starting the delivery loop when
        none runs) and wake it once a batch is waiting; the delivery loop and the new length,
        0 when there was no room."""
        if not self._accepting:
            raise TrackerError(f"{self!r} is closed; events can no longer be sent with it")
        delivery = self._delivery
        if delivery is None or delivery.finished:
            delivery = self._start()
        n = self._buffer.offer(items)
        if n >= self._batch_size:
            delivery.wake()
        return delivery, n

    async def _emit_later(self, *items: Pending) -> None:
        # Polling, because waking async waiters from the delivery loop would cost every emit;
        # it only happens while the buffer is full.
        deadline = time.monotonic() + self._emit_timeout
        while not self._try_emit(*items):
            if time.monotonic() >= deadline:
                raise self._full()
            await asyncio.sleep(_POLL)

    def _wait_for_room(self, items: tuple[Pending, ...], delivery: Delivery) -> None:
        if delivery.on_own_loop():
            raise self._full(
                " This call runs in the event loop that publishes the events, so it cannot "
                "wait for room: track async code with `async with` or async functions, or "
                "raise max_buffer."
            )
        if not delivery.alive:
            delivery = self._start()
        delivery.wake()
        if not self._buffer.put(items, self._emit_timeout):
            raise self._full()

    def _full(self, advice: str = "") -> TrackerBufferFull:
        return TrackerBufferFull(
            f"the tracker's buffer is full: {self._buffer.capacity} events are waiting to be "
            f"sent to {self._target} and no room came within {self._emit_timeout}s "
            f"(last error: {self._counters.last_error or 'none, the sink is slow'}). "
            "This event was not taken; check that the bus or server is reachable, or raise "
            "max_buffer or emit_timeout." + advice
        )

    # -- heartbeats (called on the delivery thread) ------------------------------------------

    def _register(self, handle: TaskHandle) -> None:
        if self._heartbeat_interval is not None:
            self._active[id(handle)] = handle

    def _unregister(self, handle: TaskHandle) -> None:
        if self._heartbeat_interval is not None:
            self._active.pop(id(handle), None)

    def _beat(self) -> None:
        interval = self._heartbeat_interval
        if interval is None:
            return
        now = time.monotonic()
        # list() copies the values in one step under the GIL, so tasks starting and ending
        # on other threads meanwhile cannot break the iteration.
        for handle in list(self._active.values()):
            item = handle._heartbeat(now, interval)
            if item is not None and not self._buffer.offer((item,)):
                # A full buffer holds newer news than "still running"; the next beat retries.
                log.debug("trackd heartbeat of task %s skipped: buffer full", handle.task_id)

    # -- the delivery loop ------------------------------------------------------------------------

    def _start(self, *, thread: bool | None = None) -> Delivery:
        """The running delivery loop, started if there is none (or the one there was ended)."""
        with self._start_lock:
            delivery = self._delivery
            if delivery is not None and delivery.alive:
                return delivery
            loop: asyncio.AbstractEventLoop | None = None
            if thread is not True:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
            delivery = Delivery(
                self._buffer,
                self._open_sink,
                self._counters,
                batch_size=self._batch_size,
                interval=self._interval,
                heartbeat=self._beat if self._heartbeat_interval else None,
                heartbeat_interval=self._heartbeat_interval,
            )
            if self._delivery is not None and not self._delivery.finished:
                # Its loop is not running now; should it run again, the old delivery loop ends
                # instead of competing with this one.
                self._delivery.close()
            if loop is not None:
                self._thread = None
                self._task = delivery.task = loop.create_task(
                    delivery.run(), name="trackd-sdk-delivery"
                )
                # Also marks a task cancelled before its first step, which never runs `run`.
                self._task.add_done_callback(lambda _: delivery.ended())
            else:
                if isinstance(self._bus, MemoryBus):
                    raise ConfigError(
                        "a memory bus lives in its event loop, so the tracker must publish from "
                        "that loop: use it from async code (`async with Tracker(bus=...)`)"
                    )
                self._task = None
                self._thread = threading.Thread(
                    target=_run_thread, args=(delivery,), name="trackd-sdk-delivery", daemon=True
                )
                self._thread.start()
            # Also in loop mode: events left when that loop ends are sent at exit, by a thread.
            _exit_hooks.add(self)
            self._delivery = delivery
            return delivery

    def _open_sink(self) -> Sink:
        if self._http_url is not None:
            from trackd.sdk import http  # httpx is imported only when it is used

            return http.HttpSink(
                self._http_url,
                self._token,
                transport=self._transport,
                timeout=self._http_timeout,
                max_request_bytes=self._max_request_bytes or http.MAX_REQUEST_BYTES,
            )
        if self._bus is not None:
            return BusSink(self._bus, owned=False)
        # A bus made from a URL belongs to the event loop of the delivery that opened it; a later
        # delivery (another event loop) gets a new one.
        bus, self._spare_bus = self._spare_bus, None
        return BusSink(bus or from_url(self._url_for_bus or ""), owned=True)

    # -- flushing and closing -----------------------------------------------------------------

    def flush(self, timeout: float | None = 30.0) -> None:
        """Block until every event emitted so far is delivered.

        Raises:
            TrackerDeliveryFailed: a batch was refused as a whole (e.g. a bad token) or given
                up on since the last flush (each was logged), or `timeout` seconds passed
                before everything was delivered. Events the server rejected one by one are
                logged and counted in `stats.rejected`, not raised.
            RuntimeError: called inside the event loop the tracker publishes from; use
                `await aflush()` there.
        """
        delivery = self._delivery
        if delivery is not None and delivery.on_own_loop():
            raise RuntimeError(
                "flush() would block the event loop that publishes the events: "
                "use `await tracker.aflush()`"
            )
        target = self._buffer.accepted
        if self._buffer.settled < target:
            delivery = delivery if delivery is not None and delivery.alive else self._start()
            delivery.wake()
            if not self._buffer.wait_settled(target, timeout):
                raise self._late(target, timeout)
        self._report()

    async def aflush(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        # A timeout argument rather than the caller's asyncio.timeout: it mirrors flush() and
        # the error says how many events are still out, which a cancellation would not.
        """`flush()` for async code: wait without blocking the event loop."""
        target = self._buffer.accepted
        if self._buffer.settled < target:
            delivery = self._delivery
            delivery = delivery if delivery is not None and delivery.alive else self._start()
            delivery.wake()
            deadline = None if timeout is None else time.monotonic() + timeout
            while self._buffer.settled < target:
                left = 3600.0 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    raise self._late(target, timeout)
                if delivery.on_own_loop():
                    await delivery.changed(left)
                else:
                    await asyncio.sleep(min(_POLL, left))
        self._report()

    def close(self, timeout: float | None = 30.0) -> None:
        """Deliver everything emitted, then stop the delivery loop; the tracker takes no more.

        Raises:
            TrackerDeliveryFailed: as for `flush()`; the delivery loop is stopped all the same.
        """
        if self._closed:
            return
        delivery = self._delivery
        if delivery is not None and delivery.on_own_loop():
            raise RuntimeError("close() would block the event loop: use `await tracker.aclose()`")
        self._accepting = False
        error: TrackerDeliveryFailed | None = None
        try:
            self.flush(timeout)
        except TrackerDeliveryFailed as exc:
            error = exc
        delivery = self._delivery
        if delivery is not None and not delivery.finished:
            delivery.close(abort=error is not None)
            if delivery.alive:  # a delivery whose event loop is not running cannot get to its end
                delivery.done.wait(_STOP_WAIT)
        if self._thread is not None:
            self._thread.join(_STOP_WAIT)
        self._closed = True
        _exit_hooks.discard(self)
        if error is not None:
            raise error

    async def aclose(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """`close()` for async code."""
        if self._closed:
            return
        self._accepting = False
        error: TrackerDeliveryFailed | None = None
        try:
            await self.aflush(timeout)
        except TrackerDeliveryFailed as exc:
            error = exc
        delivery = self._delivery
        if delivery is not None and not delivery.finished:
            delivery.close(abort=error is not None)
            if self._task is not None and delivery.on_own_loop():
                await self._task
            elif delivery.alive:
                deadline = time.monotonic() + _STOP_WAIT
                # The delivery loop runs on another thread or loop: its done flag is a
                # threading.Event, which an event loop cannot await.
                while not delivery.done.is_set() and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(_POLL)
        self._closed = True
        _exit_hooks.discard(self)
        if error is not None:
            raise error

    def _late(self, target: int, timeout: float | None) -> TrackerDeliveryFailed:
        left = target - self._buffer.settled
        return TrackerDeliveryFailed(
            f"{left} events were not delivered to {self._target} within {timeout}s "
            f"(last error: {self._counters.last_error or 'none, the sink is slow'})"
        )

    def _report(self) -> None:
        failures, self._counters.failures = self._counters.failures, []
        if failures:
            more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
            raise TrackerDeliveryFailed("; ".join(failures[:3]) + more)

    def __enter__(self) -> Self:
        self._start(thread=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _forget_parent(self) -> None:
        """In a forked child: the parent's delivery thread and buffer are not ours."""
        self._init_state(self._buffer.capacity)


def _run_thread(delivery: Delivery) -> None:
    asyncio.run(delivery.run())


def _redact(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}://{rest}"


_trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()
_exit_hooks: weakref.WeakSet[Tracker] = weakref.WeakSet()  # started and not closed yet


@atexit.register
def _close_at_exit() -> None:
    # atexit runs before daemon threads are stopped, so their delivery loops can still deliver.
    for tracker in list(_exit_hooks):
        try:
            tracker.close()
        except Exception:
            log.exception("trackd: events were lost at interpreter exit")


def _after_fork() -> None:
    for tracker in list(_trackers):
        tracker._forget_parent()


os.register_at_fork(after_in_child=_after_fork)
