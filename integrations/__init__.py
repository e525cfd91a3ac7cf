"""Store platforms (malls): one package each, found through the `kizuki.integrations` entry points.

The built-in malls register in pyproject.toml exactly as a partner's package would; each entry
point names a factory that takes the shared HTTP client and returns a `StorePlatform`.
"""

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

import httpx

from domain.platforms import StorePlatform

ENTRY_POINT_GROUP = "kizuki.integrations"

PlatformFactory = Callable[[httpx.AsyncClient], StorePlatform]


class PluginError(Exception):
    """An installed plugin does not provide a usable store platform."""


def discover_platforms() -> dict[str, PlatformFactory]:
    """The factories of every installed platform, by entry-point name; importing each one."""
    factories: dict[str, PlatformFactory] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory = entry.load()
        except Exception as exc:
            raise PluginError(
                f"platform plugin {entry.name!r} ({entry.value}) failed: {exc}"
            ) from exc
        if not callable(factory):
            raise PluginError(f"platform plugin {entry.name!r} ({entry.value}) is not callable")
        factories[entry.name] = factory
    return factories


def build_platforms(http: httpx.AsyncClient) -> Mapping[str, StorePlatform]:
    """Every installed platform, sharing one HTTP client; names must match entry-point names."""
    platforms: dict[str, StorePlatform] = {}
    for name, factory in discover_platforms().items():
        platform = factory(http)
        if platform.name != name:
            raise PluginError(f"platform plugin {name!r} calls itself {platform.name!r}")
        platforms[name] = platform
    return platforms
