"""`trackd replay`, run as a subprocess on a SQLite file the way people run it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from procs import trackd

from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.testing import EventFactory, publish_events, research_workflow


async def ingest_research_workflow(database_url: str) -> int:
    """Store the seed workflow through a runtime in this process; returns the event count."""
    runtime = Runtime.build(Settings(database_url=database_url))
    await runtime.start()
    try:
        events = research_workflow(EventFactory(now=datetime(2026, 1, 11, 10, 0, tzinfo=UTC)))
        return await publish_events(runtime.bus, events)
    finally:
        await runtime.stop()


async def test_replay_rebuilds_the_records_and_prints_a_summary(database_file: str) -> None:
    events = await ingest_research_workflow(database_file)

    done = trackd("replay", "--yes", "--batch-size", "4", "--database-url", database_file)

    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        rf"replayed {events} events: 3 tasks, 1 plans in \d+\.\d s\n", done.stdout
    ), done.stdout
    shown = trackd("plans", "show", "plan-123", "--database-url", database_file)
    assert shown.returncode == 0, shown.stderr
    assert "status=completed" in shown.stdout
    assert "tasks=3  completed=3  failed=0" in shown.stdout


@pytest.mark.parametrize("args", [(), ("--batch-size", "0", "--yes")])
def test_replay_without_confirmation_or_with_a_bad_batch_size_fails_with_one_line(
    database_file: str, args: tuple[str, ...]
) -> None:
    done = trackd("replay", "--database-url", database_file, *args)

    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert ("--yes" if not args else "--batch-size") in lines[0]
    assert not Path(database_file.removeprefix("sqlite+aiosqlite:///")).exists()
