import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select

from domain.db import AsyncSession
from domain.errors import InvalidInput, ShopNameTaken, ShopNotFound
from domain.ids import ShopId
from domain.shop.models import ApiKey, Role, Shop

KEY_PREFIX = "kzk"


def hash_key(raw_key: str) -> str:
    """SHA-256 hex of a raw API key; keys carry 192 random bits, so no slow hash is needed."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


async def create_shop(
    session: AsyncSession, name: str, *, timezone: str = "Asia/Tokyo", currency: str = "JPY"
) -> Shop:
    """A new shop; its name is unique across the deployment."""
    name = name.strip()
    if not name:
        raise InvalidInput("a shop needs a name", field="name")
    if (await session.exec(select(Shop.id).where(Shop.name == name))).first() is not None:
        raise ShopNameTaken(f"a shop named {name!r} exists", field="name")
    shop = Shop(name=name, timezone=timezone, currency=currency)
    session.add(shop)
    await session.flush()
    return shop


async def get_shop(session: AsyncSession, shop_id: uuid.UUID) -> Shop | None:
    return await session.get(Shop, shop_id)


async def require_shop(session: AsyncSession, shop_id: uuid.UUID) -> Shop:
    shop = await get_shop(session, shop_id)
    if shop is None:
        raise ShopNotFound("no such shop", field="shop")
    return shop


async def list_shops(session: AsyncSession) -> Sequence[Shop]:
    return (await session.exec(select(Shop).order_by(col(Shop.created_at)))).all()


async def create_api_key(
    session: AsyncSession, shop_id: ShopId, role: Role, *, name: str = ""
) -> tuple[ApiKey, str]:
    """A new key for the shop; the raw key is returned once and only its hash is stored."""
    await require_shop(session, shop_id)
    secret = secrets.token_urlsafe(24)
    raw_key = f"{KEY_PREFIX}_{shop_id.hex}_{secret}"
    key = ApiKey(
        shop_id=shop_id, name=name, role=role, prefix=secret[:6], key_hash=hash_key(raw_key)
    )
    session.add(key)
    await session.flush()
    return key, raw_key


async def authenticate(session: AsyncSession, raw_key: str, *, now: datetime) -> ApiKey | None:
    """The live key matching `raw_key`, or None for any malformed, unknown or revoked key."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    try:
        shop_id = uuid.UUID(hex=parts[1])
    except ValueError:
        return None
    statement = select(ApiKey).where(
        ApiKey.shop_id == shop_id, ApiKey.key_hash == hash_key(raw_key)
    )
    key = (await session.exec(statement)).first()
    if key is None or (key.revoked_at is not None and key.revoked_at <= now):
        return None
    return key
