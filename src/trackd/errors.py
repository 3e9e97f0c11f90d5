"""Errors trackd raises to its callers; each message says what to do about it.

Four kinds say what the caller did wrong, and every entry point answers them alike: the API
(`trackd.api.errors`) with their HTTP status and the CLI (`trackd.cli.common.run`) with one
line and a non-zero exit. A feature's own errors derive from one of them:

* `RuleBroken` (400): the request breaks a rule (a malformed URL, a limit reached);
* `Forbidden` (403): the caller may not do this to this object (another user's);
* `NotFound` (404): the object does not exist for this tenant (another tenant's is none too);
* `Conflict` (409): the request conflicts with what is stored.

This module imports nothing, so every layer down to `trackd.domain` may raise these.
"""

from __future__ import annotations


class TrackdError(Exception):
    """Base of trackd's own errors."""


class RuleBroken(TrackdError, ValueError):
    """The request breaks a rule; the message says which and how to fix it (HTTP 400).

    Also a ValueError: a value that breaks a rule is a bad value, and pydantic validators
    report a ValueError raised inside them as a validation error.
    """


class Forbidden(TrackdError):
    """The caller may not do this to this object (HTTP 403)."""


class NotFound(TrackdError):
    """The object does not exist for this tenant (HTTP 404)."""


class Conflict(TrackdError):
    """The request conflicts with what is stored (HTTP 409)."""


class ConfigError(TrackdError):
    """A setting is wrong or an optional dependency is missing."""


class BusUnavailableError(TrackdError):
    """The bus cannot be reached, or did not confirm a publish; retrying later is safe."""


STATUS: dict[type[TrackdError], int] = {
    RuleBroken: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
}
"""The HTTP status of each kind of caller's error."""


def status_of(exc: TrackdError) -> int | None:
    """The HTTP status of a caller's error, None for one of trackd's own (config, bus)."""
    for kind, status in STATUS.items():
        if isinstance(exc, kind):
            return status
    return None
