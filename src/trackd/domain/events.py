"""The event envelope, the topics trackd folds, and the payloads it understands.

The envelope is CloudEvents 1.0 plus the agent platform's fields. Producers spell fields three
ways (snake_case, camelCase, CloudEvents lowercase extension names); all three are accepted.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from trackd.domain import jsonpolicy, wire
from trackd.domain.ids import ID_MAX, Identifier, id_problem
from trackd.domain.jsonpolicy import JsonPolicy, JsonRefused
from trackd.domain.times import UtcTime, ahead_problem

SYSTEM_EVENTS: Final = "system-events"
ACTION_REQUESTS: Final = "action-requests"
ACTION_RESULTS: Final = "action-results"
TRACKED_TOPICS: Final = (SYSTEM_EVENTS, ACTION_REQUESTS, ACTION_RESULTS)
"""The topics whose events trackd folds into task and plan records."""
PLATFORM_TOPICS: Final = (
    "business-facts",
    ACTION_REQUESTS,
    ACTION_RESULTS,
    "billing-events",
    "notification-events",
    SYSTEM_EVENTS,
    "plan-events",
    "task-events",
)
"""The agent platform's topics (soorma-common's `EventTopic`). Events on the ones trackd does
not fold are kept on the timeline, where e.g. a plan's goal in `business-facts` roots a trace."""

TASK_PROGRESS: Final = "task.progress"
TASK_STATE_CHANGED: Final = "task.state_changed"
PLAN_STARTED: Final = "plan.started"
PLAN_COMPLETED: Final = "plan.completed"
PLAN_FAILED: Final = "plan.failed"
PLAN_CANCELLED: Final = "plan.cancelled"
PLAN_TYPES: Final = (PLAN_STARTED, PLAN_COMPLETED, PLAN_FAILED, PLAN_CANCELLED)

# The store keeps attempts, sequences and counters in integer columns: values beyond these
# bounds are refused at validation rather than failing once the event is being written.
MAX_ATTEMPT: Final = 10_000
MAX_SEQUENCE: Final = 2**53
DEFAULT_MAX_FUTURE: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class EventRules:
    """The settings-dependent part of validating an event.

    Attributes:
        max_future: how far past the receiver's clock an event's time may be. Clocks drift,
            but an event dated next year would set a plan's `as_of` and skew metrics forever.
        now: the receiver's clock; None reads the current time (tests pass a fixed one).
        json: what the event's JSON must meet (finite numbers, valid text, bounded depth).
    """

    max_future: timedelta = DEFAULT_MAX_FUTURE
    now: datetime | None = None
    json: JsonPolicy = field(default_factory=JsonPolicy)

    def check_time(self, time: datetime) -> None:
        """Raise InvalidEventError when `time` is further ahead than `max_future`."""
        problem = ahead_problem(time, self.now or datetime.now(UTC), self.max_future)
        if problem is not None:
            raise InvalidEventError(f"time: {problem} (TRACKD_MAX_EVENT_FUTURE_SECONDS)")


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("not valid base64") from None
    return value


Base64Text = Annotated[str, AfterValidator(_base64)]


def _aliases(snake: str, *others: str) -> AliasChoices:
    parts = snake.split("_")
    camel = parts[0] + "".join(p.title() for p in parts[1:])
    lower = "".join(parts)
    names = dict.fromkeys((snake, camel, lower, *others))
    return AliasChoices(*names)


def _opt_id(snake: str, *others: str) -> Any:
    return Field(default=None, validation_alias=_aliases(snake, *others))


class EventEnvelope(BaseModel):
    """One event as producers publish it.

    `time` must carry a time zone; it is stored in UTC. When it is absent the time the event
    was received is used.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: Identifier
    # The source is the agent id metrics are asked about: no control characters either.
    source: str = Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")
    specversion: str = "1.0"
    type: str = Field(min_length=1, max_length=255)
    time: UtcTime = Field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any] | None = None
    # Data that is not JSON (CloudEvents' binary mode with e.g. text/plain, or the SDK's
    # bytes), kept exactly as the CloudEvents JSON format carries it; trackd folds only `data`.
    datacontenttype: str | None = Field(default=None, max_length=255)
    data_base64: Base64Text | None = None
    topic: str | None = Field(default=None, max_length=100)
    subject: str | None = Field(default=None, max_length=255)
    correlation_id: Identifier | None = _opt_id("correlation_id")
    trace_id: Identifier | None = _opt_id("trace_id")
    parent_event_id: Identifier | None = _opt_id("parent_event_id")
    tenant_id: Identifier | None = _opt_id("tenant_id")
    platform_tenant_id: Identifier | None = _opt_id("platform_tenant_id")
    user_id: Identifier | None = _opt_id("user_id")
    plan_id: Identifier | None = _opt_id("plan_id")
    session_id: Identifier | None = _opt_id("session_id")
    goal_id: Identifier | None = _opt_id("goal_id")
    sequence: int | None = Field(default=None, ge=0, le=MAX_SEQUENCE, strict=True)
    attempt: int | None = Field(default=None, ge=1, le=MAX_ATTEMPT, strict=True)
    # The platform's ActionResultEvent carries its outcome on the envelope, `data` null.
    success: bool | None = Field(default=None, strict=True)
    result: dict[str, Any] | None = None
    error: str | None = None
    # Set by trackd when an event comes through its HTTP API: the user whose `user` token
    # published it (task ownership). Whatever a producer writes here over HTTP is replaced.
    published_by: str | None = Field(default=None, max_length=ID_MAX)

    @model_validator(mode="after")
    def _one_kind_of_data(self) -> EventEnvelope:
        if self.data is not None and self.data_base64 is not None:
            raise ValueError("data and data_base64 are exclusive; send one of them")
        return self

    @property
    def effective_topic(self) -> str | None:
        """The topic, inferred from the type for task.* and plan.* events posted without one."""
        if self.topic:
            return self.topic
        if self.type.startswith(("task.", "plan.")):
            return SYSTEM_EVENTS
        return None

    def with_tenant(self, tenant_id: str, published_by: str | None = None) -> EventEnvelope:
        """A copy that belongs to `tenant_id`, published as `published_by` (see
        `access.publishing_user`), whatever the producer wrote."""
        return self.model_copy(
            update={
                "tenant_id": tenant_id,
                "platform_tenant_id": None,
                "published_by": published_by,
            }
        )

    def resolved_tenant(self, default: str) -> str:
        """The tenant this event belongs to: the platform's authenticated tenant first."""
        return self.platform_tenant_id or self.tenant_id or default


class TaskProgressEvent(BaseModel):
    """Payload of `task.progress`."""

    model_config = ConfigDict(extra="allow")

    task_id: Identifier
    plan_id: Identifier | None = None
    state: str
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    message: str | None = None


class TaskStateChanged(BaseModel):
    """Payload of `task.state_changed`."""

    model_config = ConfigDict(extra="allow")

    task_id: Identifier
    plan_id: Identifier | None = None
    previous_state: str | None = None
    new_state: str
    reason: str | None = None


class PlanEventData(BaseModel):
    """Payload of `plan.*` events; the plan id may also sit on the envelope."""

    model_config = ConfigDict(extra="allow")

    plan_id: Identifier | None = None
    current_state: str | None = Field(default=None, max_length=255)
    goal: str | None = None
    reason: str | None = None


class ActionResultData(BaseModel):
    """The parts of an `action-results` payload trackd reads."""

    model_config = ConfigDict(extra="allow")

    success: bool = True
    error: str | None = None


def decode_envelope(
    raw: bytes | str | dict[str, Any], rules: EventRules | None = None
) -> EventEnvelope:
    """Parse and validate one envelope; `rules` bounds its time (a day ahead by default) and
    holds the JSON policy it must meet (trackd.domain.jsonpolicy).

    Raises:
        InvalidEventError: the input is not a valid envelope; the message says why.
    """
    rules = rules or EventRules()
    if not isinstance(raw, dict):
        fast = _decode_fast(raw, rules)
        if fast is not None:
            return fast
    return _decode_checked(raw, rules)


def _decode_fast(raw: bytes | str, rules: EventRules) -> EventEnvelope | None:
    """The envelope from the compiled decoder, or None when it leaves `raw` to the model."""
    try:
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        values, fields_set = wire.decode(data, rules.json.max_depth)
    except (wire.Unsure, UnicodeEncodeError):
        return None
    envelope = _constructed(values, fields_set)
    rules.check_time(envelope.time)
    return envelope


def _constructed(values: dict[str, Any], fields_set: set[str]) -> EventEnvelope:
    """An `EventEnvelope` of values already validated (`model_construct` does the same at a
    tenth of the speed): the defaults, then `values`, in the fields' order."""
    envelope = EventEnvelope.__new__(EventEnvelope)
    state = {name: values.get(name, default) for name, default in _DEFAULTS.items()}
    object.__setattr__(envelope, "__dict__", state)
    object.__setattr__(envelope, "__pydantic_fields_set__", fields_set)
    object.__setattr__(envelope, "__pydantic_extra__", None)
    object.__setattr__(envelope, "__pydantic_private__", None)
    return envelope


# Each field's default; `time`'s comes from its factory, so the fast decoder always sets it.
_DEFAULTS: Final = {
    name: None if info.is_required() else info.get_default(call_default_factory=False)
    for name, info in EventEnvelope.model_fields.items()
}


def _decode_checked(raw: bytes | str | dict[str, Any], rules: EventRules) -> EventEnvelope:
    """`decode_envelope` through the JSON policy's walk and the pydantic model."""
    # What the policy refuses (NUL, lone surrogates, NaN, deep nesting, wide integers) would
    # be accepted here and then fail in the store or in every later read.
    try:
        value = raw if isinstance(raw, dict) else jsonpolicy.parse(raw, where="event")
        jsonpolicy.check(value, rules.json)
    except JsonRefused as exc:
        raise InvalidEventError(str(exc)) from None
    if not isinstance(value, dict):
        raise InvalidEventError("an event must be a JSON object")
    try:
        envelope = EventEnvelope.model_validate(value)
    except ValidationError as exc:
        raise InvalidEventError(describe_validation_error(exc)) from None
    rules.check_time(envelope.time)
    return envelope


def check_id(value: object, what: str) -> str:
    """`value` as an id, or InvalidEventError saying why it is not one (for ids read from
    `data`, which has no schema of its own)."""
    if not isinstance(value, str):
        raise InvalidEventError(f"{what} must be a string id of 1 to {ID_MAX} characters")
    problem = id_problem(value)
    if problem is not None:
        raise InvalidEventError(f"{what}: an id {problem}")
    return value


def check_count(value: object, what: str, low: int, high: int) -> int | None:
    """`value` as an integer in [low, high], None when absent; InvalidEventError otherwise.

    The store keeps these in integer columns: an out-of-range value accepted here would only
    fail once written, after the producer was told it was accepted.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEventError(f"{what} must be an integer from {low} to {high}")
    if not low <= value <= high:
        raise InvalidEventError(f"{what} must be from {low} to {high} (got {value})")
    return value


class InvalidEventError(ValueError):
    """An event trackd cannot fold; the message says what is wrong with it."""


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, `field: message`, for people and dead letters."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
