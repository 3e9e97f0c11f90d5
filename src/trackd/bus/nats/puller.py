"""Pulling a JetStream durable consumer into a subscription's buffer, one request at a time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as CoreSubscription
from nats.js.client import JetStreamContext

from trackd.bus.nats.buffer import Buffer
from trackd.bus.nats.connection import NATS_FAILURES
from trackd.bus.nats.messages import Delivery, jetstream_message

log = logging.getLogger(__name__)

# Idle pull consumers ask again after this long, doubling up to the most; a message waits
# at most that long once ingest has caught up.
_PULL_IDLE_MIN = 0.01
_PULL_IDLE_MAX = 0.2
_JS_API = "$JS.API"  # JetStream's API subjects in the default domain
_PULL_LOST = 5.0  # seconds without an answer before a pull request is taken for lost
_STATUS_HEARTBEAT = "100"
_STATUS_ENDED = {"404", "408"}  # nothing to deliver; the end of what there was


class Puller:
    """Pulls one durable consumer's messages into the buffer, one request at a time.

    Each request is followed to its end (its batch filled, or the server's status saying it
    ended) before the next, so none outlives the loop. nats-py's `fetch` returns while its
    request may still wait on the server, and a request whose subscriber has gone takes
    messages that then sit until `ack_wait` (nats-server 2.9 even hands it nacked ones).
    """

    def __init__(self, nc: Client, stream: str, durable: str, topic: str, buffer: Buffer) -> None:
        self._nc = nc
        self._next = f"{_JS_API}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self._topic = topic
        self._buffer = buffer
        self._owed = 0  # messages the request in flight may still bring; room is reserved
        self._ended = asyncio.Event()
        self._sub: CoreSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._share = 1  # the most room one request takes
        self._requesting = False
        self._stopping = False

    async def start(self, share: int) -> None:
        self._share = share
        self._sub = await self._nc.subscribe(self._inbox, cb=self._receive)
        self._task = asyncio.create_task(self._run(), name=f"nats-pull-{self._topic}")

    async def stop(self) -> None:
        """End the loop once its request in flight has ended; then stop listening."""
        self._stopping = True
        task = self._task
        if task is not None:
            if not self._requesting:
                task.cancel()  # waiting for room, with no request on the server
            await asyncio.wait([task])
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.error("nats pull loop failed topic=%s: %r", self._topic, exc)
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):  # gone with its connection
                await self._sub.unsubscribe()

    async def _run(self) -> None:
        idle = _PULL_IDLE_MIN
        failures = 0
        while not self._stopping:
            received, failure = await self._request(await self._buffer.reserve(self._share))
            if self._stopping:
                break
            if failure is not None:
                failures += 1
                delay = min(0.5 * 2**failures, 10.0)
                log.warning(
                    "nats pull failed topic=%s, retrying in %.1fs: %r", self._topic, delay, failure
                )
                await asyncio.sleep(delay)
            elif received:
                failures, idle = 0, _PULL_IDLE_MIN
            else:
                failures = 0
                await asyncio.sleep(idle)
                idle = min(idle * 2, _PULL_IDLE_MAX)

    async def _request(self, room: int) -> tuple[int, Exception | None]:
        """Ask for up to `room` messages and wait for the answer to end; how many came, and
        the error that cut it short, if any.

        `no_wait`: the server answers at once with what it has and an end-of-batch status, so
        no request is ever left waiting on it. Waiting requests are what nats-server 2.9
        mishandles: one expiring as nacked messages are redelivered can swallow a message
        (back only after `ack_wait`) and stall the consumer's other requests.
        """
        self._requesting = True
        self._owed = room
        self._ended.clear()
        request = {"batch": room, "no_wait": True}
        try:
            await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
            # Not hearing the end means the connection dropped, and the request with it.
            async with asyncio.timeout(_PULL_LOST):
                await self._ended.wait()
        except NATS_FAILURES as exc:
            return room - self._owed, exc
        finally:
            self._requesting = False
            received = room - self._owed
            self._buffer.put([], self._owed)  # give back the room no message took
            self._owed = 0
        return received, None

    async def _receive(self, raw: Msg) -> None:
        status = JetStreamContext.is_status_msg(raw)
        if status is not None:
            if status != _STATUS_HEARTBEAT:
                if status not in _STATUS_ENDED:
                    log.warning(
                        "nats pull ended topic=%s status=%s %s", self._topic, status, raw.headers
                    )
                self._ended.set()
            return
        delivery = Delivery(jetstream_message(raw, self._topic), raw)
        # A message after its request ended (it crossed a reconnect) has no room reserved;
        # it is kept anyway, one over the bound, rather than left to wait for ack_wait.
        owed = 1 if self._owed > 0 else 0
        self._owed -= owed
        self._buffer.put([delivery], owed)
        if self._owed == 0 and owed:
            self._ended.set()
