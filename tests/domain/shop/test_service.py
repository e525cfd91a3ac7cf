from datetime import UTC, datetime

import pytest

from domain.db import AsyncSession
from domain.errors import ShopNameTaken
from domain.ids import ShopId
from domain.shop.models import Role
from domain.shop.service import authenticate, create_api_key, create_shop


async def test_api_key_authenticates_only_its_exact_value(session: AsyncSession) -> None:
    shop = await create_shop(session, "kizuki skincare")
    key, raw = await create_api_key(session, ShopId(shop.id), Role.ANALYST)
    now = datetime.now(UTC)

    found = await authenticate(session, raw, now=now)

    assert found is not None
    assert (found.id, found.shop_id, found.role) == (key.id, shop.id, Role.ANALYST)
    assert key.key_hash != raw
    assert await authenticate(session, raw[:-1] + ("A" if raw[-1] != "A" else "B"), now=now) is None
    assert await authenticate(session, "kzk_nothex_secret", now=now) is None
    assert await authenticate(session, "", now=now) is None


async def test_revoked_key_no_longer_authenticates(session: AsyncSession) -> None:
    shop = await create_shop(session, "revoked")
    key, raw = await create_api_key(session, ShopId(shop.id), Role.ADMIN)
    key.revoked_at = datetime.now(UTC)
    await session.flush()

    assert await authenticate(session, raw, now=datetime.now(UTC)) is None


async def test_shop_names_are_unique(session: AsyncSession) -> None:
    await create_shop(session, "same")

    with pytest.raises(ShopNameTaken) as caught:
        await create_shop(session, "same")

    assert caught.value.field == ("name",)
