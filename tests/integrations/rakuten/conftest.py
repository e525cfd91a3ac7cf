from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from domain.ids import ConnectionId, new_id
from domain.platforms import PlatformAccount
from integrations.rakuten.client import ClientSettings
from integrations.rakuten.platform import RakutenPlatform
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.rakuten.clock import FakeClock
from tests.fakes.rakuten.server import create_app
from tests.fakes.rakuten.store import RakutenStore

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def store(clock: FakeClock) -> RakutenStore:
    return RakutenStore(clock=clock)


@pytest.fixture
async def base_url(store: RakutenStore) -> AsyncIterator[str]:
    async with serve_on_loopback(create_app(store)) as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def client_settings() -> ClientSettings:
    return ClientSettings()


@pytest.fixture
def platform(
    http: httpx.AsyncClient, clock: FakeClock, client_settings: ClientSettings
) -> RakutenPlatform:
    return RakutenPlatform(http, clock=clock, sleep=clock.sleep, client_settings=client_settings)


@pytest.fixture
def account(store: RakutenStore, base_url: str) -> PlatformAccount:
    credentials = store.credentials()
    return PlatformAccount(
        connection_id=ConnectionId(new_id()),
        external_account_id=credentials["shop_url"],
        credentials={**credentials, "notification_auth_key": "nk-402321-secret"},
        base_url=base_url,
    )
