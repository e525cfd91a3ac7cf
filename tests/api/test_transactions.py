"""On PostgreSQL with a real pool: queries run outside a transaction, mutations in one, and a
connection the server closed is never handed to a request.

These tests commit (the unit of work is what is tested), so they use a shop of their own and
delete it afterwards.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from api.app import create_app
from domain.db import create_engine, session_factory
from domain.settings import Settings
from domain.shop.models import Shop
from kizuki.events import InProcessEventBus
from tests.api.conftest import RecordingJobQueue, serving
from tests.factories.shop import make_api_key, make_shop

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


@dataclass
class Wire:
    """What the pool's connections sent to the server, and their server process ids."""

    statements: list[str]
    pids: list[int]

    def control(self) -> list[str]:
        return [s for s in self.statements if s.strip().upper().startswith(TRANSACTION_CONTROL)]


def _verb(statement: str) -> str:
    return statement.split()[0].upper().rstrip(";")


@pytest.fixture
async def pooled(is_postgres: bool, migrated: str) -> AsyncIterator[AsyncEngine]:
    if not is_postgres:
        pytest.skip("these tests drive a real PostgreSQL pool")
    engine = create_engine(migrated, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
def wire(pooled: AsyncEngine) -> Wire:
    found = Wire(statements=[], pids=[])

    def log(query: Any) -> None:
        found.statements.append(query.query)

    @event.listens_for(pooled.sync_engine, "connect")
    def watch(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        driver = record.driver_connection
        assert driver is not None
        driver.add_query_logger(log)
        found.pids.append(driver.get_server_pid())

    return found


@pytest.fixture
async def committed(pooled: AsyncEngine, wire: Wire) -> AsyncIterator[tuple[Shop, str]]:
    """A shop and its admin key, committed; deleted with what the tests wrote for it."""
    sessions = session_factory(pooled)
    async with sessions() as session:
        shop = await make_shop(session)
        _, raw_key = await make_api_key(session, shop=shop)
        await session.commit()
    yield shop, raw_key
    async with pooled.begin() as connection:
        for table in ("audit_log", "api_key"):
            await connection.execute(
                text(f"DELETE FROM {table} WHERE shop_id = :shop"), {"shop": shop.id}
            )
        await connection.execute(text("DELETE FROM shop WHERE id = :shop"), {"shop": shop.id})


@pytest.fixture
def pooled_app(
    pooled: AsyncEngine, production_settings: Settings, jobs: RecordingJobQueue
) -> Callable[[], Any]:
    def make() -> Any:
        return create_app(
            production_settings,
            sessions=session_factory(pooled),
            job_queue=jobs,
            events=InProcessEventBus(),
        )

    return make


@pytest.mark.postgres
async def test_queries_send_no_transaction_control_and_mutations_commit_in_one(
    pooled_app: Callable[[], Any], pooled: AsyncEngine, committed: tuple[Shop, str], wire: Wire
) -> None:
    shop, key = committed
    renamed = f"{shop.name} renamed"
    mutation = """mutation($name: String!) {
      updateShop(input: {name: $name}) { ... on UpdateShopPayload { shop { name } } }
    }"""
    async with serving(pooled_app()) as client:
        wire.statements.clear()
        read = await client.data(
            "{ shop { name } customers(first: 5) { edges { cursor } } }", key=key
        )
        read_control = wire.control()
        wire.statements.clear()
        written = await client.data(mutation, key=key, variables={"name": renamed})
        write_control = wire.control()

    assert read == {"shop": {"name": shop.name}, "customers": {"edges": []}}
    assert read_control == []
    assert written == {"updateShop": {"shop": {"name": renamed}}}
    assert [_verb(s) for s in write_control] == ["BEGIN", "COMMIT"]
    async with pooled.connect() as connection:
        stored = await connection.scalar(
            text("SELECT name FROM shop WHERE id = :id"), {"id": shop.id}
        )
    assert stored == renamed


@pytest.mark.postgres
async def test_a_refused_mutation_rolls_back(
    pooled_app: Callable[[], Any], pooled: AsyncEngine, committed: tuple[Shop, str], wire: Wire
) -> None:
    shop, key = committed
    mutation = """mutation {
      updateShop(input: {name: "kept?", horizonDays: 0}) { ... on UserError { code } }
    }"""
    async with serving(pooled_app()) as client:
        wire.statements.clear()
        data = await client.data(mutation, key=key)

    assert data == {"updateShop": {"code": "INVALID_INPUT"}}
    assert [_verb(s) for s in wire.control()] == ["BEGIN", "ROLLBACK"]
    async with pooled.connect() as connection:
        stored = await connection.scalar(
            text("SELECT name FROM shop WHERE id = :id"), {"id": shop.id}
        )
    assert stored == shop.name


@pytest.mark.postgres
async def test_connections_the_server_closed_are_replaced_before_use(
    pooled_app: Callable[[], Any],
    committed: tuple[Shop, str],
    wire: Wire,
    connection: AsyncConnection,
) -> None:
    shop, key = committed
    async with serving(pooled_app()) as client:
        await client.data("{ shop { name } }", key=key)
        closed = list(wire.pids)
        for pid in closed:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        # The loop runs between requests: the driver reads the server's goodbye meanwhile.
        await asyncio.sleep(0.2)
        data = await client.data("{ shop { name } }", key=key)

    assert data == {"shop": {"name": shop.name}}
    assert set(wire.pids) > set(closed)
