"""The fake SP-API's state: sellers' orders, LWA grants and tokens, rate buckets, knobs, a log.

Everything runs on a `FakeClock` the test controls; the client under test sleeps through the
same clock, so a minute-long rate-limit wait costs no real time.
"""

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

JP = "A1VC38T7YXB528"

# (rate per second, burst) per operation, as malls.md 3.3 documents them.
DOCUMENTED_LIMITS: dict[str, tuple[float, float]] = {
    "getOrders": (0.0167, 20),
    "getOrder": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "getMarketplaceParticipations": (0.016, 15),
}
_ITEM_IDS = itertools.count(10**13)
# Slack for float arithmetic between the client's bucket and ours.
EPSILON = 1e-6


class FakeClock:
    """A UTC clock that moves only when told to, or when someone sleeps on it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
        self.slept = 0.0

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.slept += max(seconds, 0.0)
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


@dataclass
class Bucket:
    rate: float
    burst: float
    tokens: float
    at: float
    last_throttled_at: float | None = None

    def refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now


@dataclass(frozen=True)
class Fault:
    """What the Nth SP-API request meets: an error status, or a stall past the client's timeout."""

    status: int = 500
    stall_seconds: float = 0.0


@dataclass
class FakeOrder:
    order_id: str
    purchased_at: datetime
    updated_at: datetime
    status: str
    total: str | None
    currency: str
    buyer_email: str | None
    items: list[dict[str, object]]
    # Merged over the generated payload last: how tests make an order malformed.
    extra: dict[str, object] = field(default_factory=dict)

    def payload(self) -> dict[str, object]:
        body: dict[str, object] = {
            "AmazonOrderId": self.order_id,
            "PurchaseDate": _iso(self.purchased_at),
            "LastUpdateDate": _iso(self.updated_at),
            "OrderStatus": self.status,
            "FulfillmentChannel": "AFN",
            "SalesChannel": "Amazon.co.jp",
            "MarketplaceId": JP,
            "OrderType": "StandardOrder",
            "IsReplacementOrder": False,
            "NumberOfItemsShipped": 0,
            "NumberOfItemsUnshipped": 0,
        }
        if self.total is not None:
            body["OrderTotal"] = {"CurrencyCode": self.currency, "Amount": self.total}
        if self.buyer_email is not None:
            body["BuyerInfo"] = {"BuyerEmail": self.buyer_email}
        else:
            body["BuyerInfo"] = {}
        body.update(self.extra)
        return body


@dataclass(frozen=True)
class LoggedRequest:
    number: int
    operation: str
    params: tuple[tuple[str, str], ...]
    at: datetime
    status: int


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def order_item(
    asin: str,
    *,
    quantity: int = 1,
    price: str | None = "1980.00",
    sku: str | None = None,
    title: str = "",
    sns: bool = False,
    currency: str = "JPY",
) -> dict[str, object]:
    """An OrderItem payload; `price` is ItemPrice (unit price x quantity), None when Pending."""
    item: dict[str, object] = {
        "ASIN": asin,
        "OrderItemId": f"{next(_ITEM_IDS):014d}",
        "SellerSKU": sku or f"SKU-{asin}",
        "Title": title or f"Product {asin}",
        "QuantityOrdered": quantity,
        "QuantityShipped": 0,
    }
    if price is not None:
        item["ItemPrice"] = {"CurrencyCode": currency, "Amount": price}
    if sns:
        item["AmazonPrograms"] = {"Programs": ["SUBSCRIBE_AND_SAVE"]}
    return item


class AmazonStore:
    """One seller on the fake SP-API, with the knobs tests turn."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        seller_id: str = "A2SELLER0JP",
        store_name: str = "Kizuki Tea Store",
        client_id: str = "amzn1.application-oa2-client.fake",
        client_secret: str = "fake-client-secret",
        refresh_token: str = "Atzr|fake-refresh-token",
    ) -> None:
        self.clock = clock
        self.seller_id = seller_id
        self.store_name = store_name
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_tokens = {refresh_token}
        self.orders: dict[str, FakeOrder] = {}
        self._numbers = itertools.count(1000001)
        # Knobs.
        self.token_lifetime = 3600
        self.page_size = 100
        self.items_page_size = 100
        self.limits = dict(DOCUMENTED_LIMITS)
        self.send_rate_header = True
        self.faults: dict[int, Fault] = {}
        self.item_errors: dict[str, int] = {}
        self.expire_tokens_at_request: int | None = None
        # State and what happened.
        self.access_tokens: dict[str, datetime] = {}
        self.token_exchanges = 0
        self.buckets: dict[str, Bucket] = {}
        self.requests = 0
        self.log: list[LoggedRequest] = []
        self.throttled: dict[str, int] = {}
        self.violations: list[tuple[str, datetime]] = []
        self.advertised: dict[str, float] = {}

    # -- data ------------------------------------------------------------------------------

    def add_order(
        self,
        *,
        items: list[dict[str, object]],
        status: str = "Shipped",
        total: str | None = "3980.00",
        currency: str = "JPY",
        buyer_email: str | None = None,
        purchased_at: datetime | None = None,
        updated_at: datetime | None = None,
        extra: dict[str, object] | None = None,
        order_id: str | None = None,
    ) -> FakeOrder:
        """An order last changed `updated_at` (default: now), bought `purchased_at`."""
        now = self.clock.now()
        order = FakeOrder(
            order_id=order_id or f"503-{next(self._numbers):07d}-{len(self.orders):07d}",
            purchased_at=purchased_at or updated_at or now,
            updated_at=updated_at or now,
            status=status,
            total=total,
            currency=currency,
            buyer_email=buyer_email,
            items=items,
            extra=extra or {},
        )
        self.orders[order.order_id] = order
        return order

    def change_order(
        self,
        order_id: str,
        *,
        status: str,
        total: str | None = None,
        items: list[dict[str, object]] | None = None,
    ) -> FakeOrder:
        """A status change now: `LastUpdateDate` moves to the clock's time."""
        order = self.orders[order_id]
        order.status = status
        if total is not None:
            order.total = total
        if items is not None:
            order.items = items
        order.updated_at = self.clock.now()
        return order

    # -- auth ------------------------------------------------------------------------------

    def revoke_refresh_tokens(self) -> None:
        self.refresh_tokens.clear()

    def invalidate_access_tokens(self) -> None:
        self.access_tokens.clear()

    def issue_token(self) -> str:
        self.token_exchanges += 1
        token = f"Atza|fake-{self.token_exchanges}-{id(self)}"
        self.access_tokens[token] = self.clock.now() + timedelta(seconds=self.token_lifetime)
        return token

    # -- rate limits -----------------------------------------------------------------------

    def drain(self, operation: str) -> None:
        """Another app of the same seller used the operation's whole burst."""
        bucket = self._bucket(operation)
        bucket.refill(self.clock.now().timestamp())
        bucket.tokens = 0.0

    def _bucket(self, operation: str) -> Bucket:
        rate, burst = self.limits[operation]
        bucket = self.buckets.get(operation)
        if bucket is None:
            bucket = Bucket(rate, burst, burst, self.clock.now().timestamp())
            self.buckets[operation] = bucket
        bucket.rate, bucket.burst = rate, burst
        return bucket

    def admit(self, operation: str) -> bool:
        """Take a token, or count a 429; a retry sooner than one refill is a violation."""
        now = self.clock.now().timestamp()
        bucket = self._bucket(operation)
        bucket.refill(now)
        if bucket.tokens + EPSILON >= 1.0:
            bucket.tokens = max(bucket.tokens - 1.0, 0.0)
            return True
        self.throttled[operation] = self.throttled.get(operation, 0) + 1
        # The client can know only the documented rate and the rates we advertised on 2xx.
        known = self.advertised.get(operation, DOCUMENTED_LIMITS[operation][0])
        last = bucket.last_throttled_at
        if last is not None and now - last < 1.0 / known - EPSILON:
            self.violations.append((operation, self.clock.now()))
        bucket.last_throttled_at = now
        return False

    def advertise(self, operation: str) -> str:
        """The `x-amzn-RateLimit-Limit` value of a 2xx answer."""
        rate = self.limits[operation][0]
        self.advertised[operation] = rate
        return str(rate)
