import pytest
from sqlalchemy import text

from domain.db import AsyncSession
from domain.ids import new_id
from domain.ingest.statements import insert_rows, table_of
from domain.order.models import Product
from domain.shop.models import Shop
from tests.factories.customer import make_connection


@pytest.mark.postgres
async def test_a_copy_keeps_the_plan_mode_of_its_transaction(
    session: AsyncSession, shop: Shop, is_postgres: bool
) -> None:
    if not is_postgres:
        pytest.skip("COPY and plan_cache_mode are PostgreSQL's")
    connection = await make_connection(session, shop=shop)
    db = await session.connection()
    await db.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    row = {
        "shop_id": shop.id,
        "id": new_id(),
        "connection_id": connection.id,
        "external_id": "p1",
        "sku": "SKU-1",
        "title": "化粧水",
        "price": 3280,
        "currency": "JPY",
    }

    await insert_rows(session, table_of(Product), [row])

    mode = await db.execute(text("SELECT current_setting('plan_cache_mode')"))
    assert mode.scalar_one() == "force_custom_plan"
    count = await db.execute(
        text("SELECT count(*) FROM product WHERE shop_id = :shop"), {"shop": shop.id}
    )
    assert count.scalar_one() == 1
