"""`trackd natal set|show|transits|delete` in process: a chart stored and read back on SQLite
and PostgreSQL, the daily refresh scheduled with it, and one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from trackd.cli.main import app as trackd_app

WHO = ["--tenant", "acme", "--user", "ann"]
BIRTH = ["--birth", "1990-05-01T12:00:00", "--timezone", "Europe/Paris"]
PLACE = ["--latitude", "48.85", "--longitude", "2.35"]


def trackd(*args: str, db: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(trackd_app, ["natal", *args, "--database-url", db])
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, err: str, says: str) -> None:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], err


def test_set_show_transits_delete(database_url: str) -> None:
    code, out, err = trackd("set", *WHO, *BIRTH, *PLACE, db=database_url)
    assert code == 0, err
    chart = json.loads(out)
    assert chart["birth"] == "1990-05-01T10:00:00+00:00"
    assert chart["points"]["sun"]["sign"] == "taurus"

    code, out, _ = trackd("show", *WHO, db=database_url)
    assert (code, json.loads(out)) == (0, chart)

    code, out, err = trackd("transits", *WHO, db=database_url)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["user_id"] == "ann" and shown["stored"] is False
    assert {"positions", "aspects", "stations", "as_of", "stale"} <= set(shown)

    code, _, _ = trackd("delete", *WHO, db=database_url)
    assert code == 0
    code, _, err = trackd("show", *WHO, db=database_url)
    one_line_error(code, err, "no natal chart")
    code, _, err = trackd("transits", *WHO, db=database_url)
    one_line_error(code, err, "trackd natal set")


def test_bad_input_is_one_line(database_url: str) -> None:
    cases = [
        (["--birth", "2021-03-28T02:30:00", "--timezone", "Europe/Paris", *PLACE], "never"),
        (["--birth", "yesterday", *PLACE], "ISO 8601"),
        ([*BIRTH, "--latitude", "91", "--longitude", "0"], "latitude"),
    ]
    for args, says in cases:
        code, _, err = trackd("set", *WHO, *args, db=database_url)
        one_line_error(code, err, says)
