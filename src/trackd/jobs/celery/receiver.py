"""Celery's event receiver as trackd needs it: true timestamps, a ready signal, a stop flag.

Imported only where Celery is installed (`pip install 'trackd[celery]'`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from celery.events.receiver import EventReceiver


class Receiver(EventReceiver):  # type: ignore[misc]  # Celery has no type hints
    """An `EventReceiver` that keeps each event's own timestamp and can be told to stop."""

    halt: threading.Event | None = None
    on_ready: Callable[[], None] | None = None

    @property
    def should_stop(self) -> bool:  # read by kombu's consume loop between waits
        return self.halt is not None and self.halt.is_set()

    @should_stop.setter
    def should_stop(self, value: bool) -> None:
        if value and self.halt is not None:
            self.halt.set()

    def event_from_message(self, body: dict[str, Any], localize: bool = True, **kwargs: Any) -> Any:
        # Celery "localizes" timestamps into the receiver's local time for display; trackd
        # stores true UTC instants, so the sender's epoch timestamp is kept as it is.
        return super().event_from_message(body, localize=False, **kwargs)

    def on_consume_ready(
        self, connection: Any, channel: Any, consumers: Any, **kwargs: Any
    ) -> None:
        super().on_consume_ready(connection, channel, consumers, **kwargs)
        if self.on_ready is not None:
            self.on_ready()
