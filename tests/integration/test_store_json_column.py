"""Stored JSON columns (trackd.store.types.PolicyJSON) refuse what the JSON policy refuses,
whatever path writes, and what they accept reads back unchanged on both backends."""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trackd.domain.jsonpolicy import INT_MAX, INT_MIN, STORE_MAX_DEPTH, JsonRefused
from trackd.store.models import TrackerGuild
from trackd.store.types import JsonText, json_text, parsed_json


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_values_at_the_edges_read_back_unchanged(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stored = {
        "max": INT_MAX,
        "min": INT_MIN,
        "big": 1e308,
        "small": -5e-324,
        "text": "é ✓ 𝄞 \u2028",
        "deep": nested(STORE_MAX_DEPTH - 1),
    }
    async with sessions() as s, s.begin():
        s.add(TrackerGuild(tenant_id="acme", guild_id="g1", mmr_config=stored))
    async with sessions() as s:
        row = (await s.execute(select(TrackerGuild))).scalar_one()
    assert row.mmr_config == stored


@pytest.mark.parametrize(
    "value",
    [
        {"w": math.nan},
        {"w": math.inf},
        {"s": "\ud800"},
        {"s": "a\x00b"},
        {"n": INT_MAX + 1},
        nested(STORE_MAX_DEPTH + 1),
    ],
    ids=["nan", "infinity", "lone-surrogate", "nul", "wide-integer", "deep"],
)
async def test_a_value_that_could_not_be_read_back_fails_its_own_write(
    sessions: async_sessionmaker[AsyncSession], value: Any
) -> None:
    with pytest.raises(StatementError, match="stored JSON"):
        async with sessions() as s, s.begin():
            s.add(TrackerGuild(tenant_id="acme", guild_id="g1", mmr_config=value))
    async with sessions() as s:
        assert (await s.execute(select(func.count()).select_from(TrackerGuild))).scalar() == 0


async def test_json_text_is_checked_once_and_written_as_it_is(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stored = {"text": "é ✓ 𝄞", "max": INT_MAX, "deep": nested(STORE_MAX_DEPTH - 1)}
    text = json_text(stored)
    async with sessions() as s, s.begin():
        s.add(TrackerGuild(tenant_id="acme", guild_id="g1", mmr_config=text))
    async with sessions() as s:
        row = (await s.execute(select(TrackerGuild))).scalar_one()
    assert row.mmr_config == stored


@pytest.mark.parametrize(
    "value",
    [{"s": "\ud800"}, {"s": "a\x00b"}, {"n": INT_MAX + 1}, nested(STORE_MAX_DEPTH + 1)],
    ids=["lone-surrogate", "nul", "wide-integer", "deep"],
)
def test_json_text_refuses_what_the_column_refuses(value: Any) -> None:
    with pytest.raises(JsonRefused, match="stored JSON"):
        json_text(value)


@pytest.mark.parametrize(
    "value",
    [{"w": math.nan}, {"w": math.inf}, {"s": "\ud800"}, {"s": "a\x00b"}, {"n": INT_MAX + 1}],
    ids=["nan", "infinity", "lone-surrogate", "nul", "wide-integer"],
)
async def test_a_parsed_value_the_policy_refuses_is_left_to_its_column(
    sessions: async_sessionmaker[AsyncSession], value: Any
) -> None:
    # The fast encoder writes NaN as null: such a value must still fail its own write.
    assert parsed_json(value) is value
    with pytest.raises(StatementError, match="stored JSON"):
        async with sessions() as s, s.begin():
            s.add(TrackerGuild(tenant_id="acme", guild_id="g1", mmr_config=parsed_json(value)))


async def test_a_parsed_value_reads_back_unchanged(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    stored = {"text": "é ✓ 𝄞 \u2028", "n": -(2**53), "big": 1e308, "l": [1.5, True, "x"]}
    deep = nested(STORE_MAX_DEPTH - 1)
    assert isinstance(parsed_json(stored), JsonText)
    async with sessions() as s, s.begin():
        s.add(TrackerGuild(tenant_id="acme", guild_id="g1", mmr_config=parsed_json(stored)))
        s.add(TrackerGuild(tenant_id="acme", guild_id="g2", mmr_config=parsed_json(deep)))
    async with sessions() as s:
        rows = (await s.execute(select(TrackerGuild).order_by(TrackerGuild.guild_id))).scalars()
        assert [r.mmr_config for r in rows] == [stored, deep]
