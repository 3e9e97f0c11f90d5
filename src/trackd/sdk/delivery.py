"""The background delivery loop: drains the buffer into a sink in batches, by size and by time.

It is one asyncio task, run either in the producer's own event loop (async code) or in a
daemon thread with a loop of its own (sync code). A batch that does not get through is sent
again with backoff, so the events of one task keep their order; a batch the server refuses
for good is reported to the next `flush()`, never dropped quietly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from trackd.sdk.buffer import EventBuffer
from trackd.sdk.sinks import RefusedError, RetryableError, Sink
from trackd.sdk.wire import Pending, Wire, encode

log = logging.getLogger(__name__)

_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0


@dataclass(frozen=True, slots=True)
class TrackerStats:
    """What a tracker did with its events so far."""

    emitted: int  # accepted into the buffer
    delivered: int  # held by the bus or stored by the server
    rejected: int  # refused one by one by the server (logged with the reason)
    dropped: int  # refused as a batch, or given up on when a deadline passed (logged)
    buffered: int  # waiting in the buffer now
    batches: int
    retries: int
    last_error: str | None


@dataclass(slots=True)
class Counters:
    """A tracker's running totals; they outlive any one delivery loop."""

    delivered: int = 0
    rejected: int = 0
    dropped: int = 0
    batches: int = 0
    retries: int = 0
    last_error: str | None = None
    failures: list[str] = field(default_factory=list)  # losses not yet reported by a flush

    def snapshot(self, buffer: EventBuffer) -> TrackerStats:
        return TrackerStats(
            emitted=buffer.accepted,
            delivered=self.delivered,
            rejected=self.rejected,
            dropped=self.dropped,
            buffered=len(buffer),
            batches=self.batches,
            retries=self.retries,
            last_error=self.last_error,
        )


class Delivery:
    """Moves events from `buffer` to the sink `open_sink` makes, until asked to stop."""

    def __init__(
        self,
        buffer: EventBuffer,
        open_sink: Callable[[], Sink],
        counters: Counters,
        *,
        batch_size: int,
        interval: float,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_interval: float | None = None,
    ) -> None:
        self.buffer = buffer
        self.batch_size = batch_size
        self.interval = interval
        self.finished = False
        self.done = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None  # set when it runs
        self.thread_id: int | None = None
        self.task: asyncio.Task[None] | None = None  # when it runs in the producer's loop
        self.counters = counters
        self._open_sink = open_sink
        self._heartbeat = heartbeat
        self._heartbeat_interval = heartbeat_interval
        self._closing = False
        self._abort = False
        self._woken = False
        self._wake: asyncio.Event | None = None
        self._interrupt: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None

    # -- called from any thread ---------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Running, or about to; False once it ended or its event loop stopped running.

        A task cancelled before its first step (its loop ended at once) never runs `run`,
        so the task's own state is looked at too.
        """
        if self.finished or (self.task is not None and self.task.done()):
            return False
        loop = self.loop if self.task is None else self.task.get_loop()
        return loop is None or loop.is_running()

    def on_own_loop(self) -> bool:
        """Whether the caller runs in this delivery's event loop (and so must not block)."""
        if self.finished or self.thread_id != threading.get_ident():
            return False
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def ended(self) -> None:
        self.finished = True
        self.done.set()

    def wake(self) -> None:
        """Publish what is buffered now rather than at the next tick."""
        if self._woken:
            return  # one wake-up is on its way already; waking a loop from a thread costs
        self._woken = True
        self._call(lambda wake: wake.set(), self._wake)

    def close(self, *, abort: bool = False) -> None:
        """Stop after draining the buffer; with `abort`, stop retrying and give up what is left."""
        self._closing = True
        self._abort = self._abort or abort
        if abort:
            self._call(lambda ev: ev.set(), self._interrupt)
        self._woken = False
        self.wake()

    def _call(self, fn: Callable[[asyncio.Event], None], event: asyncio.Event | None) -> None:
        loop = self.loop
        if loop is None or event is None:
            return  # not running yet: it drains the buffer as soon as it starts
        if self.thread_id == threading.get_ident():
            fn(event)
            return
        try:
            loop.call_soon_threadsafe(fn, event)
        except RuntimeError:
            pass  # the loop is closed; the tracker starts a new delivery loop on the next emit

    async def changed(self, within: float) -> None:
        """Wait (in the delivery's own event loop) until some events are settled, or `within` s."""
        event = self._changed
        if event is None:
            await asyncio.sleep(min(within, 0.005))
            return
        try:
            async with asyncio.timeout(within):
                await event.wait()
        except TimeoutError:
            pass

    # -- the task -----------------------------------------------------------------------------

    async def run(self) -> None:
        # The events exist before the loop is published, so a thread that sees the loop can
        # use them; a wake-up that came before is covered by the drain that starts the run.
        self._wake, self._interrupt, self._changed = (
            asyncio.Event(),
            asyncio.Event(),
            asyncio.Event(),
        )
        if self._abort:
            self._interrupt.set()
        self.thread_id = threading.get_ident()
        self.loop = asyncio.get_running_loop()
        self._woken = False
        try:
            sink = self._open_sink()
        except Exception as exc:
            # Reported through the stats and TrackerBufferFull; the next emit tries again.
            log.exception("trackd could not open its sink")
            self.counters.last_error = f"could not open the sink: {exc!r}"
            self.finished = True
            self.done.set()
            return
        next_beat = time.monotonic() + (self._heartbeat_interval or 0.0)
        try:
            while True:
                await self._drain(sink)
                if self._closing:
                    break
                wait = self.interval
                if self._heartbeat is not None and self._heartbeat_interval:
                    wait = min(wait, max(0.0, next_beat - time.monotonic()))
                await self._sleep(self._wake, wait)
                self._wake.clear()
                self._woken = False
                if self._heartbeat is not None and self._heartbeat_interval:
                    now = time.monotonic()
                    if now >= next_beat:
                        self._heartbeat()
                        next_beat = now + self._heartbeat_interval
        except asyncio.CancelledError:
            if len(self.buffer):
                log.warning(
                    "the event loop of a trackd SDK delivery ended with %d events unsent; they go "
                    "out at the next flush or at exit (close the tracker in its loop, with "
                    "`async with Tracker(...)` or `await tracker.aclose()`, to send them there)",
                    len(self.buffer),
                )
            raise
        finally:
            self.finished = True
            try:
                await sink.close()
            finally:
                self._notify()
                self.done.set()

    async def _drain(self, sink: Sink) -> None:
        while batch := self.buffer.take(self.batch_size):
            await self._deliver(sink, batch)
        if self._abort:
            given_up = self.buffer.clear()
            if given_up:
                self._lost(given_up, "closed before they could be sent")

    def _encode(self, batch: Sequence[Pending]) -> list[Wire]:
        """Encode each event once, so every retry sends the same ids; a bad one alone is lost."""
        out: list[Wire] = []
        for item in batch:
            try:
                out.append(encode(item))
            except (ValueError, TypeError, RecursionError) as exc:
                self.counters.rejected += 1
                log.error(
                    "trackd event of task %s cannot be encoded as JSON, not sent: %s",
                    item[1].task_id,
                    exc,
                )
        return out

    async def _deliver(self, sink: Sink, items: Sequence[Pending]) -> None:
        c = self.counters
        batch = self._encode(items)
        delay = _FIRST_BACKOFF
        failures = 0
        while True:
            if self._abort:
                self._lost(len(batch), f"closed before they could be sent ({c.last_error})")
                break
            if not batch:
                break
            try:
                result = await sink.send(batch)
            except asyncio.CancelledError:
                # Their event loop is ending: the next delivery loop (or the one at exit) sends
                # them again, with the same ids.
                self.buffer.requeue(list(items))
                raise
            except RetryableError as exc:
                c.retries += 1
                c.last_error = str(exc)
                if failures % 20 == 0:  # the first failure of a streak, then now and then
                    log.warning("trackd events not sent, retrying: %s", exc)
                failures += 1
                # Jitter keeps many producers from retrying in step; not a security matter.
                pause = exc.retry_after or delay * (0.5 + random.random())  # noqa: S311
                try:
                    await self._sleep(self._interrupt, pause)
                except asyncio.CancelledError:
                    self.buffer.requeue(list(items))
                    raise
                delay = min(delay * 2, _MAX_BACKOFF)
                continue
            except RefusedError as exc:
                c.last_error = str(exc)
                self._lost(len(batch), str(exc))
                break
            except Exception as exc:  # a bug in a sink must not kill the delivery loop
                log.exception("trackd sink failed unexpectedly")
                c.last_error = repr(exc)
                self._lost(len(batch), f"the sink failed: {exc!r}")
                break
            if failures:
                log.info("trackd events sent again after %d failed tries", failures)
            c.batches += 1
            c.delivered += result.delivered
            c.rejected += len(result.rejected)
            for event_id, reason in result.rejected:
                log.error("trackd refused event %s: %s", event_id, reason)
            break
        self.buffer.settle(len(items))
        self._notify()

    def _lost(self, count: int, reason: str) -> None:
        self.counters.dropped += count
        message = f"{count} events were not delivered: {reason}"
        self.counters.failures.append(message)
        log.error("trackd: %s", message)

    def _notify(self) -> None:
        # A new event per generation, so a waiter never misses a set that a clear() undid.
        event, self._changed = self._changed, asyncio.Event()
        if event is not None:
            event.set()

    @staticmethod
    async def _sleep(event: asyncio.Event | None, seconds: float) -> None:
        if event is None or event.is_set():
            return
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            pass
