"""Journal entries from a CSV file (`trackd journal import`).

The first row names the columns, in any order:

- `timestamp` (required): ISO 8601 with a UTC offset, `2026-03-01T08:30:00+01:00`;
- `mood_score`, `energy_score` (required): whole numbers 1-10;
- `id`: the entry's own id (importing the file again updates that entry, or leaves it);
  without it, an entry at the same timestamp is the one updated;
- `sleep_hours`: 0-24; `symptoms`: tags separated by `;`; `text`;
- `metric:<name>`: one column per custom metric (`metric:steps`), a number.

An empty cell is a value not given. Any other column is refused, so a misspelt header is
not silently dropped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from trackd.domain.journal import InvalidEntry, JournalEntryIn, check_text

REQUIRED = ("timestamp", "mood_score", "energy_score")
OPTIONAL = ("id", "sleep_hours", "symptoms", "text")
METRIC_COLUMN = "metric:"
TAG_SEPARATOR = ";"


class BadHeader(ValueError):
    """The file's first row is not a header this importer reads; the message says why."""


@dataclass(frozen=True, slots=True)
class Row:
    """One data row: its line in the file, and the entry or what is wrong with it."""

    line: int
    entry: JournalEntryIn | None
    problems: tuple[str, ...] = ()


def _columns(header: list[str]) -> list[str]:
    names = [name.strip() for name in header]
    if not any(names):
        raise BadHeader("the file is empty: its first row must name the columns")
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL and not n.startswith(METRIC_COLUMN)]
    if unknown:
        raise BadHeader(
            f"unknown columns {', '.join(map(repr, unknown))}: use "
            f"{', '.join(REQUIRED + OPTIONAL)} or metric:<name>"
        )
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise BadHeader(f"missing columns: {', '.join(missing)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BadHeader(f"repeated columns: {', '.join(repeated)}")
    return names


def _fields(names: list[str], cells: list[str]) -> dict[str, Any]:
    given: dict[str, Any] = {}
    metrics: dict[str, str] = {}
    for name, cell in zip(names, cells, strict=False):
        value = cell.strip()
        if not value:
            continue
        if name.startswith(METRIC_COLUMN):
            metrics[name.removeprefix(METRIC_COLUMN)] = value
        elif name == "symptoms":
            given[name] = [tag for tag in value.split(TAG_SEPARATOR) if tag.strip()]
        else:
            given[name] = cell if name == "text" else value
    if metrics:
        given["metrics"] = metrics
    return given


def _where(error: Any) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    if loc[:1] == ["metrics"] and len(loc) > 1:
        return f"{METRIC_COLUMN}{loc[1]}"
    return ".".join(loc) or "row"


def read(lines: Iterable[str], text_max_length: int) -> Iterator[Row]:
    """The rows of a CSV file (its lines), each checked as the API checks an entry.

    Raises:
        BadHeader: the first row is not a header this reads (nothing is read then).
    """
    reader = csv.reader(iter(lines))
    names = _columns(next(reader, []))
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(names):
            yield Row(line, None, (f"{len(cells)} cells but {len(names)} columns",))
            continue
        try:
            entry = JournalEntryIn.model_validate(_fields(names, cells))
            check_text(entry.text, text_max_length)
        except ValidationError as exc:
            yield Row(line, None, tuple(f"{_where(e)}: {e['msg']}" for e in exc.errors()))
        except InvalidEntry as exc:
            yield Row(line, None, (str(exc),))
        else:
            yield Row(line, entry)
