"""A partner's platform, installed through a real `kizuki.integrations` entry point."""

import importlib.metadata
from pathlib import Path

import httpx
import pytest

from domain.platforms import StorePlatform
from domain.settings import Settings
from integrations import ENTRY_POINT_GROUP, PluginError, build_platforms, discover_platforms
from kizuki.jobs import create_arq_pool
from kizuki.runtime import open_runtime
from tests.plugins.memory_mall import MemoryPlatform, create_platform
from workers.main import worker_settings


def install(root: Path, name: str, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `pip install` leaves behind for a package declaring one entry point."""
    dist_info = root / f"kizuki_test_{name}-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: kizuki-test-{name}\nVersion: 0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {target}\n")
    # Prepending to sys.path also invalidates importlib's caches, metadata finders included.
    monkeypatch.syspath_prepend(str(root))


async def test_an_installed_plugin_is_discovered_and_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(tmp_path, "memory", "tests.plugins.memory_mall:create_platform", monkeypatch)

    found = {e.name: e.value for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    factories = discover_platforms()
    async with httpx.AsyncClient() as http:
        platforms = build_platforms(http)

    assert found["memory"] == "tests.plugins.memory_mall:create_platform"
    assert factories["memory"] is create_platform
    assert isinstance(platforms["memory"], MemoryPlatform)
    assert platforms["memory"].name == "memory"


def test_a_broken_plugin_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path, "broken", "tests.plugins.no_such_module:create_platform", monkeypatch)

    with pytest.raises(PluginError, match="'broken'"):
        discover_platforms()


def test_the_memory_platform_satisfies_the_protocol() -> None:
    platform: StorePlatform = MemoryPlatform()

    assert platform.name == "memory"


async def test_the_runtime_builds_every_installed_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    install(tmp_path, "memory", "tests.plugins.memory_mall:create_platform", monkeypatch)

    async with open_runtime(settings) as runtime:
        platforms = dict(runtime.platforms)

    assert isinstance(platforms["memory"], MemoryPlatform)
    assert all(platform.name == name for name, platform in platforms.items())


async def test_a_worker_builds_every_installed_platform_at_startup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings, redis_available: str
) -> None:
    install(tmp_path, "memory", "tests.plugins.memory_mall:create_platform", monkeypatch)
    arq = worker_settings(settings.model_copy(update={"redis_url": redis_available}))
    pool = await create_arq_pool(redis_available)
    ctx: dict[str, object] = {"redis": pool}
    try:
        await arq["on_startup"](ctx)
        platforms = ctx["platforms"]
        await arq["on_shutdown"](ctx)
    finally:
        await pool.aclose()

    assert isinstance(platforms, dict)
    assert isinstance(platforms["memory"], MemoryPlatform)
    assert "http" not in ctx
