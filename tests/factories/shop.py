import pytest

from domain.db import AsyncSession
from domain.ids import ShopId
from domain.shop.models import ApiKey, Role, Shop
from domain.shop.service import create_api_key, create_shop


async def make_shop(session: AsyncSession, *, name: str | None = None) -> Shop:
    import uuid

    return await create_shop(session, name or f"shop-{uuid.uuid4().hex[:8]}")


async def make_api_key(
    session: AsyncSession, *, shop: Shop, role: Role = Role.ADMIN
) -> tuple[ApiKey, str]:
    return await create_api_key(session, ShopId(shop.id), role, name=f"{role.value} key")


@pytest.fixture
async def shop(session: AsyncSession) -> Shop:
    return await make_shop(session)
