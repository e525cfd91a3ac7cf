"""Shopify as a `StorePlatform`: resumable page syncs of orders and subscription contracts.

A sync reads one window of orders by `updated_at` (oldest first, cursor-paged), then every
subscription contract. The cursor after each page resumes exactly after it:

    phase=orders         mid-window: window_start, window_end and `after` (the GraphQL cursor
                         of the same query) repeat the window from where it stopped
    phase=subscriptions  orders done up to `updated_at`; `after` pages the contracts
    phase=idle           done; `updated_at` is the high-water mark: the window's end

The next window starts `overlap` before the high-water mark, because Shopify's search index
lags changes by seconds; re-read orders are harmless since ingest upserts by external id and
never lets an older `updatedAt` overwrite a newer one. Contracts are read whole each time:
skipping a billing cycle does not reliably touch a contract's `updatedAt`, and contracts are
few next to orders. Billing cycles (one `subscriptionBillingCycles` query per contract) are
read for live contracts and for those changed since the window's start.

Without `read_all_orders` Shopify serves only the last 60 days of orders; a backfill then
records `reachable_from` in the cursor instead of failing. Fields withheld for want of
protected-data approval are named in `denied_fields`.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx

from domain.platforms import (
    AccountInfo,
    CustomerRecord,
    OrderRecord,
    PlatformAccount,
    PlatformAuthRevoked,
    RecordBatch,
    RejectedRecord,
    StorePlatform,
    SubscriptionEventRecord,
    SubscriptionRecord,
    SyncCursor,
    SyncPage,
    WebhookEvent,
)
from integrations.shopify import mapping, webhooks, wire
from integrations.shopify.client import AccessDenied, QueryTooCostly, ShopifyClient, ShopState

_T = TypeVar("_T")

DEFAULT_HISTORY = timedelta(days=60)
# Billing cycles read around now: past skips still tell, upcoming skips tell most.
CYCLE_HISTORY = timedelta(days=400)
CYCLE_HORIZON = timedelta(days=180)
# Orders mapped between two turns of the event loop: mapping a whole page at once would hold
# the loop for tens of milliseconds, while the sync waits to send its next statement.
_MAP_TURN = 25
# The credential webhooks are verified with: the app's client secret.
CLIENT_SECRET = "client_secret"
# What the cursor tells about the sync besides where it stands.
_NOTES = ("reachable_from", "denied_fields", "progress_from")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def search_query(start: datetime | None, end: datetime) -> str:
    """Shopify's search syntax for orders updated in [start, end]."""
    upper = f"updated_at:<='{_iso(end)}'"
    return upper if start is None else f"updated_at:>='{_iso(start)}' AND {upper}"


@dataclass(frozen=True, slots=True)
class _Window:
    start: datetime | None
    end: datetime
    after: str | None
    high_water: str
    notes: dict[str, str]


def _lasting(notes: Mapping[str, str]) -> dict[str, str]:
    """Cursor notes that outlive the window they were made in."""
    return {key: value for key, value in notes.items() if key != "progress_from"}


def _progress(origin: datetime | None, reached: datetime | None, end: datetime) -> float | None:
    if origin is None or reached is None or end <= origin:
        return None
    return min(1.0, max(0.0, (reached - origin) / (end - origin)))


async def _orders_page(
    client: ShopifyClient, search: str, first: int, after: str | None
) -> tuple[wire.RawConnection, int]:
    """A page of orders and the page size that was accepted: halved while Shopify finds
    the query too costly."""
    while True:
        try:
            return await client.orders(search, first, after), first
        except QueryTooCostly:
            if first == 1:
                raise
            first = max(1, first // 2)


async def _map_orders(
    nodes: Sequence[wire.JSONObject],
) -> tuple[list[CustomerRecord], list[OrderRecord], list[RejectedRecord], datetime | None]:
    """A page's order nodes as records (test orders left out), its rejections and the newest
    `updatedAt` among its orders."""
    customers: list[CustomerRecord] = []
    orders: list[OrderRecord] = []
    rejected: list[RejectedRecord] = []
    newest: datetime | None = None
    for index, node in enumerate(nodes):
        if index and not index % _MAP_TURN:
            await asyncio.sleep(0)
        mapped = mapping.order_from_node(node)
        if isinstance(mapped, RejectedRecord):
            rejected.append(mapped)
        elif mapped is not None:
            orders.append(mapped.order)
            if mapped.customer is not None:
                customers.append(mapped.customer)
            updated = mapped.order.source_updated_at
            if updated is not None and (newest is None or updated > newest):
                newest = updated
    return customers, orders, rejected, newest


def _forget(future: "asyncio.Future[_T]") -> None:
    """Cancel a read-ahead nobody will await; a failure it already met is not reported."""
    if not future.done():
        future.cancel()
    elif not future.cancelled():
        future.exception()


def _newest_customers(customers: list[CustomerRecord]) -> tuple[CustomerRecord, ...]:
    kept: dict[str, CustomerRecord] = {}
    for customer in customers:
        current = kept.get(customer.external_id)
        if (
            current is None
            or current.source_updated_at is None
            or (
                customer.source_updated_at is not None
                and customer.source_updated_at >= current.source_updated_at
            )
        ):
            kept[customer.external_id] = customer
    return tuple(kept.values())


class ShopifyPlatform:
    """Shopify through the Admin GraphQL API; one cost bucket remembered per shop."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        page_size: int = 250,
        contract_page_size: int = 50,
        overlap: timedelta = timedelta(minutes=10),
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 1.0,
    ) -> None:
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._page_size = page_size
        self._contract_page_size = contract_page_size
        self._overlap = overlap
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff
        self._shops: dict[str, ShopState] = {}

    @property
    def name(self) -> str:
        return mapping.PLATFORM

    @property
    def webhook_credential_keys(self) -> frozenset[str]:
        # Webhooks are signed with the app's client secret; the access token is not needed.
        return frozenset({CLIENT_SECRET})

    def _client(self, credentials: Mapping[str, str], base_url: str | None) -> ShopifyClient:
        token = credentials.get("access_token")
        domain = credentials.get("shop_domain")
        if not token or not (domain or base_url):
            raise PlatformAuthRevoked(
                "Shopify credentials need shop_domain and access_token", platform=self.name
            )
        url = base_url or f"https://{domain}"
        return ShopifyClient(
            self._http,
            base_url=url,
            access_token=token,
            clock=self._clock,
            sleep=self._sleep,
            state=self._shops.setdefault(url, ShopState()),
            timeout=self._timeout,
            max_retries=self._max_retries,
            backoff=self._backoff,
        )

    async def check_account(
        self, credentials: Mapping[str, str], base_url: str | None
    ) -> AccountInfo:
        shop = await self._client(credentials, base_url).shop()
        return AccountInfo(external_account_id=shop.myshopify_domain, name=shop.name)

    async def sync_pages(
        self, account: PlatformAccount, cursor: SyncCursor, since: datetime | None
    ) -> AsyncIterator[SyncPage]:
        client = self._client(account.credentials, account.base_url)
        phase = cursor.get("phase", "idle") if since is None else "idle"
        notes = {key: cursor[key] for key in _NOTES if cursor.get(key)}
        if phase == "subscriptions":
            high_water = cursor.get("updated_at", "")
            after = cursor.get("after")
            since_text = cursor.get("cycles_since")
            async for page in self._contract_pages(
                client, after, high_water, _parse(since_text), _lasting(notes)
            ):
                yield page
            return
        window = await self._window(client, cursor, since, phase, notes)
        last: SyncCursor = {}
        async for page in self._order_pages(client, window):
            last = page.cursor
            yield page
        notes = {key: last[key] for key in _NOTES if last.get(key)}
        high_water = _iso(window.end)
        async for page in self._contract_pages(
            client, None, high_water, window.start, _lasting(notes)
        ):
            yield page

    async def _window(
        self,
        client: ShopifyClient,
        cursor: SyncCursor,
        since: datetime | None,
        phase: str,
        notes: dict[str, str],
    ) -> _Window:
        end = _parse(cursor.get("window_end"))
        if phase == "orders" and end is not None:
            return _Window(
                _parse(cursor.get("window_start")),
                end,
                cursor.get("after") or None,
                cursor.get("updated_at", ""),
                notes,
            )
        now = self._clock()
        high_water = _parse(cursor.get("updated_at"))
        if since is not None:
            start: datetime | None = since
        elif high_water is not None:
            start = high_water - self._overlap
        else:
            start = None
            try:
                scopes = await client.access_scopes()
            except AccessDenied:
                scopes = frozenset()
            if "read_all_orders" not in scopes:
                notes = {**notes, "reachable_from": _iso(now - DEFAULT_HISTORY)}
            else:
                notes = {key: value for key, value in notes.items() if key != "reachable_from"}
        # A new window reports afresh what it could not read; the history limit stays.
        kept = {key: value for key, value in notes.items() if key == "reachable_from"}
        return _Window(start, now, None, cursor.get("updated_at", ""), kept)

    async def _order_pages(self, client: ShopifyClient, window: _Window) -> AsyncIterator[SyncPage]:
        search = search_query(window.start, window.end)
        after = window.after
        first = self._page_size
        # A backfill has no lower bound: progress counts from the oldest order it meets.
        origin = window.start or _parse(window.notes.get("progress_from"))
        # The next page is asked for as soon as this one's cursor is known, so the mall
        # prepares it while this one is mapped; one request is in flight at a time.
        ahead = asyncio.ensure_future(_orders_page(client, search, first, after))
        try:
            while True:
                page, first = await ahead
                after = page.page_info.end_cursor or after
                more = page.page_info.has_next_page
                if more:
                    ahead = asyncio.ensure_future(_orders_page(client, search, first, after))
                customers, orders, rejected, newest = await _map_orders(page.nodes)
                if origin is None and orders:
                    origin = min(order.source_updated_at or window.end for order in orders)
                    window = replace(window, notes={**window.notes, "progress_from": _iso(origin)})
                if client.denied_fields and "denied_fields" not in window.notes:
                    denied = ",".join(sorted(client.denied_fields))
                    window = replace(window, notes={**window.notes, "denied_fields": denied})
                if more:
                    next_cursor: dict[str, str] = {
                        **window.notes,
                        "phase": "orders",
                        "updated_at": window.high_water,
                        "window_start": _iso(window.start) if window.start else "",
                        "window_end": _iso(window.end),
                        "after": after or "",
                    }
                else:
                    next_cursor = {
                        **_lasting(window.notes),
                        "phase": "subscriptions",
                        "updated_at": _iso(window.end),
                        "cycles_since": _iso(window.start) if window.start else "",
                        "after": "",
                    }
                progress = 1.0 if not more else _progress(origin, newest, window.end)
                yield SyncPage(
                    records=RecordBatch(
                        customers=_newest_customers(customers), orders=tuple(orders)
                    ),
                    cursor=next_cursor,
                    rejected=tuple(rejected),
                    stats=client.stats.take(),
                    progress=progress,
                )
                if not more:
                    return
        finally:
            _forget(ahead)

    async def _contract_pages(
        self,
        client: ShopifyClient,
        after: str | None,
        high_water: str,
        cycles_since: datetime | None,
        notes: dict[str, str],
    ) -> AsyncIterator[SyncPage]:
        """Every contract, with the billing cycles of those live or changed since
        `cycles_since` (None: all), around now."""
        done = {**notes, "phase": "idle", "updated_at": high_water}
        now = self._clock()
        between = (now - CYCLE_HISTORY, now + CYCLE_HORIZON)
        while True:
            try:
                page = await client.contracts(
                    self._contract_page_size,
                    after or None,
                    cycles_between=between,
                    cycles_since=cycles_since,
                )
            except AccessDenied:
                # The app may not hold the subscription scopes: orders still sync.
                yield SyncPage(
                    records=RecordBatch(),
                    cursor={**done, "subscriptions": "access_denied"},
                    stats=client.stats.take(),
                    progress=1.0,
                )
                return
            customers: list[CustomerRecord] = []
            subscriptions: list[SubscriptionRecord] = []
            events: list[SubscriptionEventRecord] = []
            rejected: list[RejectedRecord] = []
            for node in page.nodes:
                mapped = mapping.contract_from_node(node)
                if isinstance(mapped, RejectedRecord):
                    rejected.append(mapped)
                    continue
                customers.append(mapped.customer)
                subscriptions.append(mapped.subscription)
                events.extend(mapped.events)
            after = page.page_info.end_cursor or after
            more = page.page_info.has_next_page
            cursor = (
                {
                    **notes,
                    "phase": "subscriptions",
                    "updated_at": high_water,
                    "cycles_since": _iso(cycles_since) if cycles_since else "",
                    "after": after or "",
                }
                if more
                else done
            )
            yield SyncPage(
                records=RecordBatch(
                    customers=_newest_customers(customers),
                    subscriptions=tuple(subscriptions),
                    subscription_events=tuple(events),
                ),
                cursor=cursor,
                rejected=tuple(rejected),
                stats=client.stats.take(),
                progress=None if more else 1.0,
            )
            if not more:
                return

    def verify_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> bool:
        return webhooks.verify(account.credentials.get(CLIENT_SECRET, ""), headers, body)

    def parse_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> WebhookEvent:
        return webhooks.parse(headers, body, received_at=self._clock())


def create_platform(http: httpx.AsyncClient) -> ShopifyPlatform:
    return ShopifyPlatform(http)


_check: type[StorePlatform] = ShopifyPlatform
