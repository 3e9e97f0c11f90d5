"""The envelope decoded straight from bytes by a compiled decoder (msgspec), for the ingest
hot path.

The rules are `EventEnvelope`'s, exactly: this decoder only ever accepts what the pydantic
model accepts, with the same values. Whatever it is not sure of (a time in another format, a
string that may hold NUL, a number that may be too wide, deep nesting, any type error) it
leaves to the model, which then accepts or refuses it with its own message. A property test
(tests/unit/test_domain_wire.py) holds the two to the same answers.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from msgspec import UNSET, UnsetType

from trackd.domain.ids import ID_MAX, id_problem
from trackd.domain.times import to_utc

_Str = str | None | UnsetType
_Int = int | None | UnsetType


class _Wire(msgspec.Struct, forbid_unknown_fields=False):
    """Every spelling the envelope accepts as a field of its own: which one wins is decided
    afterwards, in `EventEnvelope`'s order (snake_case, camelCase, lowercase)."""

    id: str
    source: str
    type: str
    specversion: str | UnsetType = UNSET
    time: str | UnsetType = UNSET
    data: dict[str, Any] | UnsetType | None = UNSET
    datacontenttype: _Str = UNSET
    data_base64: _Str = UNSET
    topic: _Str = UNSET
    subject: _Str = UNSET
    correlation_id: _Str = UNSET
    correlationId: _Str = UNSET
    correlationid: _Str = UNSET
    trace_id: _Str = UNSET
    traceId: _Str = UNSET
    traceid: _Str = UNSET
    parent_event_id: _Str = UNSET
    parentEventId: _Str = UNSET
    parenteventid: _Str = UNSET
    tenant_id: _Str = UNSET
    tenantId: _Str = UNSET
    tenantid: _Str = UNSET
    platform_tenant_id: _Str = UNSET
    platformTenantId: _Str = UNSET
    platformtenantid: _Str = UNSET
    user_id: _Str = UNSET
    userId: _Str = UNSET
    userid: _Str = UNSET
    plan_id: _Str = UNSET
    planId: _Str = UNSET
    planid: _Str = UNSET
    session_id: _Str = UNSET
    sessionId: _Str = UNSET
    sessionid: _Str = UNSET
    goal_id: _Str = UNSET
    goalId: _Str = UNSET
    goalid: _Str = UNSET
    sequence: _Int = UNSET
    attempt: _Int = UNSET
    success: bool | UnsetType | None = UNSET
    result: dict[str, Any] | UnsetType | None = UNSET
    error: _Str = UNSET
    published_by: _Str = UNSET


_DECODER: Final = msgspec.json.Decoder(_Wire)

ALIASED: Final = (
    "correlation_id",
    "trace_id",
    "parent_event_id",
    "tenant_id",
    "platform_tenant_id",
    "user_id",
    "plan_id",
    "session_id",
    "goal_id",
)
_SPELLINGS: Final = {
    name: (
        name,
        name.split("_")[0] + "".join(p.title() for p in name.split("_")[1:]),
        name.replace("_", ""),
    )
    for name in ALIASED
}
# Optional strings with a bound on their length (None: no bound).
_PLAIN: Final[dict[str, int | None]] = {
    "datacontenttype": 255,
    "topic": 100,
    "subject": 255,
    "error": None,
    "published_by": ID_MAX,
}
# The time formats decided here; any other (a timestamp, a date alone, a week date) is the
# model's to judge.
_TIME: Final = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)
_SOURCE_REFUSED: Final = re.compile(r"[\x00-\x1f\x7f]")
# Integers of 19 digits or more may be beyond 64 bits: the JSON policy judges them.
_DIGITS_AS_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
_WIDE_NUMBER: Final = b"0" * 19
MAX_SEQUENCE: Final = 2**53
MAX_ATTEMPT: Final = 10_000


class Unsure(Exception):
    """The fast decoder leaves this input to the model."""


def _id(value: str) -> str:
    if id_problem(value) is not None:
        raise Unsure
    return value


def _opt_id(value: str | None) -> str | None:
    return None if value is None else _id(value)


def _pick(wire: _Wire, name: str) -> str | UnsetType | None:
    for spelling in _SPELLINGS[name]:
        value: str | UnsetType | None = getattr(wire, spelling)
        if value is not UNSET:
            return value
    return UNSET


def _time(text: str) -> datetime:
    if _TIME.fullmatch(text) is None:
        raise Unsure
    try:
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        raise Unsure from None


def decode(raw: bytes, max_depth: int) -> tuple[dict[str, Any], set[str]]:
    """The envelope's field values and the names the producer set, as the model would take
    them from `raw`; `max_depth` is the JSON policy's bound on nesting.

    Raises:
        Unsure: the model must decide (it may still accept the input).
    """
    # What the JSON policy refuses, seen cheaply on the bytes: NUL written as an escape (a raw
    # NUL is not JSON), deep nesting (every bracket counted, even inside strings), wide
    # integers. Non-finite numbers and lone surrogates the decoder itself refuses.
    if (
        raw.count(b"{") + raw.count(b"[") > max_depth
        or b"\\u0000" in raw
        or _WIDE_NUMBER in raw.translate(_DIGITS_AS_ZERO)
    ):
        raise Unsure
    try:
        wire = _DECODER.decode(raw)
    except msgspec.DecodeError:
        raise Unsure from None
    if not 0 < len(wire.source) <= 255 or _SOURCE_REFUSED.search(wire.source) is not None:
        raise Unsure
    if not 0 < len(wire.type) <= 255:
        raise Unsure
    values: dict[str, Any] = {"id": _id(wire.id), "source": wire.source, "type": wire.type}
    if wire.specversion is not UNSET:
        values["specversion"] = wire.specversion
    values["time"] = datetime.now(UTC) if wire.time is UNSET else _time(wire.time)
    fields_set = set(values)
    if wire.time is UNSET:
        fields_set.discard("time")
    for name in ALIASED:
        value = _pick(wire, name)
        if value is not UNSET:
            values[name] = _opt_id(value)
            fields_set.add(name)
    for name, bound in _PLAIN.items():
        value = getattr(wire, name)
        if value is not UNSET:
            if value is not None and bound is not None and len(value) > bound:
                raise Unsure
            values[name] = value
            fields_set.add(name)
    if wire.data_base64 is not UNSET:
        if wire.data_base64 is not None:
            try:
                base64.b64decode(wire.data_base64, validate=True)
            except binascii.Error:
                raise Unsure from None
        values["data_base64"] = wire.data_base64
        fields_set.add("data_base64")
    for name, low, high in (("sequence", 0, MAX_SEQUENCE), ("attempt", 1, MAX_ATTEMPT)):
        number = getattr(wire, name)
        if number is not UNSET:
            if number is not None and not low <= number <= high:
                raise Unsure
            values[name] = number
            fields_set.add(name)
    for name in ("data", "success", "result"):
        value = getattr(wire, name)
        if value is not UNSET:
            values[name] = value
            fields_set.add(name)
    if values.get("data") is not None and values.get("data_base64") is not None:
        raise Unsure
    return values, fields_set
