"""`trackd jobs`: application job tracking tables (trackd.jobs). `import-legacy` parses its
options, runs the legacy import (`trackd.jobs.legacy`) and prints what it did."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from trackd.cli.common import fail, progress_bar, run
from trackd.jobs.legacy import import_rows
from trackd.jobs.models import DEFAULT_TENANT

app = typer.Typer(help="Application job tracking tables (trackd.jobs).", no_args_is_help=True)


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise fail(f"{option} takes KEY=VALUE, got {raw!r}")
        out[key.strip()] = value.strip()
    return out


@app.command("import-legacy")
def import_legacy(
    database_url: Annotated[
        str,
        typer.Option("--database-url", help="The application's database (holds both tables)."),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--target-table", help="The tracking table, e.g. etf_price_update_task_tracking."
        ),
    ],
    source: Annotated[
        str, typer.Option("--source-table", help="The legacy status table.")
    ] = "task_status",
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            help="Only rows with COLUMN=VALUE, e.g. task_type=etf_price_update (repeatable).",
        ),
    ] = None,
    maps: Annotated[
        list[str] | None,
        typer.Option(
            "--map", help="Copy TARGET column from SOURCE column: TARGET=SOURCE (repeatable)."
        ),
    ] = None,
    status_map: Annotated[
        list[str] | None,
        typer.Option(
            "--status-map", help="Map a legacy status: OLD=NEW, e.g. QUEUED=pending (repeatable)."
        ),
    ] = None,
    tenant: Annotated[
        str, typer.Option("--tenant", help="Tenant of the imported rows.")
    ] = DEFAULT_TENANT,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and count; write nothing.")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Rows per insert.")] = 500,
) -> None:
    """Copy the rows of a legacy status table into a domain tracking table.

    Statuses map onto trackd's (PENDING, PROCESSING, SUCCESS/COMPLETED, FAILURE/FAILED,
    REVOKED/CANCELLED, RETRY, …); naive legacy timestamps are taken as UTC. Rows already
    imported are skipped, so running it twice copies nothing twice.
    """
    if batch_size < 1:
        raise fail(f"--batch-size must be at least 1, not {batch_size}")
    if not tenant or len(tenant) > 100:
        raise fail("--tenant is 1 to 100 characters")
    wheres = _pairs(where or [], "--where")
    mapping = _pairs(maps or [], "--map")
    statuses = _pairs(status_map or [], "--status-map")
    with progress_bar(remaining=False) as bar:
        task = bar.add_task(f"importing {source} → {target}", total=None)
        outcome = run(
            import_rows(
                database_url,
                source=source,
                target=target,
                where=wheres,
                maps=mapping,
                status_map=statuses,
                tenant_id=tenant,
                dry_run=dry_run,
                batch_size=batch_size,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        )
    skipped = f" ({outcome.skipped} imported before, skipped)" if outcome.skipped else ""
    if dry_run:
        typer.echo(
            f"dry run: would import {outcome.imported} of {outcome.total} rows from {source} "
            f"into {target}{skipped}; nothing was written"
        )
    else:
        counts = f"{outcome.imported} of {outcome.total} rows"
        typer.echo(f"imported {counts} from {source} into {target}{skipped}")
