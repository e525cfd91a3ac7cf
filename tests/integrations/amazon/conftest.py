from collections.abc import AsyncIterator

import httpx
import pytest

from integrations.amazon.platform import AmazonPlatform
from tests.fakes.amazon import AmazonStore, FakeClock, create_app
from tests.fakes.loopback import serve_on_loopback
from tests.integrations.amazon.harness import Amazon


@pytest.fixture
async def amazon() -> AsyncIterator[Amazon]:
    clock = FakeClock()
    store = AmazonStore(clock)
    async with (
        serve_on_loopback(create_app(store)) as base_url,
        httpx.AsyncClient(timeout=5.0) as http,
    ):
        platform = AmazonPlatform(http, clock=clock.now, sleep=clock.sleep)
        yield Amazon(store, clock, base_url, http, platform)
