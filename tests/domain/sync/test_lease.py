from datetime import timedelta

import pytest

from domain.connection.models import ConnectionStatus
from domain.db import AsyncSession, utcnow
from domain.ids import ShopId
from domain.sync.lease import LeaseLost, acquire_lease, release_lease, renew_lease
from tests.factories.shop import make_shop
from tests.plugins.memory_mall.testing import add_connection


async def test_one_sync_holds_a_connection_until_it_releases_or_expires(
    session: AsyncSession,
) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    shop_id, now = ShopId(shop.id), utcnow()

    first = await acquire_lease(session, shop_id, connection.id, now=now, seconds=60)
    second = await acquire_lease(session, shop_id, connection.id, now=now, seconds=60)
    later = now + timedelta(seconds=61)
    taken = await acquire_lease(session, shop_id, connection.id, now=later, seconds=60)

    assert first is not None
    assert second is None
    assert taken is not None
    with pytest.raises(LeaseLost):
        await renew_lease(session, first, now=later, seconds=60)
    assert not await release_lease(session, first)
    renewed = await renew_lease(session, taken, now=later, seconds=60)
    assert renewed.until > taken.until
    assert await release_lease(session, renewed)
    assert await acquire_lease(session, shop_id, connection.id, now=now, seconds=60) is not None


async def test_an_inactive_connection_is_never_leased(session: AsyncSession) -> None:
    shop = await make_shop(session)
    connection = await add_connection(session, shop)
    connection.status = ConnectionStatus.NEEDS_CREDENTIALS
    await session.flush()

    lease = await acquire_lease(session, ShopId(shop.id), connection.id, now=utcnow(), seconds=9)

    assert lease is None
