"""Tracking a Celery app without changing its code.

Two ways in:

- `trackd celery --broker URL` consumes the events Celery's workers send (start them with
  `-E`, or `celery control enable_events`), as Flower does, and publishes them as trackd
  events (`monitor.CeleryMonitor`);
- `instrument(app, url)` connects Celery's signals inside the app's own processes, for apps
  that cannot turn events on.

The rules that map Celery's vocabulary onto trackd's are in `mapping` (live events) and
`results` (states read back from the result backend); neither needs Celery to run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trackd.errors import ConfigError

if TYPE_CHECKING:
    from trackd.jobs.celery.signals import Instrumentation

__all__ = ["instrument", "require_celery"]


def require_celery() -> None:
    """Raise a ConfigError naming the extra to install when Celery is missing."""
    try:
        import celery  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"Celery tracking needs an optional dependency ({exc.name}): "
            "pip install 'trackd[celery]'"
        ) from None


def instrument(app: Any, url: str | None = None, **options: Any) -> Instrumentation:
    """Track `app`'s tasks through Celery's signals; see `signals.instrument`."""
    require_celery()
    from trackd.jobs.celery.signals import instrument as connect

    return connect(app, url, **options)
