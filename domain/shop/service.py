import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from sqlmodel import col, select

from domain.audit.models import AuditLog
from domain.db import AsyncSession
from domain.errors import Conflict, InvalidInput, NotFound, ShopNameTaken, ShopNotFound
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


MAX_HORIZON_DAYS = 730


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _audit(
    session: AsyncSession,
    shop_id: ShopId,
    *,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any],
) -> None:
    session.add(AuditLog(shop_id=shop_id, actor=actor, action=action, target=target, detail=detail))


def _clean_name(name: str, *, what: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput(f"{what} needs a name", field="name")
    if len(cleaned) > 200:
        raise InvalidInput(f"{what} name is longer than 200 characters", field="name")
    return cleaned


async def update_shop(
    session: AsyncSession,
    shop_id: ShopId,
    *,
    actor: str,
    name: str | None = None,
    timezone: str | None = None,
    horizon_days: int | None = None,
) -> Shop:
    """Change the given settings of the shop (others stay); audited; nothing changes on error."""
    shop = await require_shop(session, shop_id)
    changes: dict[str, Any] = {}
    if name is not None:
        name = _clean_name(name, what="a shop")
        if name != shop.name:
            taken = select(Shop.id).where(Shop.name == name, Shop.id != shop_id)
            if (await session.exec(taken)).first() is not None:
                raise ShopNameTaken(f"a shop named {name!r} exists", field="name")
            changes["name"] = [shop.name, name]
    if timezone is not None:
        if timezone not in _zones():
            raise InvalidInput(
                f"{timezone!r} is not an IANA time zone (like 'Asia/Tokyo')", field="timezone"
            )
        if timezone != shop.timezone:
            changes["timezone"] = [shop.timezone, timezone]
    if horizon_days is not None:
        if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
            raise InvalidInput(
                f"the risk horizon is 1 to {MAX_HORIZON_DAYS} days, not {horizon_days}",
                field="horizon_days",
            )
        if horizon_days != shop.horizon_days:
            changes["horizon_days"] = [shop.horizon_days, horizon_days]
    if not changes:
        return shop
    for key, (_, new) in changes.items():
        setattr(shop, key, new)
    _audit(session, shop_id, actor=actor, action="shop.update", target=str(shop_id), detail=changes)
    await session.flush()
    return shop


async def get_api_key(session: AsyncSession, shop_id: ShopId, key_id: uuid.UUID) -> ApiKey | None:
    statement = select(ApiKey).where(ApiKey.shop_id == shop_id, ApiKey.id == key_id)
    return (await session.exec(statement)).first()


async def list_api_keys(session: AsyncSession, shop_id: ShopId) -> Sequence[ApiKey]:
    """The shop's keys, revoked ones included, oldest first."""
    statement = (
        select(ApiKey)
        .where(ApiKey.shop_id == shop_id)
        .order_by(col(ApiKey.created_at), col(ApiKey.id))
    )
    return (await session.exec(statement)).all()


async def issue_api_key(
    session: AsyncSession, shop_id: ShopId, *, actor: str, name: str, role: Role
) -> tuple[ApiKey, str]:
    """`create_api_key` for a named key, audited; the raw key is returned once."""
    name = _clean_name(name, what="an API key")
    key, raw_key = await create_api_key(session, shop_id, role, name=name)
    _audit(
        session,
        shop_id,
        actor=actor,
        action="api_key.create",
        target=str(key.id),
        detail={"name": name, "role": role.value},
    )
    await session.flush()
    return key, raw_key


async def revoke_api_key(
    session: AsyncSession, shop_id: ShopId, key_id: uuid.UUID, *, actor: str, now: datetime
) -> ApiKey:
    """Revoke the key from `now` on, audited; revoking a revoked key changes nothing.

    The shop's last live admin key cannot be revoked, so a shop is never locked out.
    """
    key = await get_api_key(session, shop_id, key_id)
    if key is None:
        raise NotFound("no such API key", field="id")
    if key.revoked_at is not None:
        return key
    if key.role == Role.ADMIN:
        other_admins = select(ApiKey.id).where(
            ApiKey.shop_id == shop_id,
            ApiKey.role == Role.ADMIN,
            ApiKey.id != key_id,
            col(ApiKey.revoked_at).is_(None),
        )
        if (await session.exec(other_admins)).first() is None:
            raise Conflict("the shop's last admin key cannot be revoked", field="id")
    key.revoked_at = now
    _audit(
        session,
        shop_id,
        actor=actor,
        action="api_key.revoke",
        target=str(key_id),
        detail={"name": key.name, "role": Role(key.role).value},
    )
    await session.flush()
    return key
