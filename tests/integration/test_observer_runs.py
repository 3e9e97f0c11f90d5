"""The observer end to end on SQLite and PostgreSQL: a run asked over HTTP is a tracked task a
worker executes; it reads the user's journal and the drivers from the store (the solar history,
the sky computed per day), finds a planted effect, keeps it across runs, notifies the user's
channel through the outbox, and marks a finding that stops holding; who may see what."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from observer_seed import DAYS, seed_journals, storm_days_of
from trackd.app import create_app
from trackd.domain.access import Role
from trackd.domain.history import Retention
from trackd.domain.observer import analyze
from trackd.domain.states import TaskState
from trackd.modules import journal, observer_runs, service, transits
from trackd.modules.natal import longitudes
from trackd.modules.observer_drivers import user_drivers
from trackd.modules.observer_runs import ON_DEMAND_ATTEMPTS, ensure_nightly_schedule, shard_targets
from trackd.runtime import Runtime
from trackd.settings import Settings
from trackd.snapshots.service import backfill_history
from trackd.sources.base import Snapshot
from trackd.store.repos import channels, natal_charts, outbox, polls, tasks, tokens
from trackd.store.repos import schedules as schedules_repo

pytestmark = pytest.mark.timeout(120)

ACME, GLOBEX = "acme", "globex"
CONFIG = {
    "drivers": ["kp_max", "storm_day", "lunar_phase"],
    "outcomes": ["mood", "energy"],
    "lags": [0, 1],
    "permutations": 199,
    "min_overlap_days": 30,
}


@dataclass
class Api:
    runtime: Runtime
    client: httpx.AsyncClient
    auth: dict[str, dict[str, str]]
    storm_days: set[date]

    async def call(self, method: str, path: str, who: str, **kw: Any) -> httpx.Response:
        return await self.client.request(method, path, headers=self.auth[who], **kw)


def _today() -> date:
    return datetime.now(UTC).date()


async def _fill(runtime: Runtime) -> set[date]:
    """150 days: the solar history (one Kp a day), alice's journal with energy 3 points lower
    on storm days, bob's journal of noise; alice has a webhook channel."""
    async with runtime.sessions() as s, s.begin():
        days = await seed_journals(
            s, ACME, {"alice": -3.0, "bob": 0.0}, config=CONFIG, today=_today()
        )
        await channels.create_channel(
            s, ACME, kind="webhook", url="https://hooks.example.com/alice", owner_user_id="alice"
        )
    return storm_days_of(days)


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = Settings(database_url=database_url, poll_sweep_interval_s=0.05)
    runtime = Runtime.build(settings, ingest=True, poll=True)
    await runtime.start(migrate=False)
    try:
        async with runtime.sessions() as s, s.begin():
            issued = {
                "alice": await tokens.create(s, ACME, user_id="alice", role=Role.USER),
                "bob": await tokens.create(s, ACME, user_id="bob", role=Role.USER),
                "rita": await tokens.create(s, ACME, user_id="rita", role=Role.READER),
                "ada": await tokens.create(s, ACME, user_id="ada", role=Role.ADMIN),
                "bot": await tokens.create(s, ACME, user_id=None, role=Role.SERVICE),
                "gus": await tokens.create(s, GLOBEX, user_id="gus", role=Role.ADMIN),
            }
        storm_days = await _fill(runtime)
        auth = {name: {"Authorization": f"Bearer {token}"} for name, token in issued.items()}
        transport = httpx.ASGITransport(app=create_app(runtime, manage=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://trackd.test") as client:
            yield Api(runtime, client, auth, storm_days)
    finally:
        await runtime.stop()


async def _analyze(
    api: Api, who: str, *, ends: TaskState = TaskState.COMPLETED, **body: Any
) -> dict[str, Any]:
    """Ask for a run and wait (on the store, with a timeout) until its task ended as `ends`."""
    response = await api.call("POST", "/v1/observer/analyze", who, json=body)
    assert response.status_code == 202, response.text
    answer = response.json()
    async with asyncio.timeout(60):
        while True:
            async with api.runtime.sessions() as s:
                task = await tasks.get(s, ACME, answer["task_id"])
            if task is not None and task.state in (TaskState.COMPLETED, TaskState.FAILED):
                break
            await asyncio.sleep(0.05)
    assert task.state is ends, task
    return dict(answer)


async def test_drivers_come_from_the_solar_history_and_the_sky(api: Api) -> None:
    first, last = _today() - timedelta(days=DAYS), _today() - timedelta(days=1)
    async with api.runtime.sessions() as s:
        drivers = await user_drivers(
            s,
            ACME,
            "alice",
            ["kp_max", "storm_day", "bz_south", "lunar_phase", "moon_sign", "retrograde"],
            first=first,
            last=last,
            tz=journal.zone("UTC"),
        )
    by_name = {d.name: d for d in drivers}
    assert list(by_name) == [
        "kp_max",
        "storm_day",
        "bz_south",
        "lunar_phase",
        "moon_sign",
        "retrograde",
    ]
    assert {d for d, v in by_name["storm_day"].values.items() if v == 1} == api.storm_days
    assert by_name["bz_south"].values[first] == -2.0 * by_name["kp_max"].values[first]
    assert len(by_name["lunar_phase"].values) == DAYS
    assert set(by_name["moon_sign"].values.values()) <= {s * 30 + 15.0 for s in range(12)}
    assert by_name["lunar_phase"].kind == "circular"


async def test_a_run_is_a_tracked_task_that_finds_the_planted_effect_and_notifies(
    api: Api,
) -> None:
    answer = await _analyze(api, "alice")

    run = (await api.call("GET", f"/v1/observer/runs/{answer['run_id']}", "alice")).json()
    assert run["status"] == "completed" and run["task_id"] == answer["task_id"]
    assert run["tests_run"] == 2 * 3 * 2 and run["tests_skipped"] == 0
    assert run["found"] >= 1 and "nothing_passed" not in run
    found = (await api.call("GET", "/v1/observer/findings", "alice")).json()["findings"]
    # Storm days and Kp are one geomagnetic family: the tests of energy against them that
    # passed are one finding, the strongest its test and the others its `also`.
    storm = [
        f
        for f in found
        if f["outcome"] == "energy"
        and ("storm_day", 0)
        in {(f["driver"], f["lag"]), *((a["driver"], a["lag"]) for a in f["also"])}
    ]
    assert len(storm) == 1
    (finding,) = storm
    assert finding["family"] == "geomagnetic" and finding["status"] == "holding"
    assert [f for f in found if (f["outcome"], f["family"]) == ("energy", "geomagnetic")] == storm
    assert finding["effect"] < 0 and finding["q"] <= 0.1
    assert finding["ci_high"] < 0 and finding["direction"] in ("lower", "negative")
    assert all(a["q"] <= 0.1 and a["p"] >= finding["p"] for a in finding["also"])
    assert finding["details"]["also"] == finding["also"]
    assert finding["first_seen"] == finding["last_confirmed"]

    async with api.runtime.sessions() as s:
        queued = await outbox.recent(s, ACME, limit=100)
    sent = [m for m in queued if m.event_type == "observer.finding" and m.channel_id is not None]
    assert len(sent) == run["found"]
    assert any(m.payload["event"]["driver"] == "storm_day" for m in sent)

    async with api.runtime.sessions() as s:
        contributions = await service.synthesis(s, ACME, "alice", datetime.now(UTC))
    (observer,) = [c for c in contributions if c.module == "observer"]
    assert finding["sentence"] in observer.insights
    assert observer.data["findings"] == run["found"]
    assert observer.data["last_run"]["id"] == answer["run_id"]

    # Run again: the finding is confirmed, not duplicated, and not notified twice.
    again = await _analyze(api, "alice")
    found2 = (await api.call("GET", "/v1/observer/findings", "alice")).json()["findings"]
    (finding2,) = [f for f in found2 if f["id"] == finding["id"]]
    assert finding2["confirmations"] == 2 and finding2["first_seen"] == finding["first_seen"]
    assert finding2["last_confirmed"] > finding["last_confirmed"]
    async with api.runtime.sessions() as s:
        queued = await outbox.recent(s, ACME, limit=100)
    assert len([m for m in queued if m.event_type == "observer.finding" and m.channel_id]) == len(
        sent
    )
    runs = (await api.call("GET", "/v1/observer/runs", "alice")).json()["runs"]
    assert [r["id"] for r in runs] == [again["run_id"], answer["run_id"]]

    # Energy no longer tested: the finding stops holding and is kept as history.
    async with api.runtime.sessions() as s, s.begin():
        only_mood = {**CONFIG, "outcomes": ["mood"]}
        await service.write_config(s, ACME, "observer", config=only_mood, version=1)
    third = await _analyze(api, "alice")
    shown = (await api.call("GET", f"/v1/observer/runs/{third['run_id']}", "alice")).json()
    assert shown["tests_run"] == 6
    if shown["found"] == 0:
        assert shown["nothing_passed"].startswith("6 tests were run and none passed")
    holding = (await api.call("GET", "/v1/observer/findings", "alice")).json()["findings"]
    assert [f for f in holding if f["outcome"] == "energy"] == []
    history = (
        await api.call("GET", "/v1/observer/findings", "alice", params={"history": "true"})
    ).json()["findings"]
    kept = [f for f in history if f["id"] == finding["id"]]
    assert kept[0]["status"] == "stopped" and kept[0]["stopped_at"] is not None
    stopped = await api.call("GET", "/v1/observer/findings", "alice", params={"status": "stopped"})
    assert finding["id"] in [f["id"] for f in stopped.json()["findings"]]
    assert {f["status"] for f in stopped.json()["findings"]} == {"stopped"}
    strict = await api.call("GET", "/v1/observer/findings", "alice", params={"max_q": 1e-9})
    assert strict.json()["findings"] == []
    bad = await api.call("GET", "/v1/observer/findings", "alice", params={"status": "gone"})
    assert bad.status_code == 422


async def test_an_on_demand_run_that_failed_midway_runs_again(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = itertools.count()

    def fails_once(*args: Any) -> Any:
        if next(calls) == 0:
            raise ConnectionError("worker lost its database mid-run")
        return analyze(*args)

    monkeypatch.setattr(observer_runs, "analyze", fails_once)
    answer = await _analyze(api, "alice")  # the poller's backoff: about 5 s between attempts

    run = (await api.call("GET", f"/v1/observer/runs/{answer['run_id']}", "alice")).json()
    assert run["status"] == "completed" and run["found"] >= 1
    async with api.runtime.sessions() as s:
        poll = await polls.get(s, ACME, uuid.UUID(answer["task_id"]))
    assert poll is not None and poll.attempt == 2 and poll.max_attempts == ON_DEMAND_ATTEMPTS


async def test_a_run_whose_data_cannot_be_analysed_fails_at_once_with_the_reason(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuses(*args: Any) -> Any:
        raise ValueError("outcome 'energy': the value on 2026-01-01 is not a finite number")

    monkeypatch.setattr(observer_runs, "analyze", refuses)
    answer = await _analyze(api, "alice", ends=TaskState.FAILED)

    run = (await api.call("GET", f"/v1/observer/runs/{answer['run_id']}", "alice")).json()
    assert run["status"] == "failed" and "not a finite number" in run["error"]
    async with api.runtime.sessions() as s:
        poll = await polls.get(s, ACME, uuid.UUID(answer["task_id"]))
    assert poll is not None and poll.attempt == 1 and "Unanalysable" in (poll.error or "")


async def test_who_may_run_and_read_whose_observer(api: Api) -> None:
    mine = await _analyze(api, "bob")
    run_path = f"/v1/observer/runs/{mine['run_id']}"

    assert (await api.call("GET", run_path, "alice")).status_code == 403
    assert (await api.call("GET", run_path, "ada")).status_code == 200
    assert (await api.call("GET", run_path, "gus")).status_code == 404
    bob = {"user": "bob"}
    for path in ("/v1/observer/findings", "/v1/observer/runs"):
        assert (await api.call("GET", path, "alice", params=bob)).status_code == 403
        assert (await api.call("GET", path, "rita", params=bob)).status_code == 200
        assert (await api.call("GET", path, "gus", params=bob)).status_code == 404
    response = await api.call("POST", "/v1/observer/analyze", "alice", json=bob)
    assert response.status_code == 403
    response = await api.call("POST", "/v1/observer/analyze", "rita", json=bob)
    assert response.status_code == 403
    response = await api.call("POST", "/v1/observer/analyze", "bot", json={"user": "nobody"})
    assert response.status_code == 404 and "nobody" in response.json()["error"]["message"]
    response = await api.call("POST", "/v1/observer/analyze", "bot", json={"usr": "bob"})
    assert response.status_code == 422
    assert (await api.call("GET", "/v1/observer/runs/not-a-uuid", "alice")).status_code == 422
    served = await _analyze(api, "bot", user="bob")
    assert served["user_id"] == "bob"


async def test_the_nightly_schedule_covers_every_bucket_once(api: Api) -> None:
    async with api.runtime.sessions() as s, s.begin():
        assert await ensure_nightly_schedule(s, ACME)
        assert not await ensure_nightly_schedule(s, ACME)
    async with api.runtime.sessions() as s:
        (schedule,) = await schedules_repo.find(s, ACME, source="observer")
    spans = [t["buckets"] for t in schedule.targets]
    assert schedule.targets == shard_targets(ACME)
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert spans[-1][1] == 1024


async def test_a_run_with_too_few_days_says_what_it_skipped_and_that_nothing_passed(
    api: Api,
) -> None:
    for i in range(5):
        day = _today() - timedelta(days=5 - i)
        body = {"timestamp": f"{day.isoformat()}T08:00:00+00:00", "mood_score": 5,
                "energy_score": 6}  # fmt: skip
        assert (await api.call("POST", "/v1/me/journal", "ada", json=body)).status_code == 201

    answer = await _analyze(api, "ada")
    run = (await api.call("GET", f"/v1/observer/runs/{answer['run_id']}", "ada")).json()

    assert (run["tests_run"], run["tests_skipped"], run["found"]) == (0, 12, 0)
    assert run["nothing_passed"] == (
        "0 tests were run and none passed the false discovery rate q = 0.1: no finding"
    )
    assert {s["reason"] for s in run["skipped"]} == {
        "5 days of mood, fewer than the minimum of 30",
        "5 days of energy, fewer than the minimum of 30",
    }
    found = await api.call("GET", "/v1/observer/findings", "ada", params={"history": "true"})
    assert found.json() == {"user_id": "ada", "findings": []}


async def test_transit_aspects_are_read_where_stored_and_computed_elsewhere(api: Api) -> None:
    birth = {"birth": "1990-05-01T12:00:00Z", "latitude": 48.85, "longitude": 2.35}
    assert (await api.call("PUT", "/v1/me/natal", "alice", json=birth)).status_code == 200
    first = _today() - timedelta(days=6)
    stored_day = first + timedelta(days=2)
    async with api.runtime.sessions() as s, s.begin():
        reading = {"aspects": [["sun", "moon", "trine", 1.0, False, True]] * 2}
        at = datetime(stored_day.year, stored_day.month, stored_day.day, 9, tzinfo=UTC)
        await backfill_history(
            s, ACME, [Snapshot("alice", "transits", reading, at)], retention=Retention()
        )
    async with api.runtime.sessions() as s:
        (driver,) = await user_drivers(
            s, ACME, "alice", ["transit_aspects"], first=first, last=_today(),
            tz=journal.zone("UTC"),
        )  # fmt: skip
        chart = await natal_charts.get(s, ACME, "alice")
        config = await transits.config_of(s, ACME)
    assert chart is not None
    expected = {}
    for i in range(7):
        day = first + timedelta(days=i)
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        (as_refreshed,) = transits.readings(
            transits.sky_at(noon, config), [longitudes(chart.points)], config
        )
        expected[day] = float(len(as_refreshed["aspects"]))
    expected[stored_day] = 2.0
    assert driver.values == expected
