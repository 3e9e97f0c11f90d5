"""`trackd journal import` run as a subprocess against SQLite and PostgreSQL: a first import,
the same file again changing nothing, a dry run that reports and writes nothing, invalid rows
refused line by line (or skipped on request), and a bad file refused in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from procs import clean_env, trackd_executable

from trackd.store.engine import create_engine, session_factory
from trackd.store.repos import journal as journal_repo

pytestmark = pytest.mark.timeout(120)

HEADER = "id,timestamp,mood_score,energy_score,sleep_hours,symptoms,text,metric:steps\n"
ROWS = [
    "morning-1,2026-03-01T08:00:00+01:00,5,6,7.5,headache;fatigue,slow start,4200\n",
    ',2026-03-01T21:00:00+01:00,7,4,,,"dinner, then a walk",9100\n',
    ",2026-03-02T08:00:00+01:00,3,3,5,insomnia,,\n",
    "morning-3,2026-03-03T08:00:00+01:00,8,8,8,,,\n",
]


def trackd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [trackd_executable(), *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def journal_import(database_url: str, path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return trackd(
        "journal", "import", "--user", "ann", "--tenant", "acme", str(path),
        "--database-url", database_url, *flags,
    )  # fmt: skip


async def stored(database_url: str, user: str = "ann") -> list[tuple[str, int, float | None]]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            rows = await journal_repo.between(session, "acme", user, None, None)
            return [(r.timestamp.isoformat(), r.mood_score, r.metrics.get("steps")) for r in rows]
    finally:
        await engine.dispose()


def write(tmp_path: Path, *rows: str, name: str = "journal.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


async def test_import_is_idempotent_and_a_dry_run_writes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    path = write(tmp_path, *ROWS)

    first = journal_import(database_url, path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "imported journal.csv for ann of acme: 4 new, 0 updated, 0 unchanged, 0 invalid"
    ]
    entries = await stored(database_url)
    assert entries == [
        ("2026-03-01T07:00:00+00:00", 5, 4200.0),
        ("2026-03-01T20:00:00+00:00", 7, 9100.0),
        ("2026-03-02T07:00:00+00:00", 3, None),
        ("2026-03-03T07:00:00+00:00", 8, None),
    ]

    again = journal_import(database_url, path)
    assert again.returncode == 0, again.stderr
    assert "0 new, 0 updated, 4 unchanged, 0 invalid" in again.stdout
    assert await stored(database_url) == entries

    # Row 2 (no id: found by its timestamp) and row 4 (by its id) change; one row is new.
    changed = write(
        tmp_path,
        ROWS[0],
        ROWS[1].replace(",7,4,", ",9,4,"),
        ROWS[2],
        ROWS[3].replace(",8,8,", ",6,8,"),
        ",2026-03-04T08:00:00+01:00,5,5,,,,\n",
        name="changed.csv",
    )
    dry = journal_import(database_url, changed, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "would import changed.csv for ann of acme: 1 new, 2 updated, 2 unchanged, 0 invalid",
        "  new: lines 6",
        "  updated: lines 3, 5",
        "  unchanged: lines 2, 4",
    ]
    assert await stored(database_url) == entries

    done = journal_import(database_url, changed)
    assert done.returncode == 0, done.stderr
    assert "1 new, 2 updated, 2 unchanged, 0 invalid" in done.stdout
    moods = [mood for _, mood, _ in await stored(database_url)]
    assert moods == [5, 9, 3, 6, 5]
    # Another user of the tenant has no journal.
    assert await stored(database_url, user="bob") == []


async def test_invalid_rows_stop_the_import_unless_skipped(
    database_url: str, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        ROWS[0],
        ",2026-03-02T08:00:00,11,6,,,,\n",
        ROWS[2],
        "x,2026-03-05T08:00:00+01:00,5,5,30,Bad Tag,,many\n",
    )

    refused = journal_import(database_url, path)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "error: line 3: timestamp: Input should have timezone info",
        "error: line 3: mood_score: Input should be less than or equal to 10",
        "error: line 5: sleep_hours: Input should be less than or equal to 24",
        "error: line 5: symptoms.0: String should match pattern '^[a-z0-9][a-z0-9_\\-]{0,63}$'",
        "error: line 5: metric:steps: Input should be a valid number, "
        "unable to parse string as a number",
        "error: 5 problems; nothing imported (fix them, or --skip-invalid)",
    ]
    assert await stored(database_url) == []

    dry = journal_import(database_url, path, "--dry-run")
    assert dry.returncode == 1
    assert "would import journal.csv for ann of acme: 2 new, 0 updated, 0 unchanged, 2 invalid" in (
        dry.stdout
    )
    assert "  invalid: lines 3, 5" in dry.stdout
    assert "invalid: line 3: mood_score" in dry.stderr
    assert await stored(database_url) == []

    skipped = journal_import(database_url, path, "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert "2 new, 0 updated, 0 unchanged, 2 invalid" in skipped.stdout
    assert "invalid: line 5: sleep_hours" in skipped.stderr
    assert [mood for _, mood, _ in await stored(database_url)] == [5, 3]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("timestamp,mood,energy_score\n", "unknown columns 'mood'"),
        ("timestamp,mood_score\n", "missing columns: energy_score"),
        (None, "No such file or directory"),
    ],
)
def test_a_bad_file_is_one_line(
    database_url: str, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "journal.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    done = journal_import(database_url, path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {path}: ") and message in lines[0]


def test_empty_user_is_refused(database_url: str, tmp_path: Path) -> None:
    path = write(tmp_path, ROWS[0])
    done = trackd(
        "journal", "import", "--user", " ", "--tenant", "acme", str(path),
        "--database-url", database_url,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --user and --tenant must not be empty"
