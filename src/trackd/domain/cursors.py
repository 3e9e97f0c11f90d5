"""Cursors of lists ordered by time and row id: the API's `next_cursor` and the dashboard's
page links carry the (time, id) of the last row shown as one opaque, URL-safe token, so rows
added meanwhile never shift a page the way an offset would."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID


class BadCursor(ValueError):
    """The token is not one `encode` made."""


def encode(cursor: tuple[datetime, UUID]) -> str:
    """(time, row id) of the last row shown, as one URL-safe token."""
    at, row_id = cursor
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> tuple[datetime, UUID]:
    """The (time, row id) of a token from `encode`.

    Raises:
        BadCursor: the token is damaged or was not made by `encode`.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, row_id = raw.split("|", 1)
        moment = datetime.fromisoformat(at)
        row = UUID(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor(token) from None
    if moment.tzinfo is None:
        raise BadCursor(token)
    return moment, row
