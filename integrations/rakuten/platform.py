"""Rakuten Ichiba (RMS) as a `StorePlatform`: order-date sweeps, resumable after any page.

Rakuten cannot list orders "updated since": searchOrder only filters by dates such as the order
date. So every sync is a *sweep* over order dates, oldest first, window by window (≤ 63 days,
split further until a window holds fewer than 15,000 orders), one `SyncPage` per search page
(≤ 1,000 orders, read with getOrder 100 at a time):

- empty cursor (backfill): from 730 days ago (as far as Rakuten allows) to now;
- after a finished sweep: from `min(high water - overlap, now - trailing)` to now, so orders
  placed since the last sync arrive and orders of the trailing window (30 days by default) are
  read again, which is how later cancellations and edits are caught;
- `since`: from that moment to now, or from where an unfinished sweep (or a backfill not
  yet started) stands if that is earlier: a manual re-sync never drops history still owed.

The cursor after a page names the order time to resume from (the newest order of the page,
inclusive) and the current window's end. A sync interrupted after any page resumes there:
orders placed before it were all emitted; the few placed at that very second are read again,
which ingest absorbs (upserts keyed by order number). Cursor keys, all strings:
`high_water` (end of the last finished sweep), and while a sweep runs `origin`, `target`,
`position`, optionally `window_end`, and `backfill`.
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from domain.platforms import (
    AccountInfo,
    OrderFetcher,
    PlatformAccount,
    PlatformRejected,
    RecordBatch,
    RejectedRecord,
    StorePlatform,
    SyncCursor,
    SyncPage,
    WebhookEvent,
    WebhookOutcome,
    WebhookReplies,
    WebhookReply,
)
from integrations.rakuten.client import (
    DEFAULT_CLIENT_SETTINGS,
    MAX_WINDOW,
    PLATFORM,
    ClientSettings,
    Clock,
    Pacer,
    RakutenClient,
    RakutenCredentials,
    SearchPage,
    Sleep,
    utc_now,
)
from integrations.rakuten.mapping import map_page
from integrations.rakuten.webhooks import (
    AUTH_KEY_CREDENTIAL,
    notification_reply,
    parse_notification,
    verify_notification,
)

SECOND = timedelta(seconds=1)
CURSOR_VERSION = "1"


@dataclass(frozen=True, slots=True)
class SyncSettings:
    # Orders placed this far back are read again by every incremental sync.
    trailing: timedelta = timedelta(days=30)
    # Read again before the last high-water mark, for orders Rakuten indexes late.
    overlap: timedelta = timedelta(hours=1)


DEFAULT_SYNC_SETTINGS = SyncSettings()


@dataclass(frozen=True, slots=True)
class _Sweep:
    origin: datetime
    target: datetime
    position: datetime
    window_end: datetime | None
    backfill: bool

    def cursor(self) -> dict[str, str]:
        cursor = {
            "v": CURSOR_VERSION,
            "origin": self.origin.isoformat(),
            "target": self.target.isoformat(),
            "position": self.position.isoformat(),
        }
        if self.window_end is not None:
            cursor["window_end"] = self.window_end.isoformat()
        if self.backfill:
            cursor["backfill"] = "1"
        return cursor

    def progress(self) -> float:
        total = (self.target - self.origin).total_seconds()
        if total <= 0:
            return 1.0
        done = (self.position - self.origin).total_seconds()
        return min(max(done / total, 0.0), 1.0)


def _time(cursor: SyncCursor, key: str) -> datetime:
    try:
        value = datetime.fromisoformat(cursor[key])
    except (KeyError, ValueError) as exc:
        raise PlatformRejected(
            f"unreadable Rakuten sync cursor ({key}): {dict(cursor)!r}", platform=PLATFORM
        ) from exc
    if value.tzinfo is None:
        raise PlatformRejected(f"Rakuten sync cursor {key} has no offset", platform=PLATFORM)
    return value


def finished_cursor(high_water: datetime) -> dict[str, str]:
    """The cursor after a finished sweep: the next sync re-scans back from here."""
    return {"v": CURSOR_VERSION, "high_water": high_water.isoformat()}


class RakutenPlatform:
    """The RakutenPay Order API of connected shops, with a clock and sleep tests control."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        client_settings: ClientSettings = DEFAULT_CLIENT_SETTINGS,
        sync_settings: SyncSettings = DEFAULT_SYNC_SETTINGS,
    ) -> None:
        self._http = http
        self._clock = clock
        self._sleep = sleep
        self._client_settings = client_settings
        self._sync_settings = sync_settings
        # One pace per license key across syncs and account checks in this process.
        self._pacers: dict[str, Pacer] = {}

    @property
    def name(self) -> str:
        return PLATFORM

    @property
    def webhook_credential_keys(self) -> frozenset[str]:
        # Notifications carry the shop's auth key; the license and service keys are not needed.
        return frozenset({AUTH_KEY_CREDENTIAL})

    def reconcile_days(self, configured: int) -> int:
        # Every sync already re-reads the trailing window: only a longer one adds anything.
        return configured if timedelta(days=configured) > self._sync_settings.trailing else 0

    def client(self, credentials: Mapping[str, str], base_url: str | None) -> RakutenClient:
        parsed = RakutenCredentials.from_mapping(credentials)
        key = hashlib.sha256(f"{base_url}|{parsed.authorization()}".encode()).hexdigest()
        return RakutenClient(
            self._http,
            parsed,
            base_url=base_url,
            clock=self._clock,
            sleep=self._sleep,
            settings=self._client_settings,
            pacer=self._pacers.setdefault(key, Pacer()),
        )

    async def check_account(
        self, credentials: Mapping[str, str], base_url: str | None
    ) -> AccountInfo:
        """A one-day searchOrder: cheap, authenticated, and needs the function sync needs."""
        client = self.client(credentials, base_url)
        now = self._clock().replace(microsecond=0)
        await client.search_page(now - timedelta(days=1), now, 1, per_page=1)
        shop_url = credentials["shop_url"].strip()
        return AccountInfo(external_account_id=shop_url, name=shop_url)

    def _plan(self, cursor: SyncCursor, since: datetime | None, earliest: datetime) -> _Sweep:
        now = self._clock().replace(microsecond=0)
        if since is not None:
            # `since` adds to what is owed, never drops it: an unfinished backfill or sweep
            # that started earlier still starts there.
            origin, backfill = since.replace(microsecond=0), False
            if not cursor or "position" in cursor:
                pending = _time(cursor, "position") if cursor else earliest
                if pending < origin:
                    origin, backfill = pending, not cursor or cursor.get("backfill") == "1"
            origin = max(origin, earliest)
            return _Sweep(origin, now, origin, None, backfill=backfill)
        if "position" in cursor:
            window_end = _time(cursor, "window_end") if "window_end" in cursor else None
            return _Sweep(
                _time(cursor, "origin"),
                _time(cursor, "target"),
                _time(cursor, "position"),
                window_end,
                backfill=cursor.get("backfill") == "1",
            )
        if "high_water" in cursor:
            settings = self._sync_settings
            origin = min(_time(cursor, "high_water") - settings.overlap, now - settings.trailing)
            origin = max(origin, earliest)
            return _Sweep(origin, now, origin, None, backfill=False)
        return _Sweep(earliest, now, earliest, None, backfill=True)

    async def sync_pages(
        self, account: PlatformAccount, cursor: SyncCursor, since: datetime | None
    ) -> AsyncIterator[SyncPage]:
        """Pages of one sweep over order dates (module docstring); the last ends the sweep."""
        client = self.client(account.credentials, account.base_url)
        sweep = self._plan(cursor, since, client.earliest_start())
        span = MAX_WINDOW
        while sweep.position <= sweep.target:
            start = max(sweep.position, client.earliest_start())
            limit = sweep.window_end or min(start + span - SECOND, sweep.target)
            end, page = await client.fit_window(start, limit)
            # Busy shops: start the next window at the size that fitted, growing it back.
            span = min(MAX_WINDOW, (end - start + SECOND) * 2) if end < limit else MAX_WINDOW
            while True:
                last = page.page >= page.total_pages or not page.order_numbers
                records, rejected, newest = await self._read(client, page)
                if last:
                    sweep = _Sweep(sweep.origin, sweep.target, end + SECOND, None, sweep.backfill)
                else:
                    resume = max(sweep.position, newest or sweep.position)
                    sweep = _Sweep(sweep.origin, sweep.target, resume, end, sweep.backfill)
                done = sweep.position > sweep.target
                yield SyncPage(
                    records=records,
                    cursor=finished_cursor(sweep.target) if done else sweep.cursor(),
                    rejected=rejected,
                    stats=client.take_stats(),
                    progress=1.0 if done else sweep.progress(),
                )
                if last:
                    break
                page = await client.search_page(start, end, page.page + 1)

    async def _read(
        self, client: RakutenClient, page: SearchPage
    ) -> tuple[RecordBatch, tuple[RejectedRecord, ...], datetime | None]:
        numbers = list(dict.fromkeys(page.order_numbers))
        result = await client.get_orders(numbers) if numbers else None
        if result is None:
            return RecordBatch(), (), None
        records, rejected = map_page(result.orders, result.invalid)
        seen = {order.order_number for order in result.orders}
        seen.update(bad.order_number for bad in result.invalid if bad.order_number)
        missing = tuple(
            RejectedRecord(
                "order",
                number,
                "orderNumber: getOrder did not return it",
            )
            for number in numbers
            if number not in seen
        )
        newest = max(
            (order.order_datetime.astimezone(UTC) for order in result.orders), default=None
        )
        return records, rejected + missing, newest

    async def fetch_orders(self, account: PlatformAccount, external_ids: Sequence[str]) -> SyncPage:
        """The named orders through getOrder (100 a call); numbers it lacks are rejected."""
        client = self.client(account.credentials, account.base_url)
        numbers = tuple(dict.fromkeys(external_ids))
        records, rejected, _ = await self._read(client, SearchPage(numbers, len(numbers), 1, 1))
        return SyncPage(records, {}, rejected=rejected, stats=client.take_stats())

    def webhook_reply(self, outcome: WebhookOutcome) -> WebhookReply:
        return notification_reply(outcome)

    def verify_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> bool:
        return verify_notification(account, body)

    def parse_webhook(
        self, account: PlatformAccount, headers: Mapping[str, str], body: bytes
    ) -> WebhookEvent:
        return parse_notification(account, body)


def create_platform(http: httpx.AsyncClient) -> RakutenPlatform:
    return RakutenPlatform(http)


# mypy holds RakutenPlatform to the Protocols here, not only where plugins are discovered.
_CONFORMS: Callable[[httpx.AsyncClient], StorePlatform] = create_platform
_FETCHES: Callable[[httpx.AsyncClient], OrderFetcher] = create_platform
_REPLIES: Callable[[httpx.AsyncClient], WebhookReplies] = create_platform
