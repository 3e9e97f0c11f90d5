"""The JSON policy (trackd.domain.jsonpolicy): what it accepts is JSON both stores and every
client read back as it was; what it refuses is named by its path."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackd.domain.events import InvalidEventError, decode_envelope
from trackd.domain.jsonpolicy import (
    DEFAULT_MAX_DEPTH,
    INT_MAX,
    INT_MIN,
    STORE_POLICY,
    JsonPolicy,
    JsonRefused,
    _acceptable,
    _problem,
    _walk,
    check,
    parse,
    text_passes,
)
from trackd.store.types import JsonText, parsed_json

POLICY = JsonPolicy()

# Kept small (few leaves, short text) so each example is cheap on a loaded machine.
_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=8
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=12,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


@given(_values)
def test_what_it_accepts_round_trips_through_strict_encoders(value: Any) -> None:
    check(value, POLICY)
    strict = json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert json.loads(strict) == value
    assert orjson.loads(orjson.dumps(value)) == value


@pytest.mark.parametrize(
    ("value", "where", "words"),
    [
        ({"a": [1, math.nan]}, "a[1]", "finite"),
        ({"a": {"b": math.inf}}, "a.b", "finite"),
        ({"a": -math.inf}, "a", "finite"),
        ({"s": ["ok", "\ud800"]}, "s[1]", "lone surrogate"),
        ({"\udfff": 1}, "\\udfff", "lone surrogate"),
        ({"s": "a\x00b"}, "s", "NUL"),
        ({"n": INT_MAX + 1}, "n", "64-bit"),
        ({"n": INT_MIN - 1}, "n", "64-bit"),
        (math.nan, "body", "finite"),
        ({"set": {1}}, "set", "not a JSON value"),
    ],
)
def test_a_refused_value_is_named_by_its_path(value: Any, where: str, words: str) -> None:
    with pytest.raises(JsonRefused) as caught:
        check(value, POLICY)
    assert caught.value.where == where
    assert words in caught.value.problem
    # The message itself must be valid JSON text, lone surrogates and all.
    orjson.dumps(str(caught.value))


def test_the_64_bit_edges_and_large_finite_floats_are_accepted() -> None:
    check({"max": INT_MAX, "min": INT_MIN, "big": 1e308, "tiny": -5e-324, "flag": True}, POLICY)


def test_depth_is_counted_in_containers() -> None:
    check(nested(DEFAULT_MAX_DEPTH), POLICY)
    with pytest.raises(JsonRefused) as caught:
        check(nested(DEFAULT_MAX_DEPTH + 1), POLICY)
    assert f"deeper than {DEFAULT_MAX_DEPTH}" in caught.value.problem
    assert caught.value.where == ".".join(["a"] * DEFAULT_MAX_DEPTH)
    check(nested(40), JsonPolicy(max_depth=40))
    check([[[1]]], JsonPolicy(max_depth=3))
    with pytest.raises(JsonRefused):
        check([[[[1]]]], JsonPolicy(max_depth=3))


def test_very_deep_values_are_refused_not_a_recursion_error() -> None:
    with pytest.raises(JsonRefused, match="deeper"):
        check(nested(100_000), POLICY)
    with pytest.raises(JsonRefused, match="too deeply"):
        parse(b"[" * 100_000 + b"]" * 100_000)


def test_parse_refuses_what_is_not_json() -> None:
    with pytest.raises(JsonRefused, match="not valid JSON"):
        parse(b"{not json")
    with pytest.raises(JsonRefused, match="not valid JSON"):
        parse(b'{"a": "\xff"}')
    # Constants and lone surrogates parse; `check` judges them, so a batch can refuse one
    # item and keep the others.
    assert math.isnan(parse(b"NaN"))
    assert parse(b'"\\ud800"') == "\ud800"


def test_a_batch_key_is_left_to_the_route_item_by_item() -> None:
    body = {"events": [{"x": math.nan}, {"y": 1}], "other": 1}
    check(body, POLICY, skip="events")
    with pytest.raises(JsonRefused) as caught:
        check(body, POLICY)
    assert caught.value.where == "events[0].x"
    # Only the batch list is skipped: the rest of the body is still judged.
    with pytest.raises(JsonRefused):
        check({**body, "other": math.nan}, POLICY, skip="events")
    with pytest.raises(JsonRefused):
        check({"events": math.nan}, POLICY, skip="events")


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"id": "e", "source": "s", "type": "t", "data": {"w": NaN}}', "data.w"),
        (b'{"id": "e", "source": "s", "type": "t", "data": {"m": "\\udc00"}}', "data.m"),
        (b'{"id": "e", "source": "s", "type": "t", "data": {"n": 18446744073709551616}}', "data.n"),
    ],
)
def test_an_event_from_the_bus_is_judged_by_the_same_policy(raw: bytes, where: str) -> None:
    # Events that reach ingest without the HTTP boundary (SDK, Celery, NATS) go to dead
    # letters with the reason instead of failing in the store or in later reads.
    with pytest.raises(InvalidEventError, match=where.replace(".", r"\.")):
        decode_envelope(raw)
    with pytest.raises(InvalidEventError, match="deeper than 32"):
        decode_envelope({"id": "e", "source": "s", "type": "t", "data": nested(40)})


_any_text = st.text(max_size=4) | st.sampled_from(["\x00", "a\ud800", "\udfff"])
_any_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([INT_MAX + 1, INT_MIN - 1, INT_MIN, INT_MAX])
    | st.floats()
    | _any_text
)
_any_values = st.recursive(
    _any_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_any_text, inner, max_size=3),
    max_leaves=10,
)


@given(_any_values, st.integers(min_value=0, max_value=5))
def test_the_quick_pass_agrees_with_the_walk(value: Any, depth: int) -> None:
    """`check` answers from a quick pass when it finds nothing; the walk names problems."""
    walked = all(d <= depth and _problem(item) is None for _, d, item in _walk(value, "", None))
    assert _acceptable(value, depth) == walked


# Values of every kind the policy refuses too: NUL, lone surrogates, integers past 64 bits,
# long digit runs that are not integers, backslashes that look like an escaped NUL.
_wild_text = st.text(alphabet=st.sampled_from("a\\u0\x00\ud800é"), max_size=8)
_wild_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _wild_text
)
_wild_values = st.recursive(
    _wild_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_wild_text, inner, max_size=3),
    max_leaves=12,
)


@given(_wild_values, st.integers(0, 5))
def test_text_that_passes_holds_a_value_check_accepts(value: Any, depth: int) -> None:
    policy = JsonPolicy(max_depth=depth)
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    # False may be cautious (the value is then checked); True must be right.
    if text_passes(text, policy):
        check(value, policy)


@pytest.mark.parametrize(
    "value",
    [{"s": "a\x00b"}, {"s": "\ud800"}, {"n": INT_MAX + 1}, {"n": INT_MIN - 1}, nested(4)],
    ids=["nul", "lone-surrogate", "wide-integer", "wide-negative", "deep"],
)
def test_text_of_a_refused_value_never_passes(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    assert not text_passes(text, JsonPolicy(max_depth=3))


@given(_wild_values | st.floats())
def test_a_parsed_value_is_written_as_text_only_when_check_accepts_it(value: Any) -> None:
    written = parsed_json(value)
    if isinstance(written, JsonText):
        check(value, STORE_POLICY)
        assert json.loads(written.text) == value
    else:
        assert written is value


def test_deep_text_is_measured_by_its_nesting_not_its_brackets() -> None:
    # 80 sibling arrays three levels deep, and brackets inside strings.
    wide = {"rows": [[i, "[[[{{{"] for i in range(80)]}
    text = json.dumps(wide)
    check(wide, JsonPolicy(max_depth=3))
    assert text_passes(text, JsonPolicy(max_depth=3))
    assert not text_passes(text, JsonPolicy(max_depth=2))
