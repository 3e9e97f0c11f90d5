"""Sources by name: the built-in ones, those registered in code, and installed plugins.

    registry.register(MySource())          # in code, e.g. at import of a trackd extension
    source = registry.get("http_json")     # the poller looks a schedule's source up by name

Plugins can also ship a source as an entry point in the group `trackd.sources` (the object it
names is a Source instance, a class with a `from_settings(settings)` constructor, or a class
that builds one without arguments); they are loaded the first time a name is not found among
the registered ones. The composition root (`trackd.runtime`) gives the registry the settings
those sources are built from: `registry.configure(settings)`.
"""

from __future__ import annotations

import importlib
import logging
import threading
from importlib.metadata import entry_points

from trackd.errors import ConfigError
from trackd.settings import Settings
from trackd.sources.base import Source

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "trackd.sources"


class UnknownSource(ConfigError):
    """No source has that name; the message lists the known ones."""


class SourceRegistry:
    """Names to sources. Built-ins are registered lazily, so importing the registry is cheap."""

    def __init__(self, builtins: dict[str, str] | None = None, *, plugins: bool = True) -> None:
        self._sources: dict[str, Source] = {}
        self._builtins = dict(builtins or {})
        # Without plugins (tests), only what is registered or built in is known.
        self._plugins = plugins
        self._plugins_loaded = not plugins
        self._settings: Settings | None = None
        self._built: set[str] = set()  # names of sources this registry built (not registered)
        # Plugins that need settings the registry was not given yet: name -> what to do.
        self._unconfigured: dict[str, str] = {}
        # Registration happens at import time, possibly from several threads (CLI + API).
        self._lock = threading.Lock()

    def register(self, source: Source, *, replace: bool = False) -> Source:
        """Add `source` under `source.name`; returns it so it can be used as a decorator on
        an instance expression. Registering a second source under a taken name is an error
        unless `replace` is set (tests swapping a source for a fake)."""
        if not isinstance(source, Source):
            raise TypeError(f"{source!r} does not implement the Source protocol")
        name = source.name
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"source name {name!r} must be letters, digits, '_' or '-'")
        with self._lock:
            if name in self._sources and not replace and self._sources[name] is not source:
                raise ValueError(f"a source named {name!r} is already registered")
            self._sources[name] = source
            # A source registered in place of a built one is no longer the registry's to
            # rebuild: `configure` keeps it.
            self._built.discard(name)
        return source

    def add_builtin(self, name: str, path: str) -> None:
        """Make `name` resolve to the object at `path` ("package.module:attr", a Source or a
        class building one without arguments), imported the first time it is asked for."""
        if ":" not in path:
            raise ValueError(f"builtin path {path!r} must look like 'package.module:attr'")
        with self._lock:
            self._builtins[name] = path

    def configure(self, settings: Settings) -> None:
        """Build sources from `settings` from now on; those built from earlier settings are
        built again when next asked for."""
        with self._lock:
            self._settings = settings
            for name in self._built:
                self._sources.pop(name, None)
            self._built.clear()
            self._unconfigured.clear()
            self._plugins_loaded = not self._plugins

    def unregister(self, name: str) -> None:
        with self._lock:
            self._sources.pop(name, None)

    def get(self, name: str) -> Source:
        """The source called `name`.

        Raises:
            UnknownSource: no such source; the message names the known ones.
        """
        source = self._sources.get(name)
        if source is not None:
            return source
        if name in self._builtins:
            built = _build(_import(self._builtins[name]), self._settings)
            if built.name != name:
                raise ConfigError(f"builtin source {name!r} builds a source named {built.name!r}")
            self.register(built)
            self._built.add(name)
            return built
        self._load_plugins()
        source = self._sources.get(name)
        if source is None and name in self._unconfigured:
            raise ConfigError(self._unconfigured[name])
        if source is None:
            known = ", ".join(self.names()) or "none"
            raise UnknownSource(f"unknown source {name!r}; known sources: {known}")
        return source

    def names(self) -> list[str]:
        """Every name `get` would accept, sorted."""
        self._load_plugins()
        # Plugins waiting for settings are known too: `get` names them and says what to do.
        return sorted(set(self._sources) | set(self._builtins) | set(self._unconfigured))

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name in self._sources:
                continue
            try:
                self._built.add(self.register(_build(point.load(), self._settings)).name)
            except _NeedsSettings as exc:
                self._unconfigured[point.name] = str(exc)
            except Exception:
                # A broken plugin must not take the other sources down with it.
                log.exception("cannot load source plugin entry_point=%s", point.value)


class _NeedsSettings(ConfigError):
    """A source is built from settings and the registry has none yet."""


def _import(path: str) -> object:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _build(loaded: object, settings: Settings | None) -> Source:
    if isinstance(loaded, type) and hasattr(loaded, "from_settings"):
        if settings is None:
            raise _NeedsSettings(
                f"{loaded.__name__} is built from trackd's settings: call "
                "trackd.sources.registry.registry.configure(settings) first"
            )
        source = loaded.from_settings(settings)
    else:
        source = loaded() if isinstance(loaded, type) else loaded
    if not isinstance(source, Source):
        raise TypeError(f"{loaded!r} is not a Source nor a class building one")
    return source


# Sources shipped with trackd, imported on first use so that each pays for its own imports.
BUILTINS = {
    "http_json": "trackd.sources.http_json:HttpJsonSource",
}

registry = SourceRegistry(BUILTINS)
register = registry.register
get = registry.get
names = registry.names
