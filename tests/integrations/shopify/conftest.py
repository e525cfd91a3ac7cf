"""A fake shop served over real loopback HTTP, and the platform pointed at it."""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from domain.ids import ConnectionId
from domain.platforms import (
    CustomerRecord,
    OrderRecord,
    PlatformAccount,
    RejectedRecord,
    SyncCursor,
    SyncPage,
)
from integrations.shopify.platform import ShopifyPlatform
from tests.fakes.loopback import serve_on_loopback
from tests.fakes.shopify import FakeShopify, Knobs, ShopifyStore, VirtualClock

TOKEN = "shpat_test"
SECRET = "whsec-kizuki-test"
PAYLOADS = Path(__file__).parent / "payloads"


@dataclass
class Mall:
    clock: VirtualClock
    store: ShopifyStore
    fake: FakeShopify
    base_url: str
    http: httpx.AsyncClient

    def account(self, token: str = TOKEN) -> PlatformAccount:
        return PlatformAccount(
            connection_id=ConnectionId(uuid.uuid4()),
            external_account_id=self.store.shop_domain,
            credentials={
                "shop_domain": self.store.shop_domain,
                "access_token": token,
                "client_secret": SECRET,
            },
            base_url=self.base_url,
        )

    def platform(self, **options: float) -> ShopifyPlatform:
        return ShopifyPlatform(
            self.http,
            clock=self.clock.now,
            sleep=self.clock.sleep,
            timeout=float(options.pop("timeout", 2.0)),
            backoff=float(options.pop("backoff", 0.5)),
            max_retries=int(options.pop("max_retries", 3)),
            page_size=int(options.pop("page_size", 250)),
            contract_page_size=int(options.pop("contract_page_size", 50)),
        )


@dataclass
class Collected:
    pages: list[SyncPage] = field(default_factory=list)

    @property
    def orders(self) -> list[OrderRecord]:
        return [order for page in self.pages for order in page.records.orders]

    @property
    def customers(self) -> list[CustomerRecord]:
        return [customer for page in self.pages for customer in page.records.customers]

    @property
    def rejected(self) -> list[RejectedRecord]:
        return [record for page in self.pages for record in page.rejected]

    @property
    def cursor(self) -> SyncCursor:
        return self.pages[-1].cursor

    def orders_by_id(self) -> dict[str, OrderRecord]:
        return {order.external_id: order for order in self.orders}


async def collect(
    platform: ShopifyPlatform,
    account: PlatformAccount,
    cursor: SyncCursor | None = None,
    since: datetime | None = None,
    into: Collected | None = None,
) -> Collected:
    """Every page of one sync; pages already gathered stay in `into` when the sync fails."""
    collected = into if into is not None else Collected()
    async for page in platform.sync_pages(account, cursor or {}, since):
        collected.pages.append(page)
    return collected


def order_ids(orders: Sequence[OrderRecord]) -> list[str]:
    return [order.external_id for order in orders]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def store(clock: VirtualClock) -> ShopifyStore:
    return ShopifyStore(clock.now)


@pytest.fixture
def knobs() -> Knobs:
    return Knobs()


@pytest.fixture
async def mall(clock: VirtualClock, store: ShopifyStore, knobs: Knobs) -> AsyncIterator[Mall]:
    fake = FakeShopify(store, knobs=knobs)
    async with serve_on_loopback(fake.app) as base_url, httpx.AsyncClient() as http:
        yield Mall(clock, store, fake, base_url, http)
