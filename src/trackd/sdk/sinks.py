"""Where a delivery loop sends its batches: a bus, or a trackd server over HTTP (`http.py`).

A sink turns a batch of encoded events into one outcome: sent (the server may still have
rejected some, one by one), worth retrying (`RetryableError`: the bus or server is away) or
refused for good (`RefusedError`: sending it again would get the same answer). Retrying
sends the very same bytes, ids included, so an event that got through twice is deduplicated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from trackd.bus.base import Bus
from trackd.sdk.wire import TOPIC, Wire


@dataclass(slots=True)
class SendResult:
    """What became of a batch the sink accepted."""

    delivered: int = 0
    rejected: list[tuple[str | None, str]] = field(default_factory=list)  # (event id, reason)


class RetryableError(Exception):
    """The batch did not get through this time; the same batch may be sent again."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RefusedError(Exception):
    """The batch was refused for a reason that sending it again would not change."""


class Sink(Protocol):
    async def send(self, batch: Sequence[Wire]) -> SendResult: ...

    async def close(self) -> None: ...


class BusSink:
    """Publishes straight onto a bus, partitioned by task id as the HTTP intake does."""

    def __init__(self, bus: Bus, *, owned: bool) -> None:
        self._bus = bus
        self._owned = owned

    async def send(self, batch: Sequence[Wire]) -> SendResult:
        try:
            await self._bus.publish(TOPIC, [w[2] for w in batch], [w[1] for w in batch])
        except Exception as exc:
            # Any failure of the bus is taken as the bus being away: the batch is kept and
            # sent again.
            raise RetryableError(f"publishing to the bus failed: {exc!r}") from exc
        return SendResult(delivered=len(batch))

    async def close(self) -> None:
        if self._owned:
            await self._bus.close()
