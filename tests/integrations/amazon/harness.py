"""What the Amazon tests share: the fake on loopback, a platform on it, whole sync runs."""

from dataclasses import dataclass
from datetime import timedelta

import httpx

from domain.ids import ConnectionId, new_id
from domain.platforms import PlatformAccount, RecordBatch, RejectedRecord, SyncCursor, SyncPage
from integrations.amazon.platform import AmazonPlatform
from tests.fakes.amazon import AmazonStore, FakeClock, order_item


@dataclass
class Amazon:
    """The fake served on loopback, its store and clock, and a platform pointed at it."""

    store: AmazonStore
    clock: FakeClock
    base_url: str
    http: httpx.AsyncClient
    platform: AmazonPlatform

    def credentials(self, **overrides: str) -> dict[str, str]:
        return {
            "seller_id": self.store.seller_id,
            "refresh_token": next(iter(self.store.refresh_tokens), "Atzr|gone"),
            "lwa_client_id": self.store.client_id,
            "lwa_client_secret": self.store.client_secret,
            "marketplace_id": "A1VC38T7YXB528",
            "notification_secret": "relay-secret",
            **overrides,
        }

    def account(self, **overrides: str) -> PlatformAccount:
        return PlatformAccount(
            connection_id=ConnectionId(new_id()),
            external_account_id=self.store.seller_id,
            credentials=self.credentials(**overrides),
            base_url=self.base_url,
        )

    def fresh_platform(self) -> AmazonPlatform:
        """A platform with no cached tokens or rate state, as after a worker restart."""
        return AmazonPlatform(self.http, clock=self.clock.now, sleep=self.clock.sleep)


@dataclass
class Run:
    pages: list[SyncPage]

    @property
    def cursor(self) -> SyncCursor:
        return self.pages[-1].cursor

    @property
    def batch(self) -> RecordBatch:
        return RecordBatch(
            orders=tuple(o for page in self.pages for o in page.records.orders),
            subscriptions=tuple(s for page in self.pages for s in page.records.subscriptions),
            subscription_events=tuple(
                e for page in self.pages for e in page.records.subscription_events
            ),
        )

    @property
    def rejected(self) -> list[RejectedRecord]:
        return [r for page in self.pages for r in page.rejected]

    @property
    def order_ids(self) -> list[str]:
        return [order.external_id for order in self.batch.orders]


async def sync(
    platform: AmazonPlatform,
    account: PlatformAccount,
    cursor: SyncCursor | None = None,
    pages: list[SyncPage] | None = None,
) -> Run:
    """Every page of one sync; `pages` collects them as they come (kept when it raises)."""
    collected = pages if pages is not None else []
    async for page in platform.sync_pages(account, cursor or {}, None):
        collected.append(page)
    return Run(collected)


def seed(store: AmazonStore, count: int, *, days_ago: float = 30.0) -> list[str]:
    """`count` shipped orders of five repeat buyers, one every hour from `days_ago` on."""
    start = store.clock.now() - timedelta(days=days_ago)
    ids = []
    for index in range(count):
        at = start + timedelta(hours=index)
        order = store.add_order(
            items=[order_item(f"B0{index % 7:08d}", quantity=1 + index % 3, price="1980.00")],
            total="1980.00",
            buyer_email=f"buyer{index % 5}@marketplace.amazon.co.jp",
            purchased_at=at,
            updated_at=at + timedelta(minutes=30),
        )
        ids.append(order.order_id)
    return ids
