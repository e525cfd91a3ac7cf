"""The fake shop's data: orders, customers, subscription contracts, and the search index.

Orders are kept in a list sorted by (indexed updatedAt, id), the order Shopify's search index
serves `sortKey: UPDATED_AT` in, so a page of 250 out of 100,000 is a bisect and a slice.
A change to an order is visible in its data at once but reaches the index `index_lag` seconds
later, as Shopify's search index does. Node dicts are built once per change and cached.
"""

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

JSON = dict[str, Any]

SIXTY_DAYS = timedelta(days=60)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(amount: Decimal, currency: str) -> JSON:
    return {"shopMoney": {"amount": str(amount), "currencyCode": currency}}


@dataclass
class FakeCustomer:
    id: int
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def gid(self) -> str:
        return f"gid://shopify/Customer/{self.id}"


@dataclass
class FakeLine:
    id: int
    sku: str
    name: str
    quantity: int
    current_quantity: int
    price: Decimal
    product_id: int


@dataclass
class FakeOrder:
    id: int
    name: str
    created_at: datetime
    updated_at: datetime
    currency: str
    customer_id: int | None
    lines: list[FakeLine]
    email: str | None = None
    phone: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    financial_status: str = "PAID"
    fulfillment_status: str = "FULFILLED"
    refunded: Decimal = Decimal(0)
    test: bool = False
    # What the search index believes the order's updatedAt is (lags behind `updated_at`).
    indexed_at: datetime | None = None
    # Field values served instead of the real ones: malformed nodes for tests.
    overrides: JSON = field(default_factory=dict)

    @property
    def gid(self) -> str:
        return f"gid://shopify/Order/{self.id}"

    @property
    def total(self) -> Decimal:
        return sum((line.price * line.current_quantity for line in self.lines), Decimal(0))


@dataclass
class FakeCycle:
    index: int
    start_at: datetime
    skipped: bool = False


@dataclass
class FakeContract:
    id: int
    customer_id: int
    status: str
    created_at: datetime
    updated_at: datetime
    interval: str
    interval_count: int
    title: str
    cycles: list[FakeCycle]
    currency: str = "JPY"

    @property
    def gid(self) -> str:
        return f"gid://shopify/SubscriptionContract/{self.id}"

    @property
    def next_billing_date(self) -> datetime | None:
        if self.status != "ACTIVE":
            return None
        upcoming = [cycle.start_at for cycle in self.cycles if not cycle.skipped]
        return max(upcoming) if upcoming else None


class ShopifyStore:
    """One shop's data; `clock` is the fake's idea of now (a `VirtualClock.now` in tests)."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        shop_domain: str = "kizuki-test.myshopify.com",
        shop_name: str = "気づき商店",
        currency: str = "JPY",
    ) -> None:
        self.clock = clock
        self.shop_domain = shop_domain
        self.shop_name = shop_name
        self.currency = currency
        self.customers: dict[int, FakeCustomer] = {}
        self.orders: dict[int, FakeOrder] = {}
        self.contracts: dict[int, FakeContract] = {}
        self.index_lag = 0.0
        self.redact_protected_data = False
        self._keys: list[tuple[float, int]] = []
        # (ready at, order id, updatedAt to index), applied as time passes.
        self._pending: list[tuple[datetime, int, datetime]] = []
        self._nodes: dict[int, JSON] = {}
        self._next_id = 1000

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- writing ----------------------------------------------------------------------------

    def add_customer(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        first_name: str | None = "花子",
        last_name: str | None = "山田",
        created_at: datetime | None = None,
    ) -> FakeCustomer:
        at = (created_at or self.clock()).replace(microsecond=0)
        customer = FakeCustomer(self.next_id(), email, phone, first_name, last_name, at, at)
        self.customers[customer.id] = customer
        return customer

    def add_order(
        self,
        customer: FakeCustomer | None,
        *,
        created_at: datetime | None = None,
        lines: list[tuple[str, int, Decimal]] | None = None,
        email: str | None = None,
        test: bool = False,
        financial_status: str = "PAID",
        fulfillment_status: str = "FULFILLED",
    ) -> FakeOrder:
        at = (created_at or self.clock()).replace(microsecond=0)
        order_id = self.next_id()
        fake_lines = [
            FakeLine(self.next_id(), sku, f"商品 {sku}", quantity, quantity, price, 7000 + i)
            for i, (sku, quantity, price) in enumerate(lines or [("SKU-1", 1, Decimal(1980))])
        ]
        order = FakeOrder(
            id=order_id,
            name=f"#{order_id}",
            created_at=at,
            updated_at=at,
            currency=self.currency,
            customer_id=customer.id if customer else None,
            lines=fake_lines,
            email=email if email is not None else (customer.email if customer else None),
            test=test,
            financial_status=financial_status,
            fulfillment_status=fulfillment_status,
        )
        self.orders[order_id] = order
        self.touch(order, at)
        return order

    def touch(self, order: FakeOrder, at: datetime | None = None) -> None:
        """Bump the order's updatedAt to now (or `at`), reaching the index after the lag."""
        order.updated_at = (at or self.clock()).replace(microsecond=0)
        self._nodes.pop(order.id, None)
        if self.index_lag > 0:
            ready = order.updated_at + timedelta(seconds=self.index_lag)
            self._pending.append((ready, order.id, order.updated_at))
        else:
            self._reindex(order, order.updated_at)

    def edit_order(self, order: FakeOrder, line_index: int, quantity: int) -> None:
        order.lines[line_index].current_quantity = quantity
        self.touch(order)

    def cancel_order(self, order: FakeOrder, reason: str = "CUSTOMER") -> None:
        order.cancelled_at = self.clock()
        order.cancel_reason = reason
        order.financial_status = "REFUNDED"
        order.refunded = order.total
        self.touch(order)

    def refund_order(self, order: FakeOrder, amount: Decimal) -> None:
        order.refunded += amount
        order.financial_status = (
            "REFUNDED" if order.refunded >= order.total else "PARTIALLY_REFUNDED"
        )
        self.touch(order)

    def corrupt(self, order: FakeOrder, **overrides: Any) -> None:
        order.overrides.update(overrides)
        self._nodes.pop(order.id, None)

    def set_redaction(self, redact: bool) -> None:
        self.redact_protected_data = redact
        self._nodes.clear()

    def add_contract(
        self,
        customer: FakeCustomer,
        *,
        created_at: datetime | None = None,
        interval: str = "MONTH",
        interval_count: int = 1,
        cycles: int = 4,
        title: str = "定期便 コーヒー豆",
    ) -> FakeContract:
        at = (created_at or self.clock()).replace(microsecond=0)
        step = timedelta(days=30 * interval_count if interval == "MONTH" else 7 * interval_count)
        contract = FakeContract(
            id=self.next_id(),
            customer_id=customer.id,
            status="ACTIVE",
            created_at=at,
            updated_at=at,
            interval=interval,
            interval_count=interval_count,
            title=title,
            cycles=[FakeCycle(index + 1, at + step * (index + 1)) for index in range(cycles)],
        )
        self.contracts[contract.id] = contract
        return contract

    def skip_cycle(self, contract: FakeContract, index: int, skipped: bool = True) -> None:
        # Skipping edits the billing cycle, not the contract: updatedAt stays.
        contract.cycles[index - 1].skipped = skipped

    def set_contract_status(self, contract: FakeContract, status: str) -> None:
        contract.status = status
        contract.updated_at = self.clock().replace(microsecond=0)

    # --- the search index -------------------------------------------------------------------

    def _reindex(self, order: FakeOrder, updated_at: datetime) -> None:
        if order.indexed_at is not None:
            old = (order.indexed_at.timestamp(), order.id)
            position = bisect.bisect_left(self._keys, old)
            if position < len(self._keys) and self._keys[position] == old:
                del self._keys[position]
        order.indexed_at = updated_at
        bisect.insort(self._keys, (updated_at.timestamp(), order.id))

    def catch_up_index(self) -> None:
        now = self.clock()
        due = [entry for entry in self._pending if entry[0] <= now]
        if not due:
            return
        self._pending = [entry for entry in self._pending if entry[0] > now]
        for _, order_id, updated_at in sorted(due):
            order = self.orders[order_id]
            if order.indexed_at is None or updated_at > order.indexed_at:
                self._reindex(order, updated_at)

    def scan_updated(self, lower: tuple[float, int] | None) -> Iterator[FakeOrder]:
        """Indexed orders in (updatedAt, id) order, strictly after `lower`."""
        start = 0 if lower is None else bisect.bisect_right(self._keys, lower)
        for position in range(start, len(self._keys)):
            yield self.orders[self._keys[position][1]]

    # --- nodes ------------------------------------------------------------------------------

    def customer_node(self, customer: FakeCustomer) -> JSON:
        redact = self.redact_protected_data
        return {
            "id": customer.gid,
            "email": None if redact else customer.email,
            "phone": None if redact else customer.phone,
            "firstName": None if redact else customer.first_name,
            "lastName": None if redact else customer.last_name,
            "displayName": None if redact else f"{customer.last_name} {customer.first_name}",
            "createdAt": iso(customer.created_at),
            "updatedAt": iso(customer.updated_at),
        }

    def warm(self) -> None:
        """Build every order's node now rather than on first read (before timing a sync)."""
        for order in self.orders.values():
            self.order_node(order)

    def order_node(self, order: FakeOrder) -> JSON:
        cached = self._nodes.get(order.id)
        if cached is not None:
            return cached
        currency = order.currency
        customer = self.customers.get(order.customer_id) if order.customer_id else None
        redact = self.redact_protected_data
        financial = order.financial_status
        node: JSON = {
            "id": order.gid,
            "name": order.name,
            "createdAt": iso(order.created_at),
            "processedAt": iso(order.created_at),
            "updatedAt": iso(order.updated_at),
            "cancelledAt": iso(order.cancelled_at) if order.cancelled_at else None,
            "cancelReason": order.cancel_reason,
            "displayFinancialStatus": financial,
            "displayFulfillmentStatus": order.fulfillment_status,
            "email": None if redact else order.email,
            "phone": None if redact else order.phone,
            "test": order.test,
            "currencyCode": currency,
            "customer": self.customer_node(customer) if customer else None,
            "totalPriceSet": money(order.total, currency),
            "currentTotalPriceSet": money(order.total - order.refunded, currency),
            "totalRefundedSet": money(order.refunded, currency),
            "lineItems": {
                "nodes": [
                    {
                        "id": f"gid://shopify/LineItem/{line.id}",
                        "sku": line.sku,
                        "name": line.name,
                        "quantity": line.quantity,
                        "currentQuantity": line.current_quantity,
                        "originalUnitPriceSet": money(line.price, currency),
                        "discountedUnitPriceSet": money(line.price, currency),
                        "product": {"id": f"gid://shopify/Product/{line.product_id}"},
                        "variant": {"id": f"gid://shopify/ProductVariant/{line.product_id}1"},
                    }
                    for line in order.lines
                ]
            },
            **order.overrides,
        }
        self._nodes[order.id] = node
        return node

    def contract_node(self, contract: FakeContract) -> JSON:
        next_billing = contract.next_billing_date
        return {
            "id": contract.gid,
            "status": contract.status,
            "createdAt": iso(contract.created_at),
            "updatedAt": iso(contract.updated_at),
            "nextBillingDate": iso(next_billing) if next_billing else None,
            "currencyCode": contract.currency,
            "customer": self.customer_node(self.customers[contract.customer_id]),
            "billingPolicy": {
                "interval": contract.interval,
                "intervalCount": contract.interval_count,
            },
            "lines": {"nodes": [{"title": contract.title, "quantity": 1}]},
        }

    def cycle_node(self, cycle: FakeCycle) -> JSON:
        return {
            "cycleIndex": cycle.index,
            "cycleStartAt": iso(cycle.start_at),
            "cycleEndAt": iso(cycle.start_at),
            "billingAttemptExpectedDate": iso(cycle.start_at),
            "skipped": cycle.skipped,
            "edited": False,
            "status": "UNBILLED",
        }

    def visible(self, order: FakeOrder, all_orders: bool) -> bool:
        return all_orders or order.created_at >= self.clock() - SIXTY_DAYS
