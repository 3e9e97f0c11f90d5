"""`trackd plans show`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from trackd.cli.common import DatabaseOpt, load_settings, run
from trackd.reads import service as reads
from trackd.store.engine import create_engine, session_factory

app = typer.Typer(help="Plans.", no_args_is_help=True)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="seconds")  # type: ignore[no-any-return]
    return str(value)


async def _load(
    database_url: str,
    tenant: str,
    plan_id: str,
) -> tuple[reads.PlanStatusView, reads.PlanTasksView]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return (
                await reads.plan_status(session, tenant, plan_id),
                await reads.plan_tasks(session, tenant, plan_id),
            )
    finally:
        await engine.dispose()


@app.command("show")
def show(
    plan_id: Annotated[str, typer.Argument(help="The plan to show.")],
    tenant: Annotated[
        str | None, typer.Option(help="Tenant (default: TRACKD_DEFAULT_TENANT).")
    ] = None,
    database_url: DatabaseOpt = None,
) -> None:
    """Show a plan's status and its tasks as a table."""
    settings = load_settings(database_url=database_url)
    status, tasks = run(_load(settings.database_url, tenant or settings.default_tenant, plan_id))
    console = Console()
    p = status.plan
    console.print(
        f"[bold]plan {p.plan_id}[/bold]  status={p.status}  state={_fmt(p.current_state)}  "
        f"started={_fmt(status.started_at)}  completed={_fmt(p.completed_at)}\n"
        f"tasks={status.task_count}  completed={status.completed_tasks}  "
        f"failed={status.failed_tasks}  as_of={_fmt(status.as_of)}"
    )
    table = Table("task", "type", "state", "progress", "attempts", "agent", "started", "duration s")
    for t in tasks.tasks:
        progress = "-" if t.progress is None else f"{t.progress:.0%}"
        table.add_row(
            t.task_id,
            t.event_type,
            t.state,
            progress,
            str(t.attempt),
            _fmt(t.agent_id),
            _fmt(t.started_at),
            _fmt(t.duration_seconds),
        )
    console.print(table)
