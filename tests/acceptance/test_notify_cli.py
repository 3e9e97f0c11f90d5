"""`trackd notify` as a subprocess: channels with masked URLs, subscriptions, a test send to a
real receiver, the outbox summary, and one-line errors."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from procs import clean_env
from procs import trackd as run
from typer.testing import CliRunner

from trackd.cli.main import app as trackd_app
from webfakes import Receiver, serve

SECRET = "a-long-enough-signing-secret"


async def trackd(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the receiver runs in this test's event loop and must keep answering.
    return await asyncio.to_thread(run, "notify", *args, env=clean_env(**env))


async def test_add_list_subscribe_and_test_a_webhook(database_file: str) -> None:
    receiver = Receiver()
    async with serve(receiver.app()) as base_url:
        url = f"{base_url}/private/path?token=hunter2"
        # The receiver is on loopback: refused when the channel is added, unless allowed.
        private = await trackd(
            "add-channel", "--tenant", "acme", "--kind", "webhook", "--url", url,
            "--database-url", database_file,
        )  # fmt: skip
        assert private.returncode != 0 and "loopback" in private.stderr
        assert "hunter2" not in private.stderr
        added = await trackd(
            "add-channel", "--tenant", "acme", "--kind", "webhook", "--url", url,
            "--name", "ops", "--secret-env", "HOOK_SECRET", "--field", "rank",
            "--database-url", database_file,
            HOOK_SECRET=SECRET, TRACKD_ALLOW_PRIVATE_FETCH="true",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        channel_id = added.stdout.splitlines()[-1]
        assert "hunter2" not in added.stderr + added.stdout
        assert "http://127.0.0.1/…" in added.stderr and "signed" in added.stderr

        subscribed = await trackd(
            "subscribe", channel_id, "--tenant", "acme", "--source", "rocket_league",
            "--database-url", database_file,
        )  # fmt: skip
        assert subscribed.returncode == 0, subscribed.stderr

        listed = await trackd("channels", "--tenant", "acme", "--database-url", database_file)
        assert listed.returncode == 0, listed.stderr
        assert channel_id in listed.stdout and "rocket_league/*" in listed.stdout
        assert "hunter2" not in listed.stdout and "/private" not in listed.stdout

        refused = await trackd(
            "test-channel", channel_id, "--tenant", "acme", "--database-url", database_file
        )
        assert refused.returncode != 0
        assert "TRACKD_ALLOW_PRIVATE_FETCH" in refused.stderr
        assert receiver.deliveries == []

        sent = await trackd(
            "test-channel", channel_id, "--tenant", "acme", "--message", "hi there",
            "--database-url", database_file,
            TRACKD_ALLOW_PRIVATE_FETCH="true",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr

        summary = await trackd("outbox", "--tenant", "acme", "--database-url", database_file)
        assert summary.stdout.strip() == "pending=0  sent=0  dead=0"

    [delivery] = receiver.deliveries
    assert delivery.json() == {"message": "hi there"}
    assert delivery.headers["x-trackd-event"] == "notification.test"
    assert delivery.headers["x-trackd-signature"].startswith("sha256=")


MISTAKES = [
    (["add-channel", "--kind", "pager", "--url", "https://x.example/"], "unknown channel kind"),
    (["add-channel", "--kind", "discord", "--url", "https://x.example/"], "Discord webhook"),
    (
        ["add-channel", "--kind", "webhook", "--url", "https://x.example/", "--secret-env", "NOPE"],
        "NOPE",
    ),
    (["add-channel", "--kind", "apprise", "--url", "json://127.0.0.1:+9999/x"], "loopback"),
    (["add-channel", "--kind", "webhook", "--url", "http://[::1/x"], "cannot be read"),
    (["add-channel", "--kind", "apprise", "--url", "json://[zz::]/x"], "cannot be read"),
    (["subscribe", "not-a-uuid"], "not a channel id"),
    (["test-channel", "01930000-0000-7000-8000-000000000000"], "no notification channel"),
]


@pytest.mark.parametrize(("args", "message"), MISTAKES)
def test_mistakes_are_one_line_and_a_non_zero_exit(
    database_file: str, args: list[str], message: str
) -> None:
    # In process: the same command code, without paying the interpreter's start each time.
    result = CliRunner().invoke(
        trackd_app, ["notify", *args, "--tenant", "acme", "--database-url", database_file]
    )
    assert result.exit_code != 0, args
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
