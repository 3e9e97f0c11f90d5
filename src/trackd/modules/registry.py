"""Modules by name: those registered in code and those installed as plugins.

A package adds a module by naming its class (built without arguments) or an instance in the
entry point group `trackd.modules`, as sources are found in `trackd.sources`:

    [project.entry-points."trackd.modules"]
    tides = "my_package.tides:TidesModule"

Entry points are read the first time the registry is asked anything.
"""

from __future__ import annotations

import logging
import threading
from importlib.metadata import entry_points
from typing import Any

from trackd.errors import NotFound
from trackd.modules.base import LAYERS, Module

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "trackd.modules"

AnyModule = Module[Any]


class UnknownModule(NotFound):
    """No module has that name; the message lists the known ones."""


class ModuleRegistry:
    """Names to modules."""

    def __init__(self, *, plugins: bool = True) -> None:
        self._modules: dict[str, AnyModule] = {}
        # Without plugins (tests), only what is registered is known.
        self._plugins_loaded = not plugins
        self._lock = threading.Lock()

    def register(self, module: AnyModule, *, replace: bool = False) -> AnyModule:
        """Add `module` under its name; a second module with a taken name is an error unless
        `replace` is set."""
        if not isinstance(module, Module):
            raise TypeError(f"{module!r} is not a trackd.modules.base.Module")
        name = module.name
        if not name or not name.replace("_", "").isalnum() or not name.islower():
            raise ValueError(f"module name {name!r} must be lower-case letters, digits or '_'")
        if module.layer not in LAYERS:
            raise ValueError(f"module {name!r} has layer {module.layer!r}; one of {LAYERS}")
        with self._lock:
            known = self._modules.get(name)
            if known is not None and known is not module and not replace:
                raise ValueError(f"a module named {name!r} is already registered")
            self._modules[name] = module
        return module

    def unregister(self, name: str) -> None:
        """Forget the module called `name` (a test's, a plugin being replaced)."""
        with self._lock:
            self._modules.pop(name, None)

    def get(self, name: str) -> AnyModule:
        """The module called `name`.

        Raises:
            UnknownModule: no such module; the message names the known ones.
        """
        self._load_plugins()
        module = self._modules.get(name)
        if module is None:
            known = ", ".join(self.names()) or "none"
            raise UnknownModule(f"unknown module {name!r}; known modules: {known}")
        return module

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._modules)

    def all(self) -> list[AnyModule]:
        """Every module, by name."""
        return [self._modules[name] for name in self.names()]

    def _load_plugins(self) -> None:
        with self._lock:
            if self._plugins_loaded:
                return
            self._plugins_loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                loaded = point.load()
                module = loaded() if isinstance(loaded, type) else loaded
                if module.name != point.name:
                    raise ValueError(
                        f"entry point {point.name!r} names a module called {module.name!r}"
                    )
                if point.name not in self._modules:
                    self.register(module)
            except Exception:
                # A broken plugin must not take the other modules down with it.
                log.exception("cannot load module plugin entry_point=%s", point.value)


registry = ModuleRegistry()
