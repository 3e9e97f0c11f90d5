"""The one rule for identifiers (event, task, plan, trace, correlation, user, … ids).

An id trackd accepts must be readable back: it is stored, shown, and put in a URL path
(`/v1/tracker/tasks/{task_id}`). So an id is 1 to `ID_MAX` characters, none of them a control,
format or surrogate character (PostgreSQL cannot store NUL; the others make an id that looks
like another or cannot be written in a URL), no `/` (a path segment ends there, even encoded
as %2F), and not `.` or `..` (clients resolve those as dot segments before sending).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Final

from pydantic import AfterValidator, Field

ID_MAX: Final = 100

# Cc control, Cf format (zero-width and bidi marks), Cs lone surrogates, Co private use.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co"})
_DOT_SEGMENTS: Final = frozenset({".", ".."})


def id_problem(value: str) -> str | None:
    """Why `value` is not an acceptable id, or None when it is."""
    if not value:
        return "must not be empty"
    if len(value) > ID_MAX:
        return f"must be at most {ID_MAX} characters (got {len(value)})"
    # A printable string holds none of the refused categories: only others are looked into.
    for position, char in enumerate("" if value.isprintable() else value):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return (
                f"must not contain control characters or other invisible ones "
                f"(U+{ord(char):04X} at position {position})"
            )
    if "/" in value:
        return "must not contain '/' (ids are used as URL path segments)"
    if value in _DOT_SEGMENTS:
        return f"must not be {value!r} (a URL dot segment)"
    return None


def _valid(value: str) -> str:
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(f"an id {problem}")
    return value


Identifier = Annotated[str, Field(min_length=1, max_length=ID_MAX), AfterValidator(_valid)]
"""A string field that follows the id rule (for pydantic models)."""
