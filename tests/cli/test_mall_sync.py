from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import func, select
from typer.testing import CliRunner

from api.relay import encode_id
from domain.connection.errors import ConnectionInactive
from domain.connection.models import ConnectionStatus, SyncStatus
from domain.db import session_factory
from domain.ids import ShopId
from domain.order.models import Order
from domain.settings import Settings
from kizuki.cli import _sync_lines, app
from kizuki.mall_sync import list_shop_connections, sync_shop
from tests.factories.shop import make_shop
from tests.plugins.memory_mall import MemoryPlatform
from tests.plugins.memory_mall.testing import ACCOUNT, TOKEN, add_connection, forget_shop, history


async def test_sync_runs_the_job_in_process_for_active_connections(
    engine: AsyncEngine, settings: Settings
) -> None:
    # Real commits: the command opens its own engine, as it does from a terminal.
    sessions = session_factory(engine)
    async with sessions() as session:
        shop = await make_shop(session)
        live = await add_connection(session, shop, secret_key="test-secret")
        idle = await add_connection(session, shop, account="idle", secret_key="test-secret")
        idle.status = ConnectionStatus.NEEDS_CREDENTIALS
        await session.commit()
    mall = MemoryPlatform(records=list(history(3, 2)), tokens={TOKEN: ACCOUNT})
    platforms = {mall.name: mall}
    try:
        results = await sync_shop(settings, ShopId(shop.id), platforms=platforms)
        again = await sync_shop(
            settings, ShopId(shop.id), connection_id=live.id, platforms=platforms
        )
        with pytest.raises(ConnectionInactive):
            await sync_shop(settings, ShopId(shop.id), connection_id=idle.id, platforms=platforms)
        listed = await list_shop_connections(settings, ShopId(shop.id))
        async with sessions() as session:
            count = select(func.count()).select_from(Order).where(Order.shop_id == shop.id)
            orders = (await session.exec(count)).one()
    finally:
        await forget_shop(engine, shop.id)

    [result] = results
    assert result.connection.id == live.id
    [run] = result.runs
    assert run.counts["orders_inserted"] == 6
    assert run.counts["customers_inserted"] == 3
    assert orders == 6
    [second] = again[0].runs
    assert (second.kind, second.status, second.counts.get("orders_inserted", 0)) == (
        "incremental",
        SyncStatus.SUCCEEDED,
        0,
    )
    lines = _sync_lines(result)
    assert lines[0].startswith(f"{encode_id('StoreConnection', live.id)} memory {ACCOUNT}:")
    assert "orders 6 seen 6 new 0 updated" in lines[0]
    assert [(row.id, row.status) for row in listed] == [
        (live.id, ConnectionStatus.ACTIVE),
        (idle.id, ConnectionStatus.NEEDS_CREDENTIALS),
    ]
    assert listed[0].last_sync_at is not None


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    database = tmp_path / "cli.db"
    monkeypatch.setenv("KIZUKI_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    monkeypatch.chdir(tmp_path)
    return database


def test_connections_and_sync_commands_on_a_shop_without_connections(cli_env: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["migrate"])
    shop_id = runner.invoke(app, ["shop", "create", "No malls"]).stdout.strip()

    listed = runner.invoke(app, ["connections", "--shop", shop_id])
    synced = runner.invoke(app, ["sync", "--shop", shop_id, "--since", "2026-01-01"])
    unknown = runner.invoke(
        app, ["sync", "--shop", shop_id, "--connection", "01922f1e-0000-7000-8000-000000000000"]
    )
    bad = runner.invoke(app, ["sync", "--shop", shop_id, "--connection", "xyz"])

    assert (listed.exit_code, listed.stdout.strip()) == (0, "no connections")
    assert (synced.exit_code, synced.stdout.strip()) == (0, "no active mall connections")
    assert unknown.exit_code == 2
    assert "no such connection" in unknown.output
    assert bad.exit_code == 2
    assert "is not a connection ID" in bad.output
