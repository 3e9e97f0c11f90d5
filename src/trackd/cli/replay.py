"""`trackd replay`: rebuild every derived record from the stored event timeline."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress

from trackd.cli.common import DatabaseOpt, fail, load_settings, progress_bar, run
from trackd.ingest.replay import DERIVED_TABLES, ReplayResult
from trackd.ingest.replay import replay as replay_timeline
from trackd.store.engine import create_engine
from trackd.store.migrate import upgrade


async def _replay(database_url: str, batch_size: int, bar: Progress) -> ReplayResult:
    engine = create_engine(database_url)
    task = bar.add_task("replaying events", total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    try:
        await upgrade(engine)
        return await replay_timeline(engine, batch_size=batch_size, progress=advance)
    finally:
        await engine.dispose()


def replay(
    database_url: DatabaseOpt = None,
    # Checked below rather than with min=1, so that a bad value is one line, not a usage box.
    batch_size: Annotated[int, typer.Option("--batch-size", help="Events folded per page.")] = 5000,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            help="Confirm: the derived tables are emptied and written again.",
            show_default=False,
        ),
    ] = False,
) -> None:
    """Rebuild tasks, transitions, plans, metrics and anomalies from the event timeline.

    Runs in one transaction: readers see the old records until it commits. Stop ingest
    (`trackd serve`, `trackd ingest`) while it runs, or events it commits meanwhile may be
    missed or folded twice.
    """
    if not yes:
        raise fail(f"replay rewrites {', '.join(DERIVED_TABLES)}; pass --yes to go ahead")
    if batch_size < 1:
        raise fail(f"--batch-size must be at least 1, not {batch_size}")
    settings = load_settings(database_url=database_url)
    with progress_bar() as bar:
        result = run(_replay(settings.database_url, batch_size, bar))
    rejected = f", {result.rejected} rejected (see dead letters)" if result.rejected else ""
    typer.echo(
        f"replayed {result.events} events{rejected}: {result.tasks} tasks, "
        f"{result.plans} plans in {result.seconds:.1f} s"
    )
