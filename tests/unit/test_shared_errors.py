"""The shared error set: each kind answers with its status in the API and one line with a
non-zero exit in the CLI, and a feature's errors answer as the kind they derive from."""

from __future__ import annotations

import httpx
import pytest
import typer
from fastapi import FastAPI
from typer.testing import CliRunner

from trackd.api import errors as api_errors
from trackd.cli.common import run
from trackd.cli.main import app as cli
from trackd.domain.channels import InvalidChannel
from trackd.domain.league import TrackerRuleError
from trackd.domain.schedules import InvalidSchedule
from trackd.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    RuleBroken,
    TrackdError,
    status_of,
)
from trackd.jobs.service.errors import IllegalStatusChange, InvalidTask, TaskNotFound
from trackd.league.mmr import MmrError
from trackd.league.service import TrackerForbidden
from trackd.league.user_channels import ChannelForbidden
from trackd.sources.base import InvalidTarget, SourceError

KINDS = [
    (RuleBroken("the url is not a profile"), 400, "bad_request"),
    (Forbidden("tracker t1 belongs to another user"), 403, "forbidden"),
    (NotFound("no tracker t1"), 404, "not_found"),
    (Conflict("the name is taken"), 409, "conflict"),
]

FEATURE_ERRORS = [
    (TrackerRuleError("a user has 4 trackers at most"), 400),
    (InvalidChannel("a discord URL is https"), 400),
    (InvalidSchedule("give cron or interval_seconds, not both"), 400),
    (InvalidTarget("target.url is required"), 400),
    (MmrError("the formula divided by zero"), 400),
    (InvalidTask("metadata must be JSON"), 400),
    (TrackerForbidden("a reader token may not change trackers"), 403),
    (ChannelForbidden("notification channel c1 is not yours"), 403),
    (TaskNotFound("no task 7"), 404),
    (IllegalStatusChange("completed is terminal"), 409),
]


@pytest.mark.parametrize(("error", "status"), FEATURE_ERRORS, ids=lambda v: type(v).__name__)
def test_a_features_error_has_the_status_of_its_kind(error: TrackdError, status: int) -> None:
    assert status_of(error) == status


def test_trackds_own_errors_are_not_the_callers() -> None:
    assert status_of(ConfigError("TRACKD_BUS_URL is not a URL")) is None


def test_a_broken_rule_is_still_a_value_error_and_an_invalid_target_a_source_error() -> None:
    # pydantic validators turn a ValueError into a validation error; the poller judges an
    # invalid target as a source error that retrying will not help.
    assert isinstance(TrackerRuleError("x"), ValueError)
    assert isinstance(InvalidTarget("x"), SourceError)


async def _answer(error: Exception) -> httpx.Response:
    """What trackd's API answers for a route that raised `error`."""
    app = FastAPI()
    api_errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://trackd") as client:
        return await client.get("/boom")


@pytest.mark.parametrize(("error", "status", "code"), KINDS, ids=lambda v: str(v))
async def test_the_api_answers_each_kind_with_its_status_and_message(
    error: TrackdError, status: int, code: str
) -> None:
    response = await _answer(error)
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": str(error)}}


async def test_the_api_answers_a_features_error_as_its_kind() -> None:
    response = await _answer(TrackerForbidden("tracker t1 belongs to another user"))
    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "forbidden",
        "message": "tracker t1 belongs to another user",
    }


async def test_the_api_answers_trackds_own_error_as_internal() -> None:
    response = await _answer(ConfigError("a setting is wrong"))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"


@pytest.mark.parametrize(("error", "status", "code"), KINDS, ids=lambda v: str(v))
def test_the_cli_fails_with_one_line_and_a_non_zero_exit(
    error: TrackdError, status: int, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def command() -> None:
        raise error

    with pytest.raises(typer.Exit) as exited:
        run(command())
    assert exited.value.exit_code != 0
    assert capsys.readouterr().err == f"error: {error}\n"


def test_a_command_failing_outside_run_answers_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    result = CliRunner().invoke(cli, ["celery"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: name the Celery broker: --broker redis://host:6379/0 (or -A app)\n"
    )
