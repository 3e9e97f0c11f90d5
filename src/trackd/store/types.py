"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import JSON, ColumnElement, DateTime, Dialect, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

from trackd.domain import jsonpolicy


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both backends.

    SQLite has no time zone type and hands back naive values; this type refuses naive input
    and always returns aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a time zone")
        value = value.astimezone(UTC)
        # SQLite stores text; dropping the offset keeps every value in one sortable format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def plain(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """The column as the driver returns it, without SQLAlchemy's per-value processing: for
    reads of many rows that convert their values themselves (see `utc_of`)."""
    return type_coerce(column, NullType()).label(column.key)


def utc_of(value: datetime | str | None) -> datetime | None:
    """What UTCDateTime reads, from the driver's value of a `plain` column: SQLite's text
    (UTC without an offset) or PostgreSQL's aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        # Several times faster than parsing and then replacing the tzinfo.
        return datetime.fromisoformat(value + "+00:00")
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class PolicyJSON(TypeDecorator[Any]):
    """JSON on SQLite, JSONB on PostgreSQL, refusing what trackd's JSON policy refuses.

    Defence in depth behind the API boundary: whatever path writes (ingest, a source, a
    script), a value that could not be read back (NaN, a lone surrogate, NUL, a 100-bit
    integer, deep nesting) fails its own write instead of every later read.
    """

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is not None:
            jsonpolicy.check(value, jsonpolicy.STORE_POLICY, where="stored JSON")
        return value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        checked = super().bind_processor(dialect)

        def process(value: Any) -> Any:
            # Text the policy already passed (`JsonText`) is written as it is.
            if type(value) is JsonText:
                return value.text
            return checked(value) if checked is not None else value

        return process


JSONType: Any = PolicyJSON()


@dataclass(frozen=True, slots=True)
class JsonText:
    """A JSON column's value as text the store's policy has already passed: a JSON column
    writes it as it is. For bulk writes of one value to many rows (an event's message to
    every channel), so that it is judged and written once, not once per row; build it with
    `json_text`, or from text `jsonpolicy.text_passes` (or the value `jsonpolicy.check`)
    has passed."""

    text: str


def json_text(value: Any) -> JsonText:
    """`value` checked against the store's policy and written as JSON text.

    Raises:
        JsonRefused: the policy refuses it (the message names where).
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        jsonpolicy.check(value, jsonpolicy.STORE_POLICY, where="stored JSON")
        raise
    if not jsonpolicy.text_passes(text, jsonpolicy.STORE_POLICY):
        jsonpolicy.check(value, jsonpolicy.STORE_POLICY, where="stored JSON")
    return JsonText(text)


_ENCODER = msgspec.json.Encoder()


def parsed_json(value: Any) -> Any:
    """A JSON column's value for bulk writes of values parsed from JSON (an event's payload),
    as `JsonText` when that is sure to pass the store's policy, else the value itself (its
    column then checks and encodes it as usual).

    About three times cheaper than the column's own check and encoding. The fast encoder
    writes NaN and the infinities as `null`, which the policy refuses instead: output holding
    a `null` is left to the column, as is any the text check is unsure of.
    """
    if value is None:
        return None
    try:
        raw = _ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError):
        return value  # not JSON, or a lone surrogate: the column says why
    if b"null" in raw or not jsonpolicy.encoded_passes(raw, jsonpolicy.STORE_POLICY):
        return value
    return JsonText(raw.decode("utf-8"))


def read_json(text: str | bytes) -> Any:
    """How both engines parse stored JSON (their `json_deserializer`).

    PostgreSQL's JSONB keeps numbers as `numeric` and writes a float with no fraction back
    without its exponent: 1e308 returns as a 309-digit integer. The policy never stores an
    integer past 64 bits, so such a number was a float and is read back as one.
    """
    return json.loads(text, parse_int=_stored_int)


def _stored_int(literal: str) -> int | float:
    value = int(literal)
    return value if jsonpolicy.INT_MIN <= value <= jsonpolicy.INT_MAX else float(value)
