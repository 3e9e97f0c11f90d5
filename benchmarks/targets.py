"""The "Issue targets" table `python -m benchmarks` prints last: each measure of the ingest,
reads and SDK targets, with the figure before the work (a constant, with its source), the
target, this run's figure and whether it is met.

It reads only the report dict the sections filled (the same dict written as JSON), so a
section that was skipped, or whose key is missing, shows "not run". Keys read: `ingest`
(a list with `backend`, `events_per_s`, `ratio_to_raw`), `peer_celery_state`
(`events_per_s`), `http_ingest` (`events_per_s`), `redis_ingest` (a list, or a dict holding
one under `results`, of entries with `processes` and `events_per_s`), `reads` (a list with
`backend`, `route`, `p95_ms`), `sdk` (`caller_us`, `process_cpu_us`, `tracked_us`) and `rss`
(`flat`, `rss_slope_mib_per_min`, `seconds`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.table import Table

# Where the "before" figures come from: the issue that set the targets, quoting `make bench`
# on the development machine (2 cores) before the work on them.
BEFORE_SOURCE = (
    "before: the figures the targets were set against (issue 14, quoting `make bench` of "
    "issue 3 on 2 cores)"
)
NOT_RUN = "not run"

INGEST_EVENTS_PER_S = 30_000.0
INGEST_RATIO_TO_RAW = 0.5
INGEST_RATIO_TO_CELERY = 0.4
HTTP_RATIO_TO_CELERY = 0.25
REDIS_EVENTS_PER_S = 20_000.0
REDIS_SCALING = 1.6
READ_P95_MS = {"status": 2.0, "tasks": 10.0, "timeline": 15.0}
SDK_US = 10.0
RSS_SECONDS = 300.0

Report = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    """This run's figure for one measure: the text shown and whether it meets the target
    (None: not known, e.g. part of it was not run)."""

    text: str
    met: bool | None


@dataclass(frozen=True)
class Row:
    measure: str
    before: str
    target: str
    now: Callable[[Report], Figure | None]  # None: the section did not run


def _list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        value = value.get("results", [value])
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _celery(report: Report) -> float | None:
    peer = report.get("peer_celery_state")
    rate = peer.get("events_per_s") if isinstance(peer, dict) else None
    return float(rate) if rate else None


def _all_met(checks: list[bool | None]) -> bool | None:
    if any(c is False for c in checks):
        return False
    return None if any(c is None for c in checks) else True


def _ingest(backend: str) -> Callable[[Report], Figure | None]:
    def now(report: Report) -> Figure | None:
        found = [r for r in _list(report.get("ingest")) if backend in str(r.get("backend", ""))]
        if not found:
            return None
        r = found[0]
        rate, raw = float(r["events_per_s"]), r.get("ratio_to_raw")
        celery = _celery(report)
        parts = [f"{rate:,.0f} ev/s"]
        checks: list[bool | None] = [rate >= INGEST_EVENTS_PER_S]
        if raw is not None:
            parts.append(f"{raw:.2f} x raw")
        checks.append(None if raw is None else raw >= INGEST_RATIO_TO_RAW)
        if celery is None:
            parts.append(f"State {NOT_RUN}")
            checks.append(None)
        else:
            parts.append(f"{rate / celery:.2f} x State")
            checks.append(rate / celery >= INGEST_RATIO_TO_CELERY)
        return Figure("; ".join(parts), _all_met(checks))

    return now


def _http(report: Report) -> Figure | None:
    result = report.get("http_ingest")
    if not isinstance(result, dict):
        return None
    rate = float(result["events_per_s"])
    celery = _celery(report)
    if celery is None:
        return Figure(f"{rate:,.0f} ev/s; State {NOT_RUN}", None)
    ratio = rate / celery
    return Figure(
        f"{ratio:.3f} x State ({rate:,.0f} / {celery:,.0f} ev/s)", ratio >= HTTP_RATIO_TO_CELERY
    )


def _redis_rates(report: Report) -> dict[int, float]:
    rates = {}
    for r in _list(report.get("redis_ingest")):
        processes = r.get("processes", r.get("ingest_processes"))
        if isinstance(processes, int) and r.get("events_per_s") is not None:
            rates[processes] = float(r["events_per_s"])
    return rates


def _redis_one(report: Report) -> Figure | None:
    one = _redis_rates(report).get(1)
    if one is None:
        return None
    return Figure(f"{one:,.0f} ev/s", one >= REDIS_EVENTS_PER_S)


def _redis_two(report: Report) -> Figure | None:
    rates = _redis_rates(report)
    two = rates.get(2)
    if two is None:
        return None
    one = rates.get(1)
    if one is None:
        return Figure(f"{two:,.0f} ev/s; 1 process {NOT_RUN}", None)
    return Figure(f"{two / one:.2f} x one ({two:,.0f} ev/s)", two / one >= REDIS_SCALING)


def _route_kind(route: str) -> str:
    route = route.lower()
    if "status" in route:
        return "status"
    if "timeline" in route:
        return "timeline"
    return "tasks" if "tasks" in route else ""


def _read(kind: str) -> Callable[[Report], Figure | None]:
    def now(report: Report) -> Figure | None:
        found = [r for r in _list(report.get("reads")) if _route_kind(str(r.get("route"))) == kind]
        if not found:
            return None
        text = " / ".join(f"{r['backend']} {float(r['p95_ms']):.1f}" for r in found) + " ms"
        return Figure(text, all(float(r["p95_ms"]) <= READ_P95_MS[kind] for r in found))

    return now


def _sdk(report: Report) -> Figure | None:
    sdk = report.get("sdk")
    if not isinstance(sdk, dict) or sdk.get("caller_us") is None:
        return None
    caller = float(sdk["caller_us"])
    until_sent = f"{float(sdk['tracked_us']):.1f} µs wall"
    if sdk.get("process_cpu_us") is not None:
        until_sent = f"{float(sdk['process_cpu_us']):.1f} µs CPU, {until_sent}"
    text = f"{caller:.1f} µs caller's thread ({until_sent} until sent)"
    return Figure(text, caller <= SDK_US)


def _rss(report: Report) -> Figure | None:
    rss = report.get("rss")
    if not isinstance(rss, dict) or "flat" not in rss:
        return None
    slope, seconds = float(rss["rss_slope_mib_per_min"]), float(rss["seconds"])
    text = f"{'flat' if rss['flat'] else 'not flat'} ({slope:+.2f} MiB/min over {seconds:.0f} s)"
    # A shorter run than the target's says less: it cannot meet it.
    met = bool(rss["flat"]) if seconds >= RSS_SECONDS else None
    return Figure(text, met)


ROWS = (
    Row(
        "durable ingest, SQLite (bus → committed records)",
        "4,447 ev/s; 0.09-0.10 x raw; 0.11-0.17 x State",
        "≥ 30,000 ev/s; ≥ 0.5 x raw; ≥ 0.4 x State",
        _ingest("sqlite"),
    ),
    Row(
        "durable ingest, PostgreSQL (bus → committed records)",
        "2,880 ev/s; 0.09-0.10 x raw; 0.11-0.17 x State",
        "≥ 30,000 ev/s; ≥ 0.5 x raw; ≥ 0.4 x State",
        _ingest("postgresql"),
    ),
    Row(
        "POST /v1/events, 4 clients x 500-event batches",
        "0.065 x State (2,087 / 32,185 ev/s)",
        "≥ 0.25 x State, same run",
        _http,
    ),
    Row("Redis Streams + PostgreSQL, 1 ingest process", "~1,600 ev/s", "≥ 20,000 ev/s", _redis_one),
    Row("Redis Streams + PostgreSQL, 2 ingest processes", "—", "≥ 1.6 x one process", _redis_two),
    Row("read p95 at 1M tasks: plan status", "16-20 ms", "≤ 2 ms", _read("status")),
    Row("read p95 at 1M tasks: a plan's 1,000 tasks", "50-58 ms", "≤ 10 ms", _read("tasks")),
    Row("read p95 at 1M tasks: 1,000-event timeline", "116-119 ms", "≤ 15 ms", _read("timeline")),
    Row("SDK per @tracked call, delivery included", "37 µs", "≤ 10 µs", _sdk),
    Row("RSS under 300 s of sustained load", "flat", "flat", _rss),
)


def rows(report: Report) -> list[dict[str, str]]:
    """The table as dicts (measure, before, target, now, met); `met` is yes, no, or "?" when
    part of the figure was not run."""
    out = []
    for row in ROWS:
        figure = row.now(report)
        if figure is None:
            now, met = NOT_RUN, NOT_RUN
        else:
            now, met = figure.text, {True: "yes", False: "no", None: "?"}[figure.met]
        out.append(
            {
                "measure": row.measure,
                "before": row.before,
                "target": row.target,
                "now": now,
                "met": met,
            }
        )
    return out


def table(report: Report) -> Table:
    shown = Table(
        "measure", "before", "target", "now", "met", title="Issue targets", caption=BEFORE_SOURCE
    )
    for r in rows(report):
        shown.add_row(r["measure"], r["before"], r["target"], r["now"], r["met"])
    return shown
