"""`trackd celery`'s engine: Celery's own events in, trackd envelopes out on the bus.

Celery's event receiver (the one Flower uses) runs on a thread of its own, translates each
event through the bounded `TaskBook` and hands the envelopes to a `Forwarder` that publishes
them from the asyncio loop. Once the receiver listens, and again after every reconnection,
the result backend is read back for what ended while no one listened (`reconcile`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from trackd.bus.base import Bus
from trackd.jobs.celery.book import DEFAULT_MAX_TASKS, TaskBook, app_task_limits
from trackd.jobs.celery.forwarder import Forwarder, ForwarderStats, bus_sender
from trackd.jobs.celery.reconcile import ReconcileStats, Store, reconcile

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    max_tasks: int = DEFAULT_MAX_TASKS
    heartbeat_every: float = 60.0  # seconds between liveness events per running task; 0: none
    tenant_id: str | None = None
    reconcile_window: timedelta | None = timedelta(days=1)  # None: do not reconcile
    batch_size: int = 500
    max_pending: int = 10_000


@dataclass(slots=True)
class MonitorStats:
    events: int = 0  # Celery events received
    reconnects: int = 0
    forwarded: ForwarderStats = field(default_factory=ForwarderStats)
    reconciled: list[ReconcileStats] = field(default_factory=list)


class CeleryMonitor:
    """Consumes a Celery app's events and publishes them as trackd events.

    Args:
        app: a Celery app configured with the broker (and result backend) to watch.
        bus: trackd's bus.
        options: see `MonitorOptions`.
        store: trackd's store, when this process can read it: reconciliation then skips
            tasks the store already has as ended, and can work with any result backend.
    """

    def __init__(
        self, app: Any, bus: Bus, options: MonitorOptions, *, store: Store | None = None
    ) -> None:
        self._app = app
        self._opts = options
        self._store = store
        self.book = TaskBook(
            options.max_tasks,
            heartbeat_every=options.heartbeat_every,
            tenant_id=options.tenant_id,
            task_limits=app_task_limits(app, finalize=True),
        )
        self.forwarder = Forwarder(
            bus_sender(bus), batch_size=options.batch_size, max_pending=options.max_pending
        )
        self.stats = MonitorStats(forwarded=self.forwarder.stats)
        self._halt = threading.Event()  # tells the receiver thread to end
        self._stopped = asyncio.Event()
        self._listening = threading.Event()
        self._needs_reconcile = threading.Event()
        self._receiver: Any = None

    @property
    def listening(self) -> bool:
        """Whether the receiver is consuming events right now."""
        return self._listening.is_set()

    def stop(self) -> None:
        """End `run()` once what was received is published (call on the monitor's loop)."""
        self._halt.set()
        self._stopped.set()

    async def run(self) -> MonitorStats:
        """Receive and publish until `stop()`."""
        loop = asyncio.get_running_loop()
        forwarding = asyncio.create_task(self.forwarder.run(), name="trackd-celery-forward")
        receiving = loop.run_in_executor(None, self._receive_forever)
        try:
            while not self._stopped.is_set():
                if self._needs_reconcile.is_set():
                    self._needs_reconcile.clear()
                    await self._reconcile()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), timeout=0.2)
        finally:
            self._halt.set()
            await receiving
            self.forwarder.stop()
            await forwarding
        return self.stats

    async def _reconcile(self) -> None:
        window = self._opts.reconcile_window
        backend = self._app.backend
        if window is None or type(backend).__name__ == "DisabledBackend":
            return
        try:
            stats = await reconcile(
                backend,
                self.book,
                self.forwarder.publish,
                window=window,
                store=self._store,
                tenant_id=self._opts.tenant_id,
            )
        except Exception as exc:
            # The backend being away must not stop the live events; the next reconnection
            # tries again.
            log.warning("reconciling from the result backend failed: %r", exc)
            return
        self.stats.reconciled.append(stats)

    # -- the receiver thread --------------------------------------------------------------------

    def _receive_forever(self) -> None:
        """Consume events until halted, reconnecting with backoff when the broker goes away."""
        delay = 0.5
        while not self._halt.is_set():
            try:
                self._receive_once()
                delay = 0.5
            except Exception as exc:
                self._listening.clear()
                if self._halt.is_set():
                    break
                self.stats.reconnects += 1
                log.warning("lost the Celery broker, reconnecting in %.1fs: %r", delay, exc)
                self._halt.wait(delay)
                delay = min(delay * 2, 30.0)
        self._listening.clear()

    def _receive_once(self) -> None:
        from trackd.jobs.celery.receiver import Receiver

        with self._app.connection_for_read() as conn:
            receiver = Receiver(conn, app=self._app, handlers={"*": self._on_event})
            receiver.on_ready = self._on_ready
            receiver.halt = self._halt
            self._receiver = receiver
            # consume() checks should_stop (the halt event) between its one-second waits.
            for _ in receiver.consume(limit=None, timeout=None, wakeup=True):
                pass

    def _on_ready(self) -> None:
        self._listening.set()
        log.info("listening for Celery events")
        self._needs_reconcile.set()

    def _on_event(self, event: dict[str, Any]) -> None:
        self.stats.events += 1
        # Only this thread changes the book; the reconciler's reads are single dict lookups,
        # which the GIL keeps whole.
        envelopes = self.book.translate(event)
        if not envelopes:
            return
        # Waits while the bus is behind: Celery's events then queue up in the broker.
        while not self.forwarder.put(envelopes, timeout=1.0):
            if self._halt.is_set():
                log.warning("stopping with %d events not yet published", len(envelopes))
                return
