"""Errors the SDK raises to producers; each message says what to do about it."""

from __future__ import annotations

from trackd.errors import ConfigError, TrackdError


class TrackerError(TrackdError):
    """Base of the SDK's own errors."""


class TrackerBufferFull(TrackerError):
    """The bounded buffer stayed full for the whole wait: events are not getting out.

    Nothing was dropped: the event that did not fit was never accepted, so the caller still
    holds it and decides what to do.
    """


class TrackerDeliveryFailed(TrackerError):
    """Events were refused by the server or could not be delivered before a deadline."""


class TrackerNotConfigured(TrackerError, ConfigError):
    """`track()` or `@tracked` was used without a tracker and no default was configured."""
