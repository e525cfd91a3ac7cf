"""Killing a full recompute mid-way and running it again leaves exactly a clean run's rows."""

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from domain.customer.models import Customer
from domain.db import AsyncSession, create_engine, session_factory
from domain.order.models import Order
from domain.risk.models import RiskScore, RiskScoreHistory, ShopRiskModel
from domain.shop.models import Shop
from tests.domain.risk.shops import AS_OF, comparable, current_scores, history_rows
from tests.domain.risk.simulate import poisson_shop
from tests.factories.customer import make_connection
from tests.factories.shop import make_shop

ROOT = Path(__file__).resolve().parents[3]
CUSTOMERS = 2000


def _migrate(url: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


async def _create_database(server_url: str, name: str, *, drop: bool = False) -> None:
    engine = create_async_engine(
        make_url(server_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    async with engine.connect() as connection:
        statement = f'DROP DATABASE IF EXISTS "{name}"' if drop else f'CREATE DATABASE "{name}"'
        await connection.execute(text(statement))
    await engine.dispose()


@pytest.fixture
def scratch_url(database_url: str, migrated: str, tmp_path: Path) -> Iterator[str]:
    """A database of this test alone: a child process must see committed rows."""
    if not database_url.startswith("postgresql"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'interrupt.db'}"
        _migrate(url)
        yield url
        return
    name = f"kizuki_interrupt_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_database(database_url, name))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        asyncio.run(_create_database(database_url, name, drop=True))


@pytest.fixture
async def scratch(scratch_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(scratch_url, pool_size=2)
    yield session_factory(engine)
    await engine.dispose()


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> Shop:
    simulated = poisson_shop(CUSTOMERS, seed=51)
    async with sessions() as session:
        shop = await make_shop(session)
        connection = await make_connection(session, shop=shop)
        customers = [
            Customer(shop_id=shop.id, created_at=AS_OF.replace(year=2023)) for _ in range(CUSTOMERS)
        ]
        session.add_all(customers)
        await session.flush()
        start = AS_OF.timestamp() - simulated.as_of * 86_400
        orders = simulated.orders
        keep = orders.day < simulated.as_of
        rows: list[dict[str, Any]] = [
            {
                "shop_id": shop.id,
                "id": uuid.uuid4(),
                "connection_id": connection.id,
                "customer_id": customers[int(c)].id,
                "external_id": f"o{n}",
                "ordered_at": AS_OF.fromtimestamp(start + float(d) * 86_400, AS_OF.tzinfo),
                "status": "fulfilled",
                "currency": "JPY",
                "total_amount": int(a),
                "refunded_amount": 0,
                "item_quantity": int(q),
                "created_at": AS_OF,
            }
            for n, (c, d, a, q) in enumerate(
                zip(
                    orders.customer[keep],
                    orders.day[keep],
                    orders.amount[keep],
                    orders.quantity[keep],
                    strict=True,
                )
            )
        ]
        await session.exec(Order.__table__.insert(), params=rows)  # type: ignore[attr-defined]
        await session.commit()
    return shop


async def _child(url: str, shop: Shop, *, kill_after: int | None = None) -> list[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.domain.risk.interrupt_child",
        url,
        str(shop.id),
        AS_OF.isoformat(),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    while line := (await process.stdout.readline()).decode().strip():
        lines.append(line)
        if kill_after is not None and lines.count("slice written") == kill_after:
            process.kill()
            break
    code = await process.wait()
    assert code == (-9 if kill_after is not None else 0), lines
    return lines


async def _stored(sessions: async_sessionmaker[AsyncSession], shop: Shop) -> list[Any]:
    async with sessions() as session:
        scores = sorted(comparable(s) for s in (await current_scores(session, shop)).values())
        history = sorted(comparable(row) for row in await history_rows(session, shop))
        fit = await session.get(ShopRiskModel, shop.id)
        return [scores, history, None if fit is None else (fit.fitted_as_of, fit.model_version)]


async def test_a_killed_recompute_leaves_nothing_and_its_rerun_equals_a_clean_run(
    scratch_url: str, scratch: async_sessionmaker[AsyncSession]
) -> None:
    shop = await _seed(scratch)

    lines = await _child(scratch_url, shop, kill_after=3)

    assert lines == ["slice written"] * 3
    assert await _stored(scratch, shop) == [[], [], None]
    rerun = await _child(scratch_url, shop)
    assert rerun[-1] == f"done {CUSTOMERS}"
    after_rerun = await _stored(scratch, shop)
    async with scratch() as session:
        for table in (RiskScore, RiskScoreHistory, ShopRiskModel):
            await session.exec(delete(table).where(table.shop_id == shop.id))  # type: ignore[arg-type]
        await session.commit()
    await _child(scratch_url, shop)
    clean = await _stored(scratch, shop)
    assert len(clean[0]) == len(clean[1]) == CUSTOMERS
    assert after_rerun == clean
