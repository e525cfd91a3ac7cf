"""Amazon as a `StorePlatform`: getOrders passes over LastUpdateDate windows, page by page.

A pass asks for orders last updated in a fixed window [after, window_end], where window_end is
at least two minutes (plus a margin for clock skew) before now: Amazon refuses later ends and
shows changes only about two minutes after they happen. Each getOrders page becomes one
`SyncPage`, its orders completed with their items. The cursor says where to go on:

- mid-pass `{"last_updated_after", "window_end", "next_token"}`: the next page of the same
  pass. A resume after a crash continues the same window, so nothing is lost and nothing is
  fetched twice beyond the page being re-read; should Amazon refuse the stored NextToken, the
  same window is read again from its start (ingest is idempotent).
- after a pass `{"last_updated_after": window_end}`: the high-water mark. The next pass starts
  `OVERLAP` before it, since getOrders lists are known to miss freshly changed orders.
- empty: a backfill from `history` ago (2 years by default; JP data starts in 2016).

Pages are yielded only complete: an order whose items cannot be read because Amazon refuses
the call is rejected; an outage raises `PlatformUnavailable` before the page is yielded, so
the page is read again on retry. Amazon's orders carry no customer records of their own:
ingest creates the (marketing-restricted) customers the orders name.
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import JsonValue

from domain.platforms import (
    AccountInfo,
    OrderFetcher,
    OrderRecord,
    PlatformAccount,
    PlatformRejected,
    RecordBatch,
    RejectedRecord,
    StorePlatform,
    SubscriptionEventRecord,
    SubscriptionRecord,
    SyncCursor,
    SyncPage,
    WebhookEvent,
)
from integrations.amazon import mapping, webhooks
from integrations.amazon.client import (
    AmazonClient,
    AmazonCredentials,
    Clock,
    InvalidNextToken,
    Sleep,
)
from integrations.amazon.mapping import PLATFORM

# Amazon shows order changes about two minutes late and refuses windows ending later than
# that; the margin absorbs skew between our clock and Amazon's.
VISIBILITY_LAG = timedelta(minutes=2)
CLOCK_MARGIN = timedelta(seconds=10)
OVERLAP = timedelta(minutes=10)
DEFAULT_HISTORY = timedelta(days=730)
# The daily reconciliation re-reads at most this many days: every listed order costs a
# getOrderItems call at 0.5 a second, and the connection's incremental syncs wait meanwhile
# (a week of 100 orders a day is about 23 minutes). Orders missing from getOrders lists show
# up there within days.
RECONCILE_DAYS = 7
# JP, AU and SG order data goes back to 2016; nothing earlier exists to ask for.
DATA_START = datetime(2016, 1, 1, tzinfo=UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole_seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _read_time(cursor: SyncCursor, key: str) -> datetime:
    try:
        moment = datetime.fromisoformat(cursor[key])
    except (KeyError, ValueError) as exc:
        raise PlatformRejected(f"unreadable Amazon sync cursor {key!r}", platform=PLATFORM) from exc
    if moment.tzinfo is None:
        raise PlatformRejected(f"Amazon sync cursor {key!r} lacks a zone", platform=PLATFORM)
    return moment


@dataclass(frozen=True, slots=True)
class _Pass:
    after: datetime
    window_end: datetime
    next_token: str | None = None

    def cursor(self, next_token: str | None) -> dict[str, str]:
        if next_token is None:
            return {"last_updated_after": _iso(self.window_end)}
        return {
            "last_updated_after": _iso(self.after),
            "window_end": _iso(self.window_end),
            "next_token": next_token,
        }


class AmazonPlatform:
    """SP-API Orders v0 for any number of sellers; one token and rate state per seller."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        clock: Clock = _utc_now,
        sleep: Sleep = asyncio.sleep,
        history: timedelta = DEFAULT_HISTORY,
    ) -> None:
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._history = history
        self._clients: dict[tuple[str, ...], AmazonClient] = {}

    @property
    def name(self) -> str:
        return mapping.PLATFORM

    @property
    def webhook_credential_keys(self) -> frozenset[str]:
        # The relay signs with the notification secret; the LWA tokens are not needed.
        return frozenset({webhooks.SECRET_KEY})

    def reconcile_days(self, configured: int) -> int:
        return min(configured, RECONCILE_DAYS)

    def _client(self, credentials: Mapping[str, str], base_url: str | None) -> AmazonClient:
        parsed = AmazonCredentials.of(credentials)
        # Every field the client authenticates or filters with: a client cached for other
        # values (a reconnect with a wrong secret or another marketplace) must not answer.
        fields = (
            parsed.seller_id,
            parsed.refresh_token,
            parsed.lwa_client_id,
            parsed.lwa_client_secret,
            parsed.marketplace_id,
        )
        digest = hashlib.sha256("\x00".join(fields).encode()).hexdigest()
        key = (base_url or "", parsed.seller_id, digest)
        client = self._clients.get(key)
        if client is None:
            client = AmazonClient(
                self._http, parsed, base_url, clock=self._clock, sleep=self._sleep
            )
            self._clients[key] = client
        return client

    async def check_account(
        self, credentials: Mapping[str, str], base_url: str | None
    ) -> AccountInfo:
        """The seller the refresh token opens, named after its store in the marketplace."""
        client = self._client(credentials, base_url)
        participations = await client.marketplace_participations()
        marketplace = client.credentials.marketplace_id
        for entry in participations:
            if entry.marketplace.id == marketplace and entry.participation.is_participating:
                return AccountInfo(client.credentials.seller_id, entry.store_name)
        raise PlatformRejected(
            f"the seller does not sell in marketplace {marketplace}", platform=PLATFORM
        )

    def _plan(self, cursor: SyncCursor, since: datetime | None) -> _Pass | None:
        window_end = _whole_seconds(self._clock() - VISIBILITY_LAG - CLOCK_MARGIN)
        if since is not None:
            after = _whole_seconds(max(since, DATA_START))
        elif "next_token" in cursor:
            return _Pass(
                _read_time(cursor, "last_updated_after"),
                _read_time(cursor, "window_end"),
                cursor["next_token"],
            )
        elif "last_updated_after" in cursor:
            after = _read_time(cursor, "last_updated_after") - OVERLAP
        else:
            after = _whole_seconds(max(self._clock() - self._history, DATA_START))
        if after >= window_end:
            return None
        return _Pass(after, window_end)

    async def sync_pages(
        self, account: PlatformAccount, cursor: SyncCursor, since: datetime | None
    ) -> AsyncIterator[SyncPage]:
        """One page per getOrders page, its orders with their items; see the module notes."""
        client = self._client(account.credentials, account.base_url)
        plan = self._plan(cursor, since)
        if plan is None:
            # Nothing can be visible yet (a `since` in the last two minutes).
            kept = dict(cursor) if since is None else {"last_updated_after": _iso(since)}
            yield SyncPage(RecordBatch(), kept, stats=client.take_stats(), progress=1.0)
            return
        token = plan.next_token
        restarted = False
        while True:
            if token is None:
                payload = await client.get_orders(
                    updated_after=plan.after, updated_before=plan.window_end
                )
            else:
                try:
                    payload = await client.next_orders(token)
                except InvalidNextToken:
                    # A stored token Amazon no longer honours: read the window again, once.
                    if restarted:
                        raise
                    restarted = True
                    payload = await client.get_orders(
                        updated_after=plan.after, updated_before=plan.window_end
                    )
            records, rejected = await self._complete(client, payload.Orders)
            token = payload.NextToken or None
            yield SyncPage(
                records,
                plan.cursor(token),
                rejected=rejected,
                stats=client.take_stats(),
                progress=None if token else 1.0,
            )
            if token is None:
                return

    async def fetch_orders(self, account: PlatformAccount, external_ids: Sequence[str]) -> SyncPage:
        """The named orders through getOrder, with their items; ids Amazon refuses are rejected."""
        client = self._client(account.credentials, account.base_url)
        raws: list[JsonValue] = []
        refused: list[RejectedRecord] = []
        for order_id in dict.fromkeys(external_ids):
            try:
                raws.append(await client.get_order(order_id))
            except PlatformRejected as exc:
                refused.append(RejectedRecord("order", order_id, f"getOrder: {exc}"))
        records, rejected = await self._complete(client, raws)
        return SyncPage(records, {}, rejected=tuple(refused) + rejected, stats=client.take_stats())

    async def _complete(
        self, client: AmazonClient, raws: Sequence[JsonValue]
    ) -> tuple[RecordBatch, tuple[RejectedRecord, ...]]:
        orders: list[OrderRecord] = []
        subscriptions: list[SubscriptionRecord] = []
        events: list[SubscriptionEventRecord] = []
        rejected: list[RejectedRecord] = []
        for raw in raws:
            order = mapping.parse_order(raw)
            if isinstance(order, RejectedRecord):
                rejected.append(order)
                continue
            if not mapping.needs_mapping(order):
                continue
            order_id = order.AmazonOrderId
            try:
                raw_items = await client.get_order_items(order_id)
            except PlatformRejected as exc:
                rejected.append(RejectedRecord("order", order_id, f"getOrderItems: {exc}"))
                continue
            items = mapping.parse_items(raw_items)
            if isinstance(items, str):
                rejected.append(RejectedRecord("order", order_id, items))
                continue
            try:
                mapped = mapping.map_order(order, items)
            except mapping.Unmappable as exc:
                rejected.append(RejectedRecord("order", order_id, str(exc)))
                continue
            orders.append(mapped.order)
            subscriptions.extend(mapped.subscriptions)
            events.extend(mapped.subscription_events)
        batch = RecordBatch(
            orders=tuple(orders),
            subscriptions=tuple(subscriptions),
            subscription_events=tuple(events),
        )
        return batch, tuple(rejected)

    def verify_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> bool:
        return webhooks.verify_webhook(account, headers, body)

    def parse_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> WebhookEvent:
        return webhooks.parse_webhook(account, headers, body)


def create_platform(http: httpx.AsyncClient) -> AmazonPlatform:
    """The entry point: Amazon on the shared HTTP client, the real clock."""
    return AmazonPlatform(http)


def _conforms(platform: AmazonPlatform) -> StorePlatform:
    # mypy checks here that AmazonPlatform implements the Protocol.
    return platform


def _fetches(platform: AmazonPlatform) -> OrderFetcher:
    return platform
