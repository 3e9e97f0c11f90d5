"""The compiled envelope decoder (`trackd.domain.wire`) against the pydantic model: for any
input, both accept with the same values or both refuse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackd.domain import events, wire
from trackd.domain.events import EventRules, InvalidEventError
from trackd.domain.jsonpolicy import JsonPolicy

RULES = EventRules(now=datetime(2026, 1, 11, 12, 0, tzinfo=UTC))
ALIAS_FIELDS = [s for name in wire.ALIASED for s in wire._SPELLINGS[name]]

tricky_text = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", ".", "..", "a/b", "x\x00y", "\u200b", "\u00a0", "ok", "é", "a" * 100]),
    st.sampled_from(["a" * 101, "s" * 255, "s" * 256, "line\nbreak", "tab\there", "\x7f"]),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=4),
)
times = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9998, 12, 30),
        timezones=st.sampled_from([UTC, None]),
    ).map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.sampled_from(
        [
            "2026-01-11T10:00:00Z",
            "2026-01-11T10:00:00.5+05:30",
            "2026-01-11T10:00:00.1234567Z",
            "2026-01-11 10:00:00Z",
            "2026-01-11T24:00:00Z",
            "2026-01-11T10:00:60Z",
            "2026-02-30T10:00:00Z",
            "2026-01-11",
            "2026-01-12T10:00:00-23:59",
            "2026-01-13T10:00:00Z",
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+01:00",
            "1700000000",
        ]
    ),
    st.integers(min_value=0, max_value=2_000_000_000),
    st.none(),
)
numbers = st.one_of(
    st.integers(),
    st.sampled_from([0, 1, 10_000, 10_001, 2**53, 2**53 + 1, 2**63, -(2**63) - 1, True, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)
json_leaf = st.one_of(st.none(), st.booleans(), numbers, tricky_text)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(tricky_text, inner, max_size=3)
    ),
    max_leaves=8,
)
field_value = st.one_of(tricky_text, numbers, json_value, st.booleans())


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for name, strategy in (
        ("id", st.one_of(tricky_text, field_value)),
        ("source", st.one_of(tricky_text, field_value)),
        ("type", st.one_of(st.sampled_from(["task.progress", "work.done"]), tricky_text)),
        ("time", times),
    ):
        if draw(st.integers(0, 9)) > 0:
            value[name] = draw(strategy)
    optional = [
        "specversion",
        "data",
        "datacontenttype",
        "data_base64",
        "topic",
        "subject",
        "sequence",
        "attempt",
        "success",
        "result",
        "error",
        "published_by",
        "unknown",
        *ALIAS_FIELDS,
    ]
    for name in draw(st.lists(st.sampled_from(optional), max_size=6, unique=True)):
        value[name] = draw(
            st.one_of(
                field_value,
                st.sampled_from(["aGk=", "not base64!", {"k": "v"}, "t-1", None]),
            )
        )
    return value


ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9_.:-]{1,12}", fullmatch=True),
    st.text(min_size=1, max_size=8),
    st.sampled_from([".", "..", "a/b", "\u00a0x", "a" * 100, "a" * 101]),
)
small_json = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=4), json_leaf, max_size=3),
    st.dictionaries(st.text(max_size=3), json_value, max_size=2),
)


good_times = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(2026, 1, 12),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    ).map(lambda d: d.isoformat()),
    st.datetimes(max_value=datetime(2026, 1, 12)).map(
        lambda d: d.isoformat(timespec="milliseconds") + "Z"
    ),
)
good_ids = st.from_regex(r"[A-Za-z0-9_.:-]{1,12}", fullmatch=True)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """Envelopes that are mostly right, each part sometimes wrong."""

    def part(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
        return draw(bad if draw(st.integers(0, 9)) == 0 else good)

    value: dict[str, Any] = {
        "id": part(good_ids, ids),
        "source": part(st.text(min_size=1, max_size=10), st.just("")),
        "type": part(st.just("task.progress"), st.sampled_from(["", "t" * 256, "t" * 255])),
    }
    if draw(st.booleans()):
        value["time"] = part(good_times, times)
    short = st.text(max_size=4)
    kinds: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
        "specversion": (st.just("1.0"), st.one_of(st.none(), st.integers())),
        "data": (small_json, json_value),
        "result": (small_json, json_value),
        "datacontenttype": (st.one_of(st.none(), short), st.just("c" * 256)),
        "data_base64": (st.one_of(st.none(), st.just("aGk=")), st.sampled_from(["aGk", "!!"])),
        "topic": (st.one_of(st.none(), short), st.just("t" * 101)),
        "subject": (st.one_of(st.none(), short), st.integers()),
        "sequence": (st.integers(0, 2**53), numbers),
        "attempt": (st.integers(1, 10_000), numbers),
        "success": (st.one_of(st.none(), st.booleans()), st.integers(0, 1)),
        "error": (st.one_of(st.none(), short), st.integers()),
        "published_by": (st.one_of(st.none(), good_ids), ids),
        "unknown": (json_value, json_value),
        **{name: (st.one_of(st.none(), good_ids), ids) for name in ALIAS_FIELDS},
    }
    for name in draw(st.lists(st.sampled_from(sorted(kinds)), max_size=8, unique=True)):
        value[name] = part(*kinds[name])
    return value


def both(raw: bytes | str, rules: EventRules = RULES) -> tuple[Any, Any]:
    """What the compiled path (`decode_envelope` on bytes) and the model alone make of it."""
    outcomes = []
    for decode in (events.decode_envelope, events._decode_checked):
        try:
            outcomes.append(decode(raw, rules))
        except InvalidEventError:
            outcomes.append(None)
    return outcomes[0], outcomes[1]


def assert_same(raw: bytes | str, rules: EventRules = RULES) -> None:
    fast, checked = both(raw, rules)
    assert (fast is None) == (checked is None), raw
    if fast is None or checked is None:
        return
    fast_values, checked_values = fast.model_dump(), checked.model_dump()
    if "time" not in checked.model_fields_set:  # the time of receipt: each read the clock
        assert abs(fast.time - checked.time) < timedelta(minutes=1)
        del fast_values["time"], checked_values["time"]
    assert list(fast_values.items()) == list(checked_values.items()), raw
    assert fast.model_fields_set == checked.model_fields_set


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(envelopes(), near_valid(), near_valid()), st.booleans())
def test_the_compiled_decoder_and_the_model_agree(value: dict[str, Any], ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert_same(text.encode("utf-8", "surrogatepass"))
    assert_same(text)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid(), st.integers(min_value=1, max_value=4))
def test_they_agree_on_the_depth_bound(value: dict[str, Any], depth: int) -> None:
    rules = EventRules(now=RULES.now, json=JsonPolicy(max_depth=depth))
    assert_same(json.dumps(value).encode(), rules)


@pytest.mark.parametrize(
    "text",
    [
        b'{"id":"e","source":"s","type":"t","trace_id":"a","traceId":"b","traceid":"c"}',
        b'{"id":"e","source":"s","type":"t","traceId":"b","traceid":"c"}',
        b'{"id":"e","source":"s","type":"t","trace_id":null,"traceId":"b"}',
        b'{"id":"e","source":"s","type":"t","id":"f"}',
        b'{"id":"e","source":"s","type":"t","data":{"n":12345678901234567890}}',
        b'{"id":"e","source":"s","type":"t","data":{"n":1e400}}',
        b'{"id":"e","source":"s","type":"t","data":{"n":NaN}}',
        b'{"id":"e","source":"s","type":"t","data":{"s":"\\ud800"}}',
        b'{"id":"e","source":"s","type":"t","data":{"s":"\\ud83d\\ude00"}}',
        b'{"id":"e","source":"s","type":"t","extra":"\\u0000"}',
        b'{"id":"e","source":"s","type":"t","data":{"x":1},"data_base64":"aGk="}',
        b'\xef\xbb\xbf{"id":"e","source":"s","type":"t"}',
        b' {"id":"e","source":"s","type":"t"} ',
        b'["id"]',
        b"not json",
        b'{"id":"e","source":"s","type":"t","time":"2026-01-13T10:00:00Z"}',
    ],
)
def test_they_agree_on_edge_cases(text: bytes) -> None:
    assert_same(text)


def test_the_compiled_decoder_takes_a_plain_event() -> None:
    raw = b'{"id":"e-1","source":"w","type":"task.progress","time":"2026-01-11T10:00:00+01:00"}'
    values, fields_set = wire.decode(raw, 32)
    assert values["time"] == datetime(2026, 1, 11, 9, 0, tzinfo=UTC)
    assert fields_set == {"id", "source", "type", "time"}


def test_the_compiled_decoder_leaves_other_time_formats_to_the_model() -> None:
    raw = b'{"id":"e-1","source":"w","type":"t","time":1768125600}'
    with pytest.raises(wire.Unsure):
        wire.decode(raw, 32)
    assert events.decode_envelope(raw, RULES).time == datetime(2026, 1, 11, 10, 0, tzinfo=UTC)


def test_the_platform_sdks_envelopes_are_decided_by_the_compiled_decoder() -> None:
    """What the agent platform's SDK puts on the bus takes the fast path, with the model's
    values (both of its dumps: camelCase aliases and CloudEvents names)."""
    from soorma_common.events import EventEnvelope as PlatformEnvelope
    from soorma_common.events import EventTopic

    env = PlatformEnvelope(
        source="research-worker",
        type="task.progress",
        topic=EventTopic.SYSTEM_EVENTS,
        data={"task_id": "task-1", "state": "running", "progress": 0.5},
        correlation_id="corr-9",
        trace_id="trace-9",
        tenant_id="tenant-9",
        plan_id="plan-9",
        time=datetime(2026, 1, 11, 11, 0, tzinfo=timezone(timedelta(hours=-1))),
    )
    for dumped in (env.model_dump(by_alias=True, mode="json"), env.to_cloudevents_dict()):
        raw = json.dumps(dumped).encode()
        values, _ = wire.decode(raw, 32)
        assert values["trace_id"] == "trace-9"
        assert values["time"] == datetime(2026, 1, 11, 12, 0, tzinfo=UTC)
        assert_same(raw)
