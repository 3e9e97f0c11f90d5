"""Messages for people (Discord, apprise): a title and one line per changed field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

TEST_EVENT: Final = "notification.test"
_MISSING: Final = "—"


def value_text(value: Any, limit: int = 200) -> str:
    if value is None:
        return _MISSING
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def title(event_type: str, payload: Mapping[str, Any]) -> str:
    if event_type == TEST_EVENT:
        return "trackd test notification"
    if payload.get("summary"):
        return str(payload["summary"])
    subject = payload.get("subject") or "something"
    return f"{subject} changed"


def context(payload: Mapping[str, Any]) -> str:
    """Where the change happened: the source and, if any, the season."""
    parts = [str(payload.get("source") or "trackd")]
    if payload.get("season"):
        parts.append(f"season {payload['season']}")
    return " · ".join(parts)


def field_lines(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, "old → new") for each change."""
    lines = []
    for change in payload.get("changes") or ():
        kind = change.get("kind")
        if kind == "added":
            text = f"{value_text(change.get('new'))} (new)"
        elif kind == "removed":
            text = f"{value_text(change.get('old'))} (removed)"
        else:
            text = f"{value_text(change.get('old'))} → {value_text(change.get('new'))}"
        lines.append((str(change.get("path")), text))
    return lines


def plain_text(event_type: str, payload: Mapping[str, Any], limit: int = 4000) -> str:
    if event_type == TEST_EVENT:
        return str(payload.get("message") or "This channel works.")
    body = "\n".join(f"{path}: {text}" for path, text in field_lines(payload))
    text = f"{context(payload)}\n{body}".strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
