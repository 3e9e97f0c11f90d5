"""Errors trackd raises to its callers; each message says what to do about it."""

from __future__ import annotations


class TrackdError(Exception):
    """Base of trackd's own errors."""


class ConfigError(TrackdError):
    """A setting is wrong or an optional dependency is missing."""


class NotFoundError(TrackdError):
    """The object does not exist for this tenant."""


class ConflictError(TrackdError):
    """The request conflicts with what is stored."""


class BusUnavailableError(TrackdError):
    """The bus cannot be reached, or did not confirm a publish; retrying later is safe."""
