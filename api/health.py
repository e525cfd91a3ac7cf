"""`/healthz` (the process answers) and `/readyz` (its database and Redis answer). No key."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.context import Services

logger = logging.getLogger("kizuki.api")

CHECK_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _database(services: Services) -> None:
    async with services.sessions() as session:
        connection = await session.connection()
        await connection.execute(text("SELECT 1"))


async def _redis(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _check(name: str, probe: Awaitable[None]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await probe
    except Exception as error:  # any failure at all means "not ready"; it is logged
        logger.warning("readiness check %s failed: %r", name, error)
        return f"failed: {type(error).__name__}"
    return "ok"


def readyz(services: Services) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        checks = {"database": await _check("database", _database(services))}
        redis_url = services.settings.redis_url
        if redis_url:
            checks["redis"] = await _check("redis", _redis(redis_url))
        ready = all(result == "ok" for result in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )

    return endpoint
