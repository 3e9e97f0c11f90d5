"""The flat diff of snapshot data, its digest, and retention rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackd.domain.channels import mask_url, wants
from trackd.domain.history import (
    FieldChange,
    Retention,
    canonical_json,
    canonical_many,
    diff,
    digest,
    normalize,
)


def test_nested_objects_diff_to_dotted_paths() -> None:
    old = {"rank": {"tier": "Diamond", "division": 2, "mmr": 1200}, "wins": 10, "gone": True}
    new = {"rank": {"tier": "Champion", "division": 2, "mmr": 1251}, "wins": 10, "new": [1]}

    assert diff(old, new) == [
        FieldChange("gone", "removed", old=True),
        FieldChange("new", "added", new=[1]),
        FieldChange("rank.mmr", "changed", old=1200, new=1251),
        FieldChange("rank.tier", "changed", old="Diamond", new="Champion"),
    ]


def test_arrays_and_type_changes_are_one_leaf() -> None:
    assert diff({"a": [1, 2]}, {"a": [2, 1]}) == [FieldChange("a", "changed", [1, 2], [2, 1])]
    assert diff({"a": {"b": 1}}, {"a": 5}) == [FieldChange("a", "changed", {"b": 1}, 5)]
    assert diff({"a": 1}, {"a": 1.0}) == [FieldChange("a", "changed", 1, 1.0)]
    assert diff({"a": 1}, {"a": True}) == [FieldChange("a", "changed", 1, True)]
    assert diff({"a": None}, {}) == [FieldChange("a", "removed", None, None)]


def test_equal_data_has_no_diff_and_one_digest_whatever_the_key_order() -> None:
    a = {"x": {"b": 1, "a": [1, {"z": None}]}, "y": "é"}
    b = {"y": "é", "x": {"a": [1, {"z": None}], "b": 1}}
    assert diff(a, b) == []
    assert digest(a) == digest(b)
    assert digest(a) != digest({**a, "y": "e"})


def test_normalize_gives_what_the_store_gives_back() -> None:
    assert normalize({"t": (1, 2), "n": {3: "x"}}) == {"t": [1, 2], "n": {"3": "x"}}
    with pytest.raises(TypeError):
        normalize({"when": datetime.now(UTC)})
    with pytest.raises(ValueError, match="JSON"):
        normalize({"x": float("nan")})


def test_changes_round_trip_as_dicts() -> None:
    change = FieldChange("a.b", "changed", 1, 2)
    assert FieldChange.from_dict(change.as_dict()) == change


# Cheap on purpose: the diff is about structure, so small alphabets and bounded numbers find
# what larger ones would (1 == 1.0 == True, None against missing), and two levels of nesting
# under the top one exercise every path rule.
json_leaf = st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from([1.0, "", "x", "é"])
keys = st.sampled_from(["a", "b", "c", "ab"])
value = json_leaf | st.lists(json_leaf, max_size=2)
# Nested objects are never empty: an empty object has no leaves for a flat diff to name.
inner = st.dictionaries(keys, value, min_size=1, max_size=2)
middle = st.dictionaries(keys, value | inner, min_size=1, max_size=3)
json_objects = st.dictionaries(keys, value | middle, max_size=4)


def _apply(data: dict[str, Any], changes: list[FieldChange]) -> dict[str, Any]:
    result = normalize(data)
    for change in changes:
        *parents, leaf = change.path.split(".")
        node = result
        for part in parents:
            node = node[part]
        if change.kind == "removed":
            del node[leaf]
        else:
            node[leaf] = change.new
    return result


@given(json_objects, json_objects)
def test_applying_the_diff_to_old_gives_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    changes = diff(old, new)
    assert _apply(old, changes) == new
    assert (changes == []) == (digest(old) == digest(new))


def test_retention_rules() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    assert Retention(keep=5, max_age=timedelta(days=3)).cutoff(now) == datetime(
        2026, 1, 7, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="at least one"):
        Retention(keep=0)
    with pytest.raises(ValueError, match="positive"):
        Retention(max_age=timedelta(0))


def test_channel_field_filters_match_paths_and_their_parents() -> None:
    assert wants({}, ["anything"])
    assert wants({"fields": ["rank"]}, ["rank.tier"])
    assert wants({"fields": ["rank.tier"]}, ["rank.tier"])
    assert not wants({"fields": ["rank"]}, ["ranked.games", "wins"])


def test_masked_urls_keep_no_credential() -> None:
    hook = "https://discord.com/api/webhooks/123456789/SECRET-token_abcdefghijklmnop"
    assert mask_url(hook) == "https://discord.com/…"
    assert mask_url("https://user:pw@hooks.example/x?key=SECRET") == "https://hooks.example/…"
    assert mask_url("tgram://123:SECRET/456") == "tgram://…"


def test_urls_inside_a_text_are_masked() -> None:
    from trackd.domain.channels import mask_urls

    text = "webhook failed: POST https://hooks.example/T0K3N?key=abc refused; retry apprise://tok@x"
    masked = mask_urls(text)
    assert masked == "webhook failed: POST https://hooks.example/… refused; retry apprise://…"
    assert mask_urls("HTTP 500") == "HTTP 500"


@given(st.lists(json_objects, max_size=4), middle)
def test_canonical_many_writes_what_canonical_json_writes(
    objects: list[dict[str, Any]], shared: dict[str, Any]
) -> None:
    # Some objects share one value object, as a bulk record's readings do.
    batch = [*objects, *({**o, "shared": shared} for o in objects), {1: "non-text key"}]
    assert canonical_many(batch) == [canonical_json(o) for o in batch]
