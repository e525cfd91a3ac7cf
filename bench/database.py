"""The benchmark's database: created, migrated and seeded once with the demo shop, then reused.

The shop's name records its size and seed; it is seeded in one transaction, so a shop with
that name is always complete. Each run gets its own API key, revoked when the run ends.
"""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import func, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import select

from domain.db import AsyncSession, utcnow
from domain.demo import load_demo_shop
from domain.ids import ShopId
from domain.shop.models import Role, Shop
from domain.shop.service import create_api_key, revoke_api_key
from domain.tables import metadata

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1/kizuki_bench"
# The demo's history ends here, so the same seed and size give the same rows on every run.
AS_OF = datetime(2025, 11, 1, tzinfo=UTC)
ACTOR = "bench:graphql_read"
# The tables the benchmarked read touches.
READ_TABLES = ("api_key", "customer", "customer_identity", '"order"', "order_line", "connection")


class BenchSetupError(Exception):
    """The benchmark database cannot be prepared; the message says why."""


@dataclass(frozen=True, slots=True)
class Dataset:
    shop_id: ShopId
    customers: int
    identities: int
    orders: int
    lines: int


def shop_name(customers: int, seed: int) -> str:
    return f"Kizuki bench: {customers} customers, seed {seed}"


def check_postgres(database_url: str) -> None:
    if make_url(database_url).get_backend_name() != "postgresql":
        raise BenchSetupError(f"the benchmark runs on PostgreSQL, not {database_url!r}")


async def ensure_database(database_url: str) -> None:
    """Create the database when the server does not have it yet."""
    url = make_url(database_url)
    name = url.database or ""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise BenchSetupError(f"database name {name!r}: use letters, digits and underscores")
    engine = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if found is None:
                await connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OSError as error:
        raise BenchSetupError(f"PostgreSQL at {url.host}:{url.port or 5432}: {error}") from error
    finally:
        await engine.dispose()


def migrate(database_url: str) -> None:
    """`alembic upgrade head`; call outside a running event loop (alembic runs its own)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


async def prepare_shop(
    sessions: async_sessionmaker[AsyncSession], *, customers: int, seed: int
) -> tuple[ShopId, bool]:
    """The seeded bench shop of this size and seed, and whether it was seeded just now."""
    name = shop_name(customers, seed)
    async with sessions() as session:
        existing = (await session.exec(select(Shop.id).where(Shop.name == name))).first()
    if existing is not None:
        return ShopId(existing), False
    # One transaction: an interrupted seed leaves no shop of this name behind.
    shop = await load_demo_shop(sessions, name=name, customers=customers, seed=seed, as_of=AS_OF)
    return ShopId(shop.id), True


async def analyze(engine: AsyncEngine) -> None:
    """Fresh planner statistics: a just-seeded table looks empty to the planner until then."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"ANALYZE {', '.join(READ_TABLES)}"))


async def vacuum(engine: AsyncEngine, tables: Sequence[str]) -> None:
    """VACUUM (ANALYZE) these tables: what autovacuum does between two nightly runs, done
    here because a benchmark's runs follow each other at once (and some servers have
    autovacuum off), so each run finds the dead rows of the last one's updates gone."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"VACUUM (ANALYZE) {', '.join(tables)}"))


async def dataset(engine: AsyncEngine, shop_id: ShopId) -> Dataset:
    """How many rows of each kind the shop has."""
    counts: list[int] = []
    async with engine.connect() as connection:
        for name in ("customer", "customer_identity", "order", "order_line"):
            table = metadata.tables[name]
            statement = sa_select(func.count()).select_from(table).where(table.c.shop_id == shop_id)
            counts.append(int(await connection.scalar(statement) or 0))
    return Dataset(shop_id, *counts)


async def postgres_version(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str(await connection.scalar(text("SHOW server_version")))


async def issue_key(
    sessions: async_sessionmaker[AsyncSession], shop_id: ShopId
) -> tuple[uuid.UUID, str]:
    """A read-only (analyst) key for this run, as a frontend would hold: (id, raw key)."""
    async with sessions() as session:
        key, raw_key = await create_api_key(
            session, shop_id, Role.ANALYST, name=f"graphql_read bench {utcnow():%Y-%m-%d %H:%M}"
        )
        await session.commit()
        return key.id, raw_key


async def revoke_key(
    sessions: async_sessionmaker[AsyncSession], shop_id: ShopId, key_id: uuid.UUID
) -> None:
    async with sessions() as session:
        await revoke_api_key(session, shop_id, key_id, actor=ACTOR, now=utcnow())
        await session.commit()
