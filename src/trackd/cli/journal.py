"""`trackd journal import --user U --tenant T FILE.csv`: a user's journal from a CSV file.

The columns are those of `trackd.domain.journal_csv`. Importing a file again changes
nothing: each row is matched by its `id`, else by its timestamp. Any invalid row stops the
import before anything is written (one line per problem), unless `--skip-invalid`;
`--dry-run` does all of it and then rolls it back, reporting what it would have done.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import Annotated

import typer

from trackd.cli.common import DatabaseOpt, fail, load_settings, progress_bar, run
from trackd.domain.journal_csv import BadHeader, Row, read
from trackd.modules import journal
from trackd.store.engine import create_engine, session_factory
from trackd.store.migrate import upgrade

app = typer.Typer(help="A user's journal.", no_args_is_help=True)

# Exit code of an import refused for invalid rows (2 is a command that could not run).
INVALID_ROWS = 1


def _ranges(lines: list[int]) -> str:
    """`2-5, 8`: line numbers, runs joined."""
    parts = []
    for _, run_ in groupby(enumerate(sorted(lines)), key=lambda pair: pair[1] - pair[0]):
        numbers = [n for _, n in run_]
        first, last = numbers[0], numbers[-1]
        parts.append(str(first) if first == last else f"{first}-{last}")
    return ", ".join(parts)


def _rows(path: Path, text_max_length: int) -> list[Row]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return list(read(handle, text_max_length))
    except BadHeader as exc:
        raise fail(f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise fail(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror or exc}") from None


async def _import(
    database_url: str,
    tenant: str,
    user: str,
    path: Path,
    *,
    dry_run: bool,
    skip_invalid: bool,
) -> journal.ImportReport | list[str]:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            config = await journal.observer_config(session, tenant)
            rows = _rows(path, config.text_max_length)
            problems = [f"line {r.line}: {p}" for r in rows for p in r.problems]
            if problems and not skip_invalid and not dry_run:
                return problems
            with progress_bar() as bar:
                task = bar.add_task("importing entries", total=sum(1 for r in rows if r.entry))
                report = await journal.import_rows(
                    session,
                    tenant,
                    user,
                    rows,
                    progress=lambda done: bar.update(task, completed=done),
                )
            # One transaction: a dry run did everything an import does, and takes it back.
            await (session.rollback() if dry_run else session.commit())
            return report
    finally:
        await engine.dispose()


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The CSV file (columns in docs/journal.md).")],
    user: Annotated[str, typer.Option("--user", help="Whose journal.")],
    tenant: Annotated[str, typer.Option("--tenant", help="The user's tenant.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be done; write nothing.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the valid rows, report the others.")
    ] = False,
    database_url: DatabaseOpt = None,
) -> None:
    """Import journal entries from a CSV file; running it again changes nothing."""
    if not user.strip() or not tenant.strip():
        raise fail("--user and --tenant must not be empty")
    settings = load_settings(database_url=database_url)
    result = run(
        _import(
            settings.database_url,
            tenant,
            user,
            file,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
        )
    )
    if isinstance(result, list):
        for problem in result:
            typer.echo(f"error: {problem}", err=True)
        typer.echo(
            f"error: {len(result)} problems; nothing imported (fix them, or --skip-invalid)",
            err=True,
        )
        raise typer.Exit(INVALID_ROWS)
    for problem in result.problems:
        typer.echo(f"{'invalid' if dry_run or skip_invalid else 'error'}: {problem}", err=True)
    verb = "would import" if dry_run else "imported"
    counts = ", ".join(f"{len(lines)} {outcome}" for outcome, lines in result.lines.items())
    typer.echo(f"{verb} {file.name} for {user} of {tenant}: {counts}")
    if dry_run:
        for outcome, lines in result.lines.items():
            if lines:
                typer.echo(f"  {outcome}: lines {_ranges(lines)}")
    if dry_run and result.problems and not skip_invalid:
        raise typer.Exit(INVALID_ROWS)
