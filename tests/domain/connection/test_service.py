import dataclasses

from domain.connection.service import ConnectionRow, get_connections, list_connections
from domain.db import AsyncSession
from domain.ids import ShopId
from tests.factories.customer import make_connection
from tests.factories.shop import make_shop


def test_connection_rows_hold_no_credentials() -> None:
    names = {field.name for field in dataclasses.fields(ConnectionRow)}

    assert not {name for name in names if "credential" in name or "secret" in name}


async def test_connections_are_listed_per_shop(session: AsyncSession) -> None:
    shop = await make_shop(session)
    other = await make_shop(session)
    first = await make_connection(session, shop=shop, platform="shopify")
    second = await make_connection(session, shop=shop, platform="amazon")
    foreign = await make_connection(session, shop=other)
    first.credentials_encrypted = "secret-token"
    await session.flush()
    shop_id = ShopId(shop.id)

    listed = await list_connections(session, shop_id)
    found = await get_connections(session, shop_id, [second.id, foreign.id])

    assert [row.platform for row in listed] == ["shopify", "amazon"]
    assert list(found) == [second.id]
    assert "secret-token" not in repr(listed)
