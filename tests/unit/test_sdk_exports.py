"""The SDK's public names are a contract: adding or removing one is a deliberate change."""

from __future__ import annotations

import trackd.sdk


def test_the_public_exports_are_exactly_these() -> None:
    assert trackd.sdk.__all__ == [
        "TaskHandle",
        "Tracker",
        "TrackerBufferFull",
        "TrackerDeliveryFailed",
        "TrackerError",
        "TrackerNotConfigured",
        "TrackerStats",
        "configure",
        "current_task",
        "default_tracker",
        "track",
        "tracked",
    ]
    for name in trackd.sdk.__all__:
        assert getattr(trackd.sdk, name).__module__.startswith("trackd.sdk.")


def test_the_errors_share_one_base_and_trackds() -> None:
    from trackd.errors import ConfigError, TrackdError

    for error in (
        trackd.sdk.TrackerBufferFull,
        trackd.sdk.TrackerDeliveryFailed,
        trackd.sdk.TrackerNotConfigured,
    ):
        assert issubclass(error, trackd.sdk.TrackerError)
        assert issubclass(error, TrackdError)
    assert issubclass(trackd.sdk.TrackerNotConfigured, ConfigError)
