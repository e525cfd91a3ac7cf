"""API keys on the wire: `Authorization: Bearer <key>` over HTTP, `connection_init` over WS."""

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.responses import JSONResponse

from api.context import Principal
from domain.db import AsyncSession
from domain.ids import ApiKeyId, ShopId
from domain.shop.models import Role
from domain.shop.service import authenticate

UNAUTHENTICATED = "UNAUTHENTICATED"


def bearer_key(header: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, else None."""
    if header is None:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def connection_key(params: Mapping[str, object] | None) -> str | None:
    """The key in `connection_init`: `{"Authorization": "Bearer …"}` or `{"apiKey": "…"}`."""
    if not params:
        return None
    for name, value in params.items():
        if name.lower() == "authorization" and isinstance(value, str):
            return bearer_key(value)
    api_key = params.get("apiKey")
    return api_key.strip() or None if isinstance(api_key, str) else None


async def principal_of(session: AsyncSession, raw_key: str) -> Principal | None:
    """The caller a live key stands for; None for a malformed, unknown or revoked key."""
    key = await authenticate(session, raw_key, now=datetime.now(UTC))
    if key is None:
        return None
    return Principal(shop_id=ShopId(key.shop_id), api_key_id=ApiKeyId(key.id), role=Role(key.role))


async def authenticate_key(
    sessions: async_sessionmaker[AsyncSession], raw_key: str
) -> Principal | None:
    """`principal_of` in a session of its own."""
    async with sessions() as session:
        return await principal_of(session, raw_key)


def unauthenticated(message: str, *, invalid: bool) -> JSONResponse:
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": UNAUTHENTICATED}}]},
        status_code=401,
        headers={"WWW-Authenticate": challenge},
    )
