"""Records and connections of the memory mall, for tests."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.connection.models import Connection
from domain.credentials import CredentialCipher
from domain.db import AsyncSession
from domain.platforms import CustomerRecord, OrderRecord
from domain.shop.models import Shop
from domain.tables import metadata
from tests.plugins.memory_mall.platform import NAME, Record

BASE = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
SECRET_KEY = "test-secret"
TOKEN = "token-1"
ACCOUNT = "memory-account-1"
WEBHOOK_SECRET = "whsec-1"


def history(customers: int = 4, orders_each: int = 2) -> list[Record]:
    """Customers, each followed by their orders, in the order a mall would list them."""
    records: list[Record] = []
    for c in range(customers):
        records.append(
            CustomerRecord(
                platform=NAME,
                external_id=f"c{c}",
                display_name=f"Customer {c}",
                email=f"c{c}@example.jp",
                source_updated_at=BASE,
            )
        )
        for o in range(orders_each):
            records.append(
                OrderRecord(
                    platform=NAME,
                    external_id=f"o{c}-{o}",
                    customer_external_id=f"c{c}",
                    ordered_at=BASE + timedelta(days=30 * o + c),
                    total_amount=1000 * (o + 1) + c,
                    source_updated_at=BASE + timedelta(days=30 * o + c),
                )
            )
    return records


async def add_connection(
    session: AsyncSession,
    shop: Shop,
    *,
    account: str = ACCOUNT,
    token: str = TOKEN,
    secret_key: str = SECRET_KEY,
) -> Connection:
    """An ACTIVE memory-mall connection with encrypted credentials (flushed, not committed)."""
    credentials = {"token": token, "secret": WEBHOOK_SECRET}
    connection = Connection(
        shop_id=shop.id,
        platform=NAME,
        name=f"memory {account}",
        external_account_id=account,
        credentials_encrypted=CredentialCipher(secret_key).encrypt(credentials),
    )
    session.add(connection)
    await session.flush()
    return connection


async def forget_shop(engine: AsyncEngine, shop_id: uuid.UUID) -> None:
    """Delete a shop that a test committed for real (outside the test's transaction)."""
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            if "shop_id" in table.c:
                await connection.execute(delete(table).where(table.c.shop_id == shop_id))
        shops = metadata.tables["shop"]
        await connection.execute(delete(shops).where(shops.c.id == shop_id))
