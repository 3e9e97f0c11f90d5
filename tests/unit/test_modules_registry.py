"""The module registry and base: modules found by entry point, unknown names listed, modules
that break the rules refused, and the effective config merged from defaults, global and
tenant rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import Field

from trackd.modules.base import Contribution, Module, ModuleConfig, SynthesisContext
from trackd.modules.config import merge
from trackd.modules.lunar import LunarModule
from trackd.modules.registry import ModuleRegistry, UnknownModule, registry
from trackd.modules.solar import SolarModule
from trackd.store.repos.module_config import ConfigRow

AT = datetime(2026, 12, 1, tzinfo=UTC)


class TidesConfig(ModuleConfig):
    range_m: float = Field(default=2.0, gt=0)


class TidesModule(Module[TidesConfig]):
    name = "tides"
    layer = "tracking"
    version = "0.1.0"
    description = "A plugin's module."
    config_model = TidesConfig

    async def contribute_to_synthesis(
        self, tenant: str, user: str | None, context: SynthesisContext[TidesConfig]
    ) -> Contribution:
        return self.contribution(
            {"range_m": context.config.range_m}, [], confidence=1.0, as_of=None
        )


def test_the_shipped_modules_are_found_by_entry_point() -> None:
    assert {"solar", "lunar"} <= set(registry.names())
    assert isinstance(registry.get("solar"), SolarModule)
    assert isinstance(registry.get("lunar"), LunarModule)


def test_unknown_module_lists_the_known_ones() -> None:
    own = ModuleRegistry(plugins=False)
    own.register(TidesModule())
    with pytest.raises(UnknownModule, match=r"unknown module 'moon'; known modules: tides"):
        own.get("moon")
    with pytest.raises(UnknownModule, match="known modules: none"):
        ModuleRegistry(plugins=False).get("tides")


def test_register_refuses_a_taken_name_a_bad_name_and_a_bad_layer() -> None:
    own = ModuleRegistry(plugins=False)
    tides = own.register(TidesModule())
    assert own.register(tides) is tides  # the same module again is no conflict
    with pytest.raises(ValueError, match="already registered"):
        own.register(TidesModule())
    own.register(TidesModule(), replace=True)

    class Shouting(TidesModule):
        name = "Tides!"

    class Sideways(TidesModule):
        name = "sideways"
        layer = "sideways"  # type: ignore[assignment]

    with pytest.raises(ValueError, match="lower-case"):
        own.register(Shouting())
    with pytest.raises(ValueError, match="layer"):
        own.register(Sideways())
    with pytest.raises(TypeError):
        own.register(object())  # type: ignore[arg-type]


def row(
    tenant: str | None, config: dict[str, Any], version: int = 1, active: bool = True
) -> ConfigRow:
    return ConfigRow("tides", tenant, config, version, active, AT)


def test_effective_config_defaults_then_global_then_tenant() -> None:
    tides = TidesModule()
    assert merge(tides, [], "acme").config == {"range_m": 2.0}
    assert merge(tides, [], "acme").origin == "default"
    glob = row(None, {"range_m": 3.0}, version=4, active=False)
    inherited = merge(tides, [glob], "acme")
    assert (inherited.config, inherited.origin, inherited.is_active) == (
        {"range_m": 3.0},
        "global",
        False,
    )
    assert (inherited.version, inherited.global_version) == (0, 4)
    own = merge(tides, [glob, row("acme", {"range_m": 5.0}, version=2)], "acme")
    assert (own.config, own.origin, own.is_active, own.version) == (
        {"range_m": 5.0},
        "tenant",
        True,
        2,
    )


def test_a_stored_config_that_no_longer_validates_falls_back_and_is_kept() -> None:
    # A module that changed its model since the row was written: the row stays as stored, the
    # module runs on what still validates.
    tides = TidesModule()
    rows = [row(None, {"range_m": 3.0}), row("acme", {"range_m": -1.0})]
    effective = merge(tides, rows, "acme")
    assert effective.config == {"range_m": 3.0}
    assert effective.overrides == {"range_m": -1.0}
