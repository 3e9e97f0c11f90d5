"""The event envelope, the topics trackd folds, and the payloads it understands.

The envelope is CloudEvents 1.0 plus the agent platform's fields. Producers spell fields three
ways (snake_case, camelCase, CloudEvents lowercase extension names); all three are accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from trackd.domain import jsonpolicy
from trackd.domain.jsonpolicy import JsonPolicy, JsonRefused

DEFAULT_POLICY: Final = JsonPolicy()

SYSTEM_EVENTS: Final = "system-events"
ACTION_REQUESTS: Final = "action-requests"
ACTION_RESULTS: Final = "action-results"
TRACKED_TOPICS: Final = (SYSTEM_EVENTS, ACTION_REQUESTS, ACTION_RESULTS)

TASK_PROGRESS: Final = "task.progress"
TASK_STATE_CHANGED: Final = "task.state_changed"
PLAN_STARTED: Final = "plan.started"
PLAN_COMPLETED: Final = "plan.completed"
PLAN_FAILED: Final = "plan.failed"
PLAN_CANCELLED: Final = "plan.cancelled"
PLAN_TYPES: Final = (PLAN_STARTED, PLAN_COMPLETED, PLAN_FAILED, PLAN_CANCELLED)

_ID_MAX = 100
_LAST_YEAR = 9999


def _aliases(snake: str, *others: str) -> AliasChoices:
    parts = snake.split("_")
    camel = parts[0] + "".join(p.title() for p in parts[1:])
    lower = "".join(parts)
    names = dict.fromkeys((snake, camel, lower, *others))
    return AliasChoices(*names)


def _opt_id(snake: str, *others: str) -> Any:
    return Field(default=None, max_length=_ID_MAX, validation_alias=_aliases(snake, *others))


class EventEnvelope(BaseModel):
    """One event as producers publish it.

    `time` must carry a time zone; it is stored in UTC. When it is absent the time the event
    was received is used.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=_ID_MAX)
    source: str = Field(min_length=1, max_length=255)
    specversion: str = "1.0"
    type: str = Field(min_length=1, max_length=255)
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any] | None = None
    topic: str | None = Field(default=None, max_length=100)
    subject: str | None = Field(default=None, max_length=255)
    correlation_id: str | None = _opt_id("correlation_id")
    trace_id: str | None = _opt_id("trace_id")
    parent_event_id: str | None = _opt_id("parent_event_id")
    tenant_id: str | None = _opt_id("tenant_id")
    platform_tenant_id: str | None = _opt_id("platform_tenant_id")
    user_id: str | None = _opt_id("user_id")
    plan_id: str | None = _opt_id("plan_id")
    session_id: str | None = _opt_id("session_id")
    goal_id: str | None = _opt_id("goal_id")
    sequence: int | None = Field(default=None, ge=0, le=2**53, strict=True)
    attempt: int | None = Field(default=None, ge=1, le=10_000, strict=True)

    @field_validator("time")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("time must carry a time zone, e.g. 2026-01-11T10:00:00Z")
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # e.g. 9999-12-31T23:59:59-23:59 is past year 9999 in UTC
            raise ValueError("time is out of range once converted to UTC") from None
        # Stores add hours to event times (metric buckets); year 9999 would overflow there.
        if value.year >= _LAST_YEAR:
            raise ValueError(f"time must be before {_LAST_YEAR}-01-01T00:00:00Z")
        return value

    @property
    def effective_topic(self) -> str | None:
        """The topic, inferred from the type for task.* and plan.* events posted without one."""
        if self.topic:
            return self.topic
        if self.type.startswith(("task.", "plan.")):
            return SYSTEM_EVENTS
        return None

    def with_tenant(self, tenant_id: str) -> EventEnvelope:
        """A copy that belongs to `tenant_id` whatever the producer wrote."""
        return self.model_copy(update={"tenant_id": tenant_id, "platform_tenant_id": None})

    def resolved_tenant(self, default: str) -> str:
        """The tenant this event belongs to: the platform's authenticated tenant first."""
        return self.platform_tenant_id or self.tenant_id or default


class TaskProgressEvent(BaseModel):
    """Payload of `task.progress`."""

    model_config = ConfigDict(extra="allow")

    task_id: str = Field(min_length=1, max_length=_ID_MAX)
    plan_id: str | None = Field(default=None, max_length=_ID_MAX)
    state: str
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    message: str | None = None


class TaskStateChanged(BaseModel):
    """Payload of `task.state_changed`."""

    model_config = ConfigDict(extra="allow")

    task_id: str = Field(min_length=1, max_length=_ID_MAX)
    plan_id: str | None = Field(default=None, max_length=_ID_MAX)
    previous_state: str | None = None
    new_state: str
    reason: str | None = None


class PlanEventData(BaseModel):
    """Payload of `plan.*` events; the plan id may also sit on the envelope."""

    model_config = ConfigDict(extra="allow")

    plan_id: str | None = Field(default=None, max_length=_ID_MAX)
    current_state: str | None = Field(default=None, max_length=255)
    goal: str | None = None
    reason: str | None = None


class ActionResultData(BaseModel):
    """The parts of an `action-results` payload trackd reads."""

    model_config = ConfigDict(extra="allow")

    success: bool = True
    error: str | None = None


def decode_envelope(
    raw: bytes | str | dict[str, Any], *, policy: JsonPolicy = DEFAULT_POLICY
) -> EventEnvelope:
    """Parse and validate one envelope; its JSON must meet `policy` (trackd.domain.jsonpolicy).

    Raises:
        InvalidEventError: the input is not a valid envelope; the message says why.
    """
    # What the policy refuses (NUL, lone surrogates, NaN, deep nesting, wide integers) would
    # be accepted here and then fail in the store or in every later read.
    try:
        value = raw if isinstance(raw, dict) else jsonpolicy.parse(raw, where="event")
        jsonpolicy.check(value, policy)
    except JsonRefused as exc:
        raise InvalidEventError(str(exc)) from None
    if not isinstance(value, dict):
        raise InvalidEventError("an event must be a JSON object")
    try:
        return EventEnvelope.model_validate(value)
    except ValidationError as exc:
        raise InvalidEventError(describe_validation_error(exc)) from None


class InvalidEventError(ValueError):
    """An event trackd cannot fold; the message says what is wrong with it."""


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, `field: message`, for people and dead letters."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
