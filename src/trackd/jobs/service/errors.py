"""What the job-tracking service refuses, each an error of trackd's shared set."""

from __future__ import annotations

from trackd.errors import Conflict, NotFound, RuleBroken


class TaskNotFound(NotFound):
    """No tracking row with this id for this tenant."""


class IllegalStatusChange(Conflict):
    """The status flow does not allow the change; the message says why."""


class TaskBlocked(Conflict):
    """The task may not start: its prerequisites have not all completed."""


class PrerequisiteFailed(Conflict):
    """The task was failed when it was asked to start, because a prerequisite failed."""


class InvalidTask(RuleBroken):
    """A task cannot be created as asked (unknown field, bad dependency, bad max_attempts)."""
