"""Path parameters both HTTP faces take: a plan's and a task's id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# No control characters: PostgreSQL cannot even compare text with a NUL in it.
PRINTABLE = r"^[^\x00-\x1f]+$"
PlanId = Annotated[str, Path(min_length=1, max_length=100, pattern=PRINTABLE)]
TaskId = Annotated[str, Path(min_length=1, max_length=100, pattern=PRINTABLE)]
