"""The Tracker's background delivery loop: batching, the bounded buffer, flush, close, retries."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from sdk_fakes import FlakyBus, GatedBus, RecordingBus, states

from trackd.bus.memory import MemoryBus
from trackd.errors import ConfigError
from trackd.sdk import Tracker, TrackerBufferFull, TrackerDeliveryFailed, TrackerError
from trackd.sdk.buffer import EventBuffer


def run_tasks(tracker: Tracker, count: int, first: int = 0) -> None:
    for i in range(first, first + count):
        with tracker.track("job", task_id=f"job-{i}"):
            pass


def test_a_full_batch_goes_out_without_waiting_for_the_interval() -> None:
    bus = RecordingBus()
    with Tracker(bus=bus, batch_size=10, flush_interval=30) as tracker:
        run_tasks(tracker, 10)  # 30 events
        bus.wait_for(20, within=5)  # long before the 30 s interval
        assert bus.batches[0] >= 10
    assert len(bus.events) == 30


def test_a_partial_batch_goes_out_after_the_interval() -> None:
    bus = RecordingBus()
    with Tracker(bus=bus, batch_size=1000, flush_interval=0.05) as tracker:
        run_tasks(tracker, 1)
        bus.wait_for(3, within=5)  # no flush: the interval sends it


def test_flush_and_close_deliver_everything_in_order() -> None:
    bus = RecordingBus()
    tracker = Tracker(bus=bus, batch_size=64)
    run_tasks(tracker, 500)
    tracker.flush()
    assert len(bus.events) == 1500
    run_tasks(tracker, 100, first=500)
    tracker.close()
    assert len(bus.events) == 1800
    stats = tracker.stats
    assert (stats.emitted, stats.delivered, stats.dropped, stats.buffered) == (1800, 1800, 0, 0)
    for i in (0, 299, 599):  # from the first, the middle and the last batches
        events = bus.of_task(f"job-{i}")
        assert [e["sequence"] for e in events] == [0, 1, 2]
        assert states(events) == ["pending", "running", "completed"]
    with pytest.raises(TrackerError, match="closed"):
        run_tasks(tracker, 1)
    tracker.close()  # closing twice is harmless


def test_producers_on_many_threads_lose_and_double_nothing_while_delivery_drains() -> None:
    # Producers add to the buffer without a lock while the delivery thread takes batches.
    bus = RecordingBus()
    tracker = Tracker(bus=bus, batch_size=50, max_buffer=100_000)
    threads = [threading.Thread(target=run_tasks, args=(tracker, 400, n * 400)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tracker.flush()
    stats = tracker.stats
    assert (stats.emitted, stats.delivered, stats.buffered) == (7200, 7200, 0)
    assert sorted(e["id"] for e in bus.events) == sorted({e["id"] for e in bus.events})
    assert {e["data"]["task_id"] for e in bus.events} == {f"job-{i}" for i in range(2400)}
    tracker.close()


def test_an_offer_taken_at_once_by_the_delivery_thread_still_counts_as_taken() -> None:
    # The delivery thread may take the events between a producer's add and its return: the
    # answer must still say they were taken, or the producer would add them a second time.
    class TakenAtOnce(deque[Any]):
        def extend(self, items: Iterable[Any]) -> None:
            super().extend(items)
            self.clear()

    buffer = EventBuffer(10)
    buffer._items = TakenAtOnce()
    item: Any = (0.0, None, 0, 0, None)
    assert buffer.offer((item, item)) == 2


def test_a_full_buffer_raises_after_the_timeout_and_loses_nothing_it_took() -> None:
    bus = GatedBus()  # takes nothing until the gate opens
    tracker = Tracker(bus=bus, max_buffer=20, batch_size=5, emit_timeout=0.1)
    try:
        started = time.monotonic()
        with pytest.raises(TrackerBufferFull, match="not taken") as raised:
            for i in range(100):
                with tracker.track("job", task_id=f"job-{i}"):
                    pass
        assert time.monotonic() - started >= 0.1
        assert "raise max_buffer" in str(raised.value)
        taken = tracker.stats.emitted
        assert 20 <= taken <= 25  # the buffer, plus the one batch the delivery loop holds
        assert tracker.stats.buffered <= 20
        bus.gate.set()
        tracker.flush()
        assert len(bus.events) == taken
        assert tracker.stats.delivered == taken
        assert tracker.stats.dropped == 0
    finally:
        bus.gate.set()
        tracker.close()


def test_a_blocked_emit_goes_through_when_room_comes_in_time() -> None:
    bus = GatedBus()
    tracker = Tracker(bus=bus, max_buffer=4, batch_size=2, emit_timeout=5)
    try:
        run_tasks(tracker, 2)  # 6 events: 2 in flight, 4 buffered
        threading.Timer(0.1, bus.gate.set).start()
        started = time.monotonic()
        run_tasks(tracker, 1, first=2)  # waits for room, then succeeds
        assert time.monotonic() - started >= 0.05
        tracker.flush()
        assert len(bus.events) == 9
    finally:
        bus.gate.set()
        tracker.close()


async def test_in_async_code_a_full_buffer_raises_at_once_for_sync_calls_and_waits_for_async() -> (
    None
):
    bus = GatedBus()
    tracker = Tracker(bus=bus, max_buffer=4, batch_size=2, emit_timeout=0.2)
    try:
        async with tracker.track("a") as task:  # 2 events, taken by the delivery loop
            await asyncio.sleep(0.05)
            async with tracker.track("b"):  # 2 more: the buffer holds 2 of 4
                async with tracker.track("c"):  # full now
                    started = time.monotonic()
                    with pytest.raises(TrackerBufferFull, match="cannot wait"):
                        task.progress(0.5)  # a sync call in the loop that publishes
                    assert time.monotonic() - started < 0.1
                    asyncio.get_running_loop().call_later(0.05, bus.gate.set)
        # The async exits waited for room instead of failing.
        await tracker.aflush()
        assert states(bus.events).count("completed") == 3
    finally:
        bus.gate.set()
        await tracker.aclose()


async def test_async_with_publishes_from_a_task_in_the_running_loop() -> None:
    bus = RecordingBus()
    async with Tracker(bus=bus) as tracker:
        assert tracker._thread is None
        async with tracker.track("job"):
            pass
    assert len(bus.events) == 3


def test_a_bus_that_fails_for_a_while_is_retried_with_the_same_events() -> None:
    bus = FlakyBus(failures=3)
    with Tracker(bus=bus, batch_size=100) as tracker:
        run_tasks(tracker, 50)
        tracker.flush(timeout=10)
        assert tracker.stats.retries == 3
        assert tracker.stats.last_error is not None
        assert "bus unavailable" in tracker.stats.last_error
    assert len(bus.events) == 150
    assert len({e["id"] for e in bus.events}) == 150
    assert states(bus.of_task("job-7")) == ["pending", "running", "completed"]


def test_close_with_the_bus_down_says_how_many_events_were_not_delivered() -> None:
    bus = FlakyBus(failures=10**9)
    tracker = Tracker(bus=bus)
    run_tasks(tracker, 4)
    with pytest.raises(TrackerDeliveryFailed, match=r"12 events were not delivered") as raised:
        tracker.close(timeout=0.3)
    assert "bus unavailable" in str(raised.value)
    assert tracker.stats.dropped == 12
    assert tracker._thread is not None and not tracker._thread.is_alive()


def test_a_url_or_a_bus_but_not_both_and_not_memory_urls() -> None:
    with pytest.raises(ValueError, match="either a url or a bus"):
        Tracker()
    with pytest.raises(ValueError, match="either a url or a bus"):
        Tracker("http://localhost:8000", bus=RecordingBus())
    with pytest.raises(ConfigError, match=r"Tracker\(bus=runtime.bus\)"):
        Tracker("memory://")
    with pytest.raises(ConfigError, match="unsupported bus URL"):
        Tracker("kafka://localhost:9092")


def test_a_memory_bus_must_be_published_to_from_its_event_loop() -> None:
    tracker = Tracker(bus=MemoryBus())
    with pytest.raises(ConfigError, match="async code"), tracker.track("job"):
        pass
    tracker.close()


def test_bad_settings_are_refused() -> None:
    for kwargs in ({"batch_size": 0}, {"flush_interval": 0}, {"heartbeat_interval": 0}):
        with pytest.raises(ValueError):
            Tracker(bus=RecordingBus(), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_buffer"):
        Tracker(bus=RecordingBus(), max_buffer=0)


def test_events_left_at_interpreter_exit_are_delivered(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    script = textwrap.dedent(
        f"""
        from trackd.sdk import Tracker, configure, tracked

        class FileBus:
            async def publish(self, topic, bodies, keys=None):
                with open({str(out)!r}, "ab") as f:
                    f.writelines(b + b"\\n" for b in bodies)
            async def subscribe(self, *args): raise NotImplementedError
            async def close(self): pass

        configure(Tracker(bus=FileBus(), flush_interval=60))

        @tracked
        def job(): pass

        for _ in range(5):
            job()
        # no flush, no close: the interpreter's exit sends what is buffered
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert len(out.read_bytes().splitlines()) == 15


@pytest.mark.parametrize("linger", [0.0, 0.05], ids=["before-it-starts", "while-sending"])
def test_events_an_ending_event_loop_left_behind_go_out_with_the_next_flush(
    linger: float,
) -> None:
    bus = GatedBus()  # nothing gets through while the loop lives
    tracker = Tracker(bus=bus, flush_interval=0.01)

    async def main() -> None:
        with tracker.track("last-words", task_id="last"):  # publishes from this loop
            pass
        await asyncio.sleep(linger)
        # asyncio.run now cancels the delivery loop: before its first step, or mid-publish

    asyncio.run(main())
    assert bus.events == []
    bus.gate.set()
    tracker.close()  # from sync code: a delivery thread sends what the loop left
    assert states(bus.of_task("last")) == ["pending", "running", "completed"]
    assert tracker.stats.dropped == 0
