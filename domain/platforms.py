"""What every store platform hands to the domain: canonical records, errors, the Protocol.

Integrations map vendor payloads to these records in their `mapping.py`; `domain.ingest`
persists them, the same way for every mall and for the CSV import. Records are plain data:
external IDs as the mall spells them, aware UTC datetimes, integer amounts in the currency's
minor unit (JPY has none, USD counts cents) with an ISO 4217 code.

    PlatformError               a store platform failed to answer as it should
    ├── PlatformUnavailable     outage, timeout, throttling: retry later (`retryable`)
    ├── PlatformAuthRevoked     the credentials no longer work: mark the connection broken
    └── PlatformRejected        the platform refused the request or sent something unusable
"""

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import ClassVar, Protocol, runtime_checkable

from domain.ids import ConnectionId
from domain.order.models import OrderStatus
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus


class Platform(StrEnum):
    """The built-in malls; plugins may add more, so records carry the platform as a `str`."""

    SHOPIFY = "shopify"
    RAKUTEN = "rakuten"
    AMAZON = "amazon"


def _utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _normalise(record: object, name: str) -> None:
    # Frozen records normalise once, at construction, so comparisons and digests never see
    # two spellings of the same instant. Callers test `tzinfo is not UTC` first: most records
    # arrive in UTC, and this runs for millions of them in a bulk load.
    object.__setattr__(record, name, _utc(name, getattr(record, name)))


def _check_currency(currency: str) -> None:
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise ValueError(f"currency must be an ISO 4217 code, got {currency!r}")


def _check_external_id(name: str, value: str) -> None:
    if not value or len(value) > 200:
        raise ValueError(f"{name} must have 1 to 200 characters, got {value[:20]!r}…")


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    """A customer as one mall knows them; contact data as the mall gave it (ingest normalises)."""

    platform: str
    external_id: str
    display_name: str = ""
    email: str | None = None
    phone: str | None = None
    birth_date: date | None = None
    # When the mall first knew the customer (account creation or first order).
    created_at: datetime | None = None
    source_updated_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_external_id("external_id", self.external_id)
        if self.created_at is not None and self.created_at.tzinfo is not UTC:
            _normalise(self, "created_at")
        if self.source_updated_at is not None and self.source_updated_at.tzinfo is not UTC:
            _normalise(self, "source_updated_at")


@dataclass(frozen=True, slots=True)
class OrderLineRecord:
    """One line of an order; the product is optional (research data often has none)."""

    quantity: int
    # The line's total in the order's currency (minor units), after line discounts.
    amount: int = 0
    unit_price: int | None = None
    sku: str | None = None
    title: str = ""
    product_external_id: str | None = None

    def __post_init__(self) -> None:
        if self.quantity < 0:
            raise ValueError(f"quantity must not be negative, got {self.quantity}")


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order with all its lines; `lines` replace the stored ones when the order changes."""

    platform: str
    external_id: str
    customer_external_id: str
    ordered_at: datetime
    total_amount: int
    currency: str = "JPY"
    status: OrderStatus = OrderStatus.FULFILLED
    # Money returned by partial refunds; a fully refunded order has status `refunded`.
    refunded_amount: int = 0
    # Number of items; None means the sum of the lines' quantities.
    item_quantity: int | None = None
    lines: tuple[OrderLineRecord, ...] = ()
    subscription_external_id: str | None = None
    source_updated_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_external_id("external_id", self.external_id)
        _check_external_id("customer_external_id", self.customer_external_id)
        _check_currency(self.currency)
        if self.total_amount < 0 or self.refunded_amount < 0:
            raise ValueError("order amounts must not be negative")
        if self.item_quantity is not None and self.item_quantity < 0:
            raise ValueError(f"item_quantity must not be negative, got {self.item_quantity}")
        if self.ordered_at.tzinfo is not UTC:
            _normalise(self, "ordered_at")
        if self.source_updated_at is not None and self.source_updated_at.tzinfo is not UTC:
            _normalise(self, "source_updated_at")

    @property
    def quantity(self) -> int:
        """Items in the order: `item_quantity` when given, else the lines' total."""
        if self.item_quantity is not None:
            return self.item_quantity
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """A subscription (定期購入) contract of one customer."""

    platform: str
    external_id: str
    customer_external_id: str
    started_at: datetime
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    interval_days: int = 30
    product_title: str = ""
    cancelled_at: datetime | None = None
    next_delivery_at: datetime | None = None
    source_updated_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_external_id("external_id", self.external_id)
        _check_external_id("customer_external_id", self.customer_external_id)
        if self.interval_days <= 0:
            raise ValueError(f"interval_days must be positive, got {self.interval_days}")
        for name in ("started_at", "cancelled_at", "next_delivery_at", "source_updated_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is not UTC:
                _normalise(self, name)


@dataclass(frozen=True, slots=True)
class SubscriptionEventRecord:
    """Something that happened to a subscription; stored once per `dedup_key`."""

    platform: str
    subscription_external_id: str
    kind: SubscriptionEventKind
    occurred_at: datetime
    # The mall's event id; without one, kind + time identify the event.
    event_id: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        _check_external_id("subscription_external_id", self.subscription_external_id)
        if self.occurred_at.tzinfo is not UTC:
            _normalise(self, "occurred_at")

    @property
    def dedup_key(self) -> str:
        """The key that makes a re-delivered event a no-op."""
        if self.event_id:
            return self.event_id
        return f"{self.kind.value}@{self.occurred_at.isoformat()}"


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """Records of one connection to persist together; orders may reference customers elsewhere."""

    customers: tuple[CustomerRecord, ...] = ()
    orders: tuple[OrderRecord, ...] = ()
    subscriptions: tuple[SubscriptionRecord, ...] = ()
    subscription_events: tuple[SubscriptionEventRecord, ...] = ()

    def __len__(self) -> int:
        return (
            len(self.customers)
            + len(self.orders)
            + len(self.subscriptions)
            + len(self.subscription_events)
        )


@dataclass(frozen=True, slots=True)
class PlatformAccount:
    """What a platform needs to talk to one connected account (credentials decrypted).

    `base_url` points the client at a sandbox or a fake server; None means the mall itself.
    """

    connection_id: ConnectionId
    external_account_id: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """Who the credentials belong to, as the mall answered when they were checked."""

    # Stable id of the account on the mall (Shopify shop domain, Rakuten shop URL, seller id).
    external_account_id: str
    name: str = ""


# Cursor of an incremental sync: opaque to everyone but the platform that made it. Stored as
# JSON on the connection; an empty cursor means "never synced" (backfill).
SyncCursor = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A vendor record that could not be validated or mapped; the rest of the page goes on."""

    kind: str  # "order", "customer", "subscription", "subscription_event"
    external_id: str | None
    problem: str


@dataclass(frozen=True, slots=True)
class PageStats:
    """What fetching one page cost: requests sent and time spent waiting for rate limits."""

    requests: int = 0
    throttle_waits: int = 0
    throttle_wait_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class SyncPage:
    """One page of a sync: records to persist, then the cursor to resume after them.

    The sync stores `records` and `cursor` in one transaction, so an interrupted sync resumes
    after the last stored page; re-fetching a page is harmless because ingest is idempotent.
    """

    records: RecordBatch
    cursor: SyncCursor
    rejected: tuple[RejectedRecord, ...] = ()
    stats: PageStats = PageStats()
    # Share of the sync's span read after this page (0 to 1; 1 on the last page) when the
    # platform can tell, else None. A backfill stores it, never lowered (`domain.sync.runs`).
    progress: float | None = None


class PrivacyAction(StrEnum):
    """What a privacy-law request asks of the shop's data (Shopify's mandatory topics, APPI)."""

    DATA_REQUEST = "data_request"
    REDACT_CUSTOMER = "redact_customer"
    REDACT_SHOP = "redact_shop"


@dataclass(frozen=True, slots=True)
class PrivacyRequest:
    action: PrivacyAction
    customer_external_ids: tuple[str, ...] = ()
    order_external_ids: tuple[str, ...] = ()
    email: str | None = None
    phone: str | None = None
    # The mall's id of the request, kept as proof of what was answered.
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook, parsed: its id for the inbox and what it asks of Kizuki.

    `records` are upserted (older versions never overwrite newer ones); `privacy` is acted on;
    `resync` asks for an incremental sync soon (notifications that carry only ids);
    `uninstalled` says the account removed Kizuki's access (Shopify's `app/uninstalled`), so
    the connection is disconnected as by the `disconnect` mutation. A disconnected connection
    still acts on `privacy` requests and ignores everything else.
    """

    event_id: str
    topic: str
    records: RecordBatch = RecordBatch()
    privacy: PrivacyRequest | None = None
    resync: bool = False
    occurred_at: datetime | None = None
    # Orders the notification names, to be read again now (platforms that are `OrderFetcher`s):
    # a sync's re-scan window may no longer reach them.
    refetch_order_ids: tuple[str, ...] = ()
    uninstalled: bool = False


class WebhookOutcome(StrEnum):
    """What became of a webhook delivery, for platforms that shape their own replies."""

    ACCEPTED = "accepted"
    # Seen before (same event id): not processed again, but answered as a success.
    DUPLICATE = "duplicate"
    # The signature or auth key does not verify: nothing was written.
    UNVERIFIED = "unverified"
    # Verified but unusable: nothing was written.
    UNUSABLE = "unusable"


@dataclass(frozen=True, slots=True)
class WebhookReply:
    """The HTTP answer to a webhook delivery."""

    status: int
    content_type: str
    body: bytes


class PlatformError(Exception):
    """A store platform failed; integrations raise these, never their HTTP library's errors."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, platform: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform


class PlatformUnavailable(PlatformError):
    """Outage, timeout or throttling; `retry_after` seconds when the platform said so."""

    retryable = True

    def __init__(
        self, message: str, *, platform: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, platform=platform)
        self.retry_after = retry_after


class PlatformAuthRevoked(PlatformError):
    """The account's credentials were revoked or expired beyond refresh."""


class PlatformRejected(PlatformError):
    """The platform refused the request, or answered with data that cannot be mapped."""


class StorePlatform(Protocol):
    """One mall: checks credentials, reads pages of records incrementally, understands webhooks.

    Found through the `kizuki.integrations` entry-point group: each entry point names a
    factory `(PlatformDeps) -> StorePlatform` (see `integrations/__init__.py`).
    """

    @property
    def name(self) -> str:
        """The platform's name as stored on connections (`shopify`, or a plugin's own)."""
        ...

    async def check_account(
        self, credentials: Mapping[str, str], base_url: str | None
    ) -> AccountInfo:
        """Whose account the credentials open; raises `PlatformAuthRevoked` when they do not."""
        ...

    def sync_pages(
        self, account: PlatformAccount, cursor: SyncCursor, since: datetime | None
    ) -> AsyncIterator[SyncPage]:
        """Pages of orders, customers and subscriptions changed since the cursor.

        Empty cursor: the whole history the mall allows (backfill). `since`: start from that
        moment instead of the cursor (a manual re-sync). Each page's cursor resumes after it;
        the last page's cursor is the next incremental sync's start. Vendor records that fail
        validation come back in `rejected`, never as exceptions; failures of the mall itself
        raise `PlatformError`s.
        """
        ...

    @property
    def webhook_credential_keys(self) -> frozenset[str]:
        """The credential entries `verify_webhook` reads, and all that a disconnected
        connection keeps: privacy requests (Shopify's `shop/redact`, 48 hours after an
        uninstall) must still verify. Empty: nothing is kept, and webhooks then answer 404."""
        ...

    def verify_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> bool:
        """Whether the raw body was signed by the platform for this account (constant time);
        `account.credentials` may hold only the `webhook_credential_keys` entries."""
        ...

    def parse_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> WebhookEvent:
        """What a verified webhook carries; raises `PlatformRejected` when it is unusable.

        For a disconnected connection `account.credentials` hold only the webhook keys."""
        ...


@runtime_checkable
class WebhookReplies(Protocol):
    """Optional: a platform whose mall expects its own reply format (Rakuten's XML result
    codes). Platforms without it get Kizuki's JSON replies."""

    def webhook_reply(self, outcome: WebhookOutcome) -> WebhookReply:
        """The answer for `outcome`; cheap and free of I/O (the endpoint calls it inline)."""
        ...


@runtime_checkable
class ReconcileWindow(Protocol):
    """Optional: a platform that bounds its daily reconciliation (`domain.sync.schedule`): a
    mall whose re-read is costly (Amazon: one rate-limited getOrderItems call per order), or
    whose own syncs already re-read as far back (Rakuten's trailing re-scan). Platforms without
    it re-read `Settings.sync_reconcile_days`."""

    def reconcile_days(self, configured: int) -> int:
        """Days to re-read once a day given the configured number (> 0); 0: none."""
        ...


def reconcile_days(platform: StorePlatform | None, configured: int) -> int:
    """The days a connection of `platform` re-reads once a day: the configured number, bounded
    by the platform's `ReconcileWindow` (never more than configured); 0: no reconciliation."""
    if configured <= 0 or platform is None:
        return max(configured, 0)
    if isinstance(platform, ReconcileWindow):
        return max(0, min(platform.reconcile_days(configured), configured))
    return configured


@runtime_checkable
class OrderFetcher(Protocol):
    """Optional: a platform that can read given orders by id, so that a notification naming an
    order older than the incremental re-scan window still updates it."""

    async def fetch_orders(self, account: PlatformAccount, external_ids: Sequence[str]) -> SyncPage:
        """The named orders as one page (its cursor is empty and never stored); unknown ids and
        unmappable orders come back in `rejected`; failures of the mall raise `PlatformError`."""
        ...
