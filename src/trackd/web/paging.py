"""Cursors of the dashboard's paged lists: where the next page starts, opaque in URLs."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from trackd.web.render import PageError

DAMAGED = "the page link is damaged: start again from the first page"


def encode(cursor: tuple[datetime, UUID]) -> str:
    """(time, row id) of the last row shown, as one URL-safe token."""
    at, row_id = cursor
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> tuple[datetime, UUID]:
    """The (time, row id) of a token from `encode`; a 400 page for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, row_id = raw.split("|", 1)
        moment = datetime.fromisoformat(at)
        row = UUID(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise PageError(400, DAMAGED) from None
    if moment.tzinfo is None:
        raise PageError(400, DAMAGED)
    return moment, row
