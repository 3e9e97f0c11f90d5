"""The http_json source's targets and answers, and the source registry; no network."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

from trackd.errors import ConfigError
from trackd.outbound.http import outbound_client
from trackd.settings import Settings
from trackd.sources import registry as registry_module
from trackd.sources.base import InvalidTarget, Snapshot, SourceBlocked, SourceError
from trackd.sources.http_json import HttpJsonSource, resolve_pointer
from trackd.sources.registry import SourceRegistry, UnknownSource

DOC = {"data": {"rank": {"tier": "Champion", "n": 3}, "list": [10, 20]}, "a/b": 1, "m~n": 2}


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("", DOC),
        ("/data/rank/tier", "Champion"),
        ("/data/list/1", 20),
        ("/a~1b", 1),
        ("/m~0n", 2),
    ],
)
def test_json_pointers_resolve(pointer: str, value: Any) -> None:
    assert resolve_pointer(DOC, pointer) == value


@pytest.mark.parametrize("pointer", ["/nope", "/data/list/2", "/data/list/01", "/data/rank/n/x"])
def test_missing_pointers_are_told_apart_from_null(pointer: str) -> None:
    assert resolve_pointer(DOC, pointer) is not None
    assert resolve_pointer(DOC, pointer) not in (DOC, 1, 2, 3)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({}, "target.url is required"),
        ({"url": "ftp://x.example/"}, "must be an http"),
        ({"url": "https://x.example/", "extra": 1}, "unknown target keys"),
        ({"url": "https://x.example/", "fields": {"a": "no-slash"}}, "JSON pointer"),
        ({"url": "https://x.example/", "fields": {"a": "/b~2"}}, "~0"),
        ({"url": "https://x.example/", "fields": []}, "non-empty"),
        ({"url": "https://x.example/", "subject": ""}, "target.subject"),
        ({"url": "http://[::1"}, "not a valid URL"),
        ({"url": "http://[zz::]/"}, "not a valid URL: Invalid IPv6 address"),
        ({"url": "http://x.example:99999/"}, "port 99999 is not from 1 to 65535"),
        ({"url": "http://x.example:0/"}, "port 0 is not from 1 to 65535"),
    ],
)
def test_invalid_targets_say_what_to_fix(target: Mapping[str, Any], message: str) -> None:
    with pytest.raises(InvalidTarget, match=message):
        HttpJsonSource().validate(target)


def test_a_target_is_made_canonical() -> None:
    canonical = HttpJsonSource().validate(
        {"url": "https://x.example/s", "fields": ["/data/rank/tier"], "season": 25}
    )
    assert canonical == {
        "url": "https://x.example/s",
        "subject": "https://x.example/s",
        "fields": {"data.rank.tier": "/data/rank/tier"},
        "season": "25",
    }


async def fetch(
    handler: Callable[[httpx.Request], httpx.Response], target: Mapping[str, Any]
) -> list[Snapshot]:
    client = outbound_client(Settings(allow_private_fetch=True), inner=httpx.MockTransport(handler))
    async with client:
        return await HttpJsonSource().fetch(target, client)


async def test_fields_are_picked_and_missing_ones_named() -> None:
    [snapshot] = await fetch(
        lambda r: httpx.Response(200, json=DOC),
        {"url": "http://x.example/", "fields": {"tier": "/data/rank/tier", "gone": "/x"}},
    )
    assert snapshot.data == {"tier": "Champion", "gone": None}
    assert snapshot.meta == {"status": 200, "missing": ["gone"]}
    assert snapshot.season is None


async def test_a_document_that_is_not_an_object_is_wrapped() -> None:
    [snapshot] = await fetch(lambda r: httpx.Response(200, json=[1, 2]), {"url": "http://x.e/"})
    assert snapshot.data == {"value": [1, 2]}


async def test_rate_limits_and_challenge_pages_are_blocked_not_failed() -> None:
    with pytest.raises(SourceBlocked) as blocked:
        await fetch(
            lambda r: httpx.Response(429, headers={"Retry-After": "30"}), {"url": "http://x.e/"}
        )
    assert blocked.value.host == "x.e"
    assert blocked.value.retry_after == 30.0

    page = "<html><title>Just a moment...</title><script src=/cdn-cgi/challenge-platform/>"
    with pytest.raises(SourceBlocked):
        await fetch(
            lambda r: httpx.Response(200, text=page, headers={"content-type": "text/html"}),
            {"url": "http://x.e/"},
        )


async def test_server_errors_and_non_json_fail_for_a_retry() -> None:
    with pytest.raises(SourceError, match="HTTP 502") as failed:
        await fetch(lambda r: httpx.Response(502), {"url": "http://x.e/"})
    assert not isinstance(failed.value, SourceBlocked | InvalidTarget)
    with pytest.raises(SourceError, match="did not answer with JSON"):
        await fetch(lambda r: httpx.Response(200, text="<p>hi</p>"), {"url": "http://x.e/"})


def test_the_registry_knows_http_json_and_names_the_known_ones() -> None:
    assert isinstance(registry_module.get("http_json"), HttpJsonSource)
    assert "http_json" in registry_module.names()
    with pytest.raises(UnknownSource, match=r"unknown source 'nope'; known sources: .*http_json"):
        registry_module.get("nope")


def test_registering_twice_under_one_name_needs_replace() -> None:
    registry = SourceRegistry(plugins=False)
    first, second = HttpJsonSource(), HttpJsonSource()
    registry.register(first)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(second)
    registry.register(second, replace=True)
    assert registry.get("http_json") is second
    with pytest.raises(TypeError, match="Source protocol"):
        registry.register(object())  # type: ignore[arg-type]


def test_builtins_are_imported_on_first_use_under_their_own_name() -> None:
    registry = SourceRegistry(plugins=False)
    registry.add_builtin("http_json", "trackd.sources.http_json:HttpJsonSource")
    assert registry.names() == ["http_json"]
    source = registry.get("http_json")
    assert isinstance(source, HttpJsonSource)
    assert registry.get("http_json") is source

    registry.add_builtin("json_again", "trackd.sources.http_json:HttpJsonSource")
    with pytest.raises(ConfigError, match="builds a source named 'http_json'"):
        registry.get("json_again")
