"""`load_demo_shop`: a new shop filled with the generated demo data through the ingest path."""

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession
from domain.demo.generator import generate_shop
from domain.ids import ConnectionId, ShopId
from domain.ingest import get_or_create_import_connection, ingest_batch
from domain.shop.models import Shop
from domain.shop.service import create_shop

DEFAULT_SEED = 20240601


async def load_demo_shop(
    sessions: async_sessionmaker[AsyncSession],
    *,
    name: str = "Kizuki Demo Skincare",
    customers: int = 2000,
    seed: int = DEFAULT_SEED,
    as_of: datetime | None = None,
) -> Shop:
    """Create a shop and load `customers` generated customers with two years of history.

    A unit of work of its own, for composition roots (the CLI `demo`): one session, one commit.
    History ends at `as_of` (default: now). Raises `ShopNameTaken` when the name is in use.
    """
    as_of = as_of or datetime.now(UTC).replace(microsecond=0)
    async with sessions() as session:
        shop = await create_shop(session, name)
        shop_id = ShopId(shop.id)
        connections: dict[str, ConnectionId] = {}
        for batch in generate_shop(seed, customers=customers, as_of=as_of):
            platform = batch.platform.value
            if platform not in connections:
                connection = await get_or_create_import_connection(session, shop_id, platform)
                connections[platform] = ConnectionId(connection.id)
            await ingest_batch(session, shop_id, connections[platform], batch.records)
        await session.commit()
    return shop
