from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def redis(redis_available: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_available)
    yield client
    await client.aclose()
