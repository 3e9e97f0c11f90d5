"""The Tracker over HTTP against a scripted server (httpx.MockTransport): every answer."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from trackd.api.routers.events import MAX_EVENTS
from trackd.sdk import Tracker, TrackerDeliveryFailed
from trackd.sdk.http import MAX_EVENTS_PER_REQUEST, MAX_REQUEST_BYTES, requests
from trackd.settings import Settings

Handler = Callable[[list[dict[str, Any]]], httpx.Response]


class Server:
    """Answers each POST /v1/events with what `answer` returns; keeps what it was sent."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []
        self.posted: list[list[dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        events = json.loads(request.content)["events"]
        self.posted.append(events)
        return self.answer(events)

    def tracker(self, **kwargs: Any) -> Tracker:
        return Tracker(
            "http://trackd.test/",
            token="trk_secret",
            transport=httpx.MockTransport(self),
            **kwargs,
        )

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.posted for e in batch]


def accepted(events: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(202, json={"accepted": len(events), "rejected": 0, "results": []})


def run_tasks(tracker: Tracker, count: int) -> None:
    for i in range(count):
        with tracker.track("job", task_id=f"job-{i}"):
            pass


def test_batches_are_posted_with_the_token() -> None:
    server = Server(accepted)
    with server.tracker() as tracker:
        run_tasks(tracker, 3)
    request = server.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "http://trackd.test/v1/events"
    assert request.headers["Authorization"] == "Bearer trk_secret"
    assert request.headers["Content-Type"] == "application/json"
    assert len(server.events) == 9
    assert tracker.stats.delivered == 9


def test_a_batch_is_split_into_requests_of_at_most_500_events() -> None:
    server = Server(accepted)
    with server.tracker(batch_size=2000, flush_interval=30) as tracker:
        run_tasks(tracker, 400)  # 1200 events
        tracker.flush()
    assert max(len(batch) for batch in server.posted) <= 500
    assert len(server.events) == 1200


def test_events_rejected_one_by_one_are_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def some_rejected(events: list[dict[str, Any]]) -> httpx.Response:
        results: list[dict[str, Any]] = [
            {"index": i, "id": e["id"], "status": "accepted"} for i, e in enumerate(events)
        ]
        results[1] = {
            "index": 1,
            "id": events[1]["id"],
            "status": "rejected",
            "error": {"code": "invalid_event", "message": "data.state: unknown task state"},
        }
        return httpx.Response(
            207, json={"accepted": len(events) - 1, "rejected": 1, "results": results}
        )

    server = Server(some_rejected)
    with caplog.at_level(logging.ERROR, logger="trackd.sdk"), server.tracker() as tracker:
        run_tasks(tracker, 1)
        tracker.flush()  # a rejection one by one is logged, not raised
    assert (tracker.stats.delivered, tracker.stats.rejected) == (2, 1)
    assert "unknown task state" in caplog.text
    assert server.events[1]["id"] in caplog.text


def test_server_errors_and_lost_connections_are_retried() -> None:
    answers = iter(["503", "connect", "500"])

    def flaky(events: list[dict[str, Any]]) -> httpx.Response:
        answer = next(answers, "ok")
        if answer == "connect":
            raise httpx.ConnectError("connection refused")
        if answer != "ok":
            return httpx.Response(int(answer), json={"error": {"code": "x", "message": "busy"}})
        return accepted(events)

    server = Server(flaky)
    with server.tracker() as tracker:
        run_tasks(tracker, 2)
        tracker.flush(timeout=10)
        assert tracker.stats.retries == 3
    assert tracker.stats.delivered == 6
    ids = [e["id"] for e in server.events]
    assert ids[:6] == ids[-6:]  # every retry sent the very same events


def test_a_refusal_is_reported_by_the_next_flush() -> None:
    def unauthorized(events: list[dict[str, Any]]) -> httpx.Response:
        error = {"code": "unauthorized", "message": "invalid or expired token"}
        return httpx.Response(401, json={"error": error})

    server = Server(unauthorized)
    tracker = server.tracker()
    try:
        run_tasks(tracker, 2)
        with pytest.raises(TrackerDeliveryFailed, match="401") as raised:
            tracker.flush()
        assert "trackd token create" in str(raised.value)
        assert tracker.stats.dropped == 6
        assert len(server.posted) == 1  # a refusal is not retried
        tracker.flush()  # reported once
    finally:
        tracker.close()


def test_a_request_too_large_is_split_until_it_fits() -> None:
    def small_only(events: list[dict[str, Any]]) -> httpx.Response:
        if len(events) > 2:
            return httpx.Response(413, json={"error": {"code": "too_large", "message": "big"}})
        return accepted(events)

    server = Server(small_only)
    with server.tracker(flush_interval=30) as tracker:
        run_tasks(tracker, 3)
        tracker.flush()
        assert tracker.stats.delivered == 9
    stored = [e["id"] for batch in server.posted if len(batch) <= 2 for e in batch]
    assert len(stored) == len(set(stored)) == 9


def test_a_batch_refused_whole_as_invalid_counts_each_event() -> None:
    def invalid(events: list[dict[str, Any]]) -> httpx.Response:
        details = [
            {"index": i, "id": e["id"], "status": "rejected", "error": {"message": "bad"}}
            for i, e in enumerate(events)
        ]
        error = {"code": "invalid_event", "message": "no event was accepted", "details": details}
        return httpx.Response(422, json={"error": error})

    server = Server(invalid)
    with server.tracker() as tracker:
        run_tasks(tracker, 1)
        tracker.flush()
    assert (tracker.stats.delivered, tracker.stats.rejected) == (0, 3)


def test_a_batch_is_cut_at_the_servers_event_count_and_request_size() -> None:
    assert (MAX_EVENTS_PER_REQUEST, MAX_REQUEST_BYTES) == (MAX_EVENTS, Settings().max_request_bytes)
    batch = [(f"e{n}", "k", b"x" * 10) for n in range(7)]
    # {"events":[...]} is 13 bytes; each event 10 more, and a comma between two.
    assert [len(r) for r in requests(batch, 500, 13 + 10 * 3 + 2)] == [3, 3, 1]
    assert [len(r) for r in requests(batch, 2, 10_000)] == [2, 2, 2, 1]
    big = [("a", "k", b"x" * 5), ("b", "k", b"x" * 50), ("c", "k", b"x" * 5)]
    assert [[w[0] for w in r] for r in requests(big, 500, 30)] == [["a"], ["b"], ["c"]]
    assert [b"".join(w[2] for w in r) for r in requests(batch, 500, 10_000)] == [b"x" * 70]


def test_an_event_too_large_alone_is_rejected_and_the_others_delivered() -> None:
    def limited(events: list[dict[str, Any]]) -> httpx.Response:
        if any(len(e["data"].get("blob", "")) > 100 for e in events):
            return httpx.Response(413, json={"error": {"code": "too_large", "message": "big"}})
        return accepted(events)

    server = Server(limited)
    with server.tracker(flush_interval=30) as tracker:
        with tracker.track("job", data={"blob": "y" * 500}):
            pass
        run_tasks(tracker, 1)
        tracker.flush()
        assert (tracker.stats.delivered, tracker.stats.rejected, tracker.stats.dropped) == (5, 1, 0)
