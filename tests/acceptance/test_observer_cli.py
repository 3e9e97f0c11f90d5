"""`trackd observer` run as a subprocess against SQLite and PostgreSQL: a journal imported
with `trackd journal import`, analysed with `trackd observer analyze` (the run's summary, and
what it found or that nothing passed), its findings listed as the analysis printed them, the
nightly runs scheduled once; a user without a journal refused in one line."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from procs import clean_env, trackd_executable

from trackd.store.engine import create_engine, session_factory
from trackd.store.repos import observer as observer_repo
from trackd.store.repos import schedules as schedules_repo

pytestmark = pytest.mark.timeout(180)

HEADER = "id,timestamp,mood_score,energy_score,sleep_hours,symptoms,text\n"


def trackd(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [trackd_executable(), *args, "--database-url", database_url],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def journal(tmp_path: Path, days: int) -> Path:
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    rows = [
        f"d{i},{(today - timedelta(days=days - i)).isoformat()},{1 + (i * 7) % 10},"
        f"{1 + (i * 3) % 10},{5 + i % 4},{'headache' if i % 5 == 0 else ''},\n"
        for i in range(days)
    ]
    path = tmp_path / "journal.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


async def test_analyze_prints_the_run_and_findings_lists_them(
    database_url: str, tmp_path: Path
) -> None:
    imported = trackd(
        database_url, "journal", "import", "--user", "ann", "--tenant", "acme",
        str(journal(tmp_path, 45)),
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr

    analysed = trackd(database_url, "observer", "analyze", "--user", "ann", "--tenant", "acme")

    assert analysed.returncode == 0, analysed.stderr
    lines = analysed.stdout.splitlines()
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            (run,) = await observer_repo.runs(session, "acme", "ann", limit=5)
            holding = await observer_repo.findings(session, "acme", "ann", status="holding")
    finally:
        await engine.dispose()
    assert run.status == "completed" and run.tests_run > 0
    assert lines[0] == f"run {run.id} for ann of acme: {run.summary}"
    if run.found == 0:
        assert lines[1] == (
            f"{run.tests_run} tests were run and none passed the false discovery rate "
            "q = 0.1: no finding"
        )
        printed = lines[2:]
    else:
        printed = lines[1:]
    assert len(printed) == len(holding) == run.found
    assert [line.split(" (q = ")[0] for line in printed] == [f"- {f.sentence}" for f in holding]

    listed = trackd(database_url, "observer", "findings", "--user", "ann", "--tenant", "acme")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == (printed or ["no findings for ann of acme"])


async def test_nightly_is_scheduled_once_and_a_user_without_journal_is_refused(
    database_url: str,
) -> None:
    first = trackd(database_url, "observer", "nightly", "--tenant", "acme")
    again = trackd(database_url, "observer", "nightly", "--tenant", "acme")
    nobody = trackd(database_url, "observer", "analyze", "--user", "zed", "--tenant", "acme")

    assert first.stdout == "nightly observer runs scheduled for acme\n", first.stderr
    assert again.stdout == "nightly observer runs already scheduled for acme\n"
    assert nobody.returncode == 2
    assert nobody.stderr.strip().splitlines() == [
        "error: user 'zed' has no journal in tenant 'acme': import one first"
    ]
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            schedules = await schedules_repo.find(session, "acme", source="observer")
    finally:
        await engine.dispose()
    assert len(schedules) == 1 and schedules[0].cron == "30 3 * * *"
