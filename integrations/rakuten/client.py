"""HTTP client of the RakutenPay Order API: ESA auth, searchOrder/getOrder, pacing, retries.

Rakuten publishes no numeric rate limit; overload answers 503 (some gateways 429). The client
paces its own requests (`min_interval`, 1 s by default, what RMS tools practise), backs off on
429/503/5xx and timeouts, and gives up with `PlatformUnavailable` after `max_attempts`.
searchOrder returns at most `result_cap` (15,000) order numbers per search: `fit_window`
halves a window until its total is under the cap, so nothing beyond the cap is ever lost.
"""

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import ValidationError

from domain.platforms import (
    PageStats,
    PlatformAuthRevoked,
    PlatformRejected,
    PlatformUnavailable,
)
from integrations.rakuten.wire import (
    GetOrderResult,
    InvalidOrder,
    MessageModel,
    OrderModel,
    SearchOrderResponse,
    get_order_body,
    parse_gateway_error,
    parse_get_order,
    parse_search_order,
    search_order_body,
)

PLATFORM = "rakuten"
API_BASE_URL = "https://api.rms.rakuten.co.jp"
SEARCH_ORDER_PATH = "/es/2.0/order/searchOrder/"
GET_ORDER_PATH = "/es/2.0/order/getOrder/"
# The latest getOrder version malls.md lists (10: ソーシャルギフト); required since 2021-04.
GET_ORDER_VERSION = 10
# searchOrder limits: end within 63 days of start, start within the past 730 days.
MAX_WINDOW = timedelta(days=63)
LOOKBACK = timedelta(days=730)
# Kept between "730 days ago" and the oldest start we ask for. A clock a little ahead of
# Rakuten's must not push the start out of range, and the oldest window's pages must not
# shift while they are read (orders ageing out of reach would move later ones to earlier
# pages): reading one window takes minutes, so an hour of the oldest day is given up.
LOOKBACK_MARGIN = timedelta(hours=1)
PAGE_SIZE = 1000
GET_ORDER_BATCH = 100
RESULT_CAP = 15_000
ORDER_DATE = 1  # dateType 1: 注文日

LICENSE_RENEWAL_MESSAGE = (
    "Rakuten refused the credentials (ES01-01 Un-Authorised): the service secret or license "
    "key is wrong, or the license key has expired (RMS license keys last 90 days). Issue a "
    "new license key in RMS "
    "(店舗様向け情報・サービス > WEB APIサービス) and update this connection; a new key can take "
    "15-30 minutes to become active."
)
FUNCTION_DISABLED_MESSAGE = (
    "Rakuten refused the request (ES04-01): the RakutenPay Order API functions "
    "(rpay.order.searchOrder, rpay.order.getOrder) are not enabled for this license key, or "
    "the key is not active yet. Enable them in RMS and try again."
)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RakutenCredentials:
    service_secret: str
    license_key: str
    shop_url: str

    @classmethod
    def from_mapping(cls, credentials: Mapping[str, str]) -> "RakutenCredentials":
        missing = [
            key
            for key in ("service_secret", "license_key", "shop_url")
            if not credentials.get(key, "").strip()
        ]
        if missing:
            raise PlatformAuthRevoked(
                f"the Rakuten connection lacks {', '.join(missing)}", platform=PLATFORM
            )
        return cls(
            credentials["service_secret"].strip(),
            credentials["license_key"].strip(),
            credentials["shop_url"].strip(),
        )

    def authorization(self) -> str:
        token = base64.b64encode(f"{self.service_secret}:{self.license_key}".encode()).decode()
        return f"ESA {token}"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    min_interval: float = 1.0
    max_attempts: int = 5
    backoff_base: float = 2.0
    backoff_cap: float = 60.0
    timeout: float = 30.0
    result_cap: int = RESULT_CAP
    page_size: int = PAGE_SIZE


DEFAULT_CLIENT_SETTINGS = ClientSettings()


@dataclass(frozen=True, slots=True)
class SearchPage:
    order_numbers: tuple[str, ...]
    total: int
    total_pages: int
    page: int


class Pacer:
    """When the last request of one license key went out; shared by that key's clients."""

    def __init__(self) -> None:
        self.last_sent: datetime | None = None
        self.lock = asyncio.Lock()


class _Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.throttle_waits = 0
        self.throttle_wait_seconds = 0.0

    def take(self) -> PageStats:
        stats = PageStats(self.requests, self.throttle_waits, self.throttle_wait_seconds)
        self.requests = 0
        self.throttle_waits = 0
        self.throttle_wait_seconds = 0.0
        return stats


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _messages(body: bytes) -> str:
    try:
        parsed = parse_search_order(body)
    except (ValidationError, ValueError):
        return body[:200].decode(errors="replace")
    return "; ".join(
        f"{message.message_code} {message.message}".strip()
        for message in parsed.message_model_list
        if message.message_type.upper() == "ERROR"
    )


class RakutenClient:
    """One connected shop's RMS API; holds the pacing state and the request tallies."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        credentials: RakutenCredentials,
        *,
        base_url: str | None = None,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
        settings: ClientSettings = DEFAULT_CLIENT_SETTINGS,
        pacer: Pacer | None = None,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._base_url = (base_url or API_BASE_URL).rstrip("/")
        self._clock = clock
        self._sleep = sleep
        self.settings = settings
        self._pacer = pacer or Pacer()
        self._stats = _Stats()

    def take_stats(self) -> PageStats:
        """Requests and throttle waits since the last call."""
        return self._stats.take()

    def earliest_start(self) -> datetime:
        """The oldest search start Rakuten accepts now (730 days back, with a margin)."""
        return (self._clock() - LOOKBACK + LOOKBACK_MARGIN).replace(microsecond=0)

    async def search_page(
        self, start: datetime, end: datetime, page: int, *, per_page: int | None = None
    ) -> SearchPage:
        """One page of order numbers placed in [start, end] (seconds, inclusive), oldest first."""
        start = max(start, self.earliest_start())
        if end < start:
            return SearchPage((), 0, 0, page)
        if end - start > MAX_WINDOW:
            raise ValueError(f"search window {start}..{end} is longer than 63 days")
        body = search_order_body(
            date_type=ORDER_DATE,
            start=start,
            end=end,
            page=page,
            per_page=per_page or self.settings.page_size,
        )
        response = await self._post(SEARCH_ORDER_PATH, body)
        try:
            parsed: SearchOrderResponse = parse_search_order(response.content)
        except (ValidationError, ValueError) as exc:
            raise PlatformRejected(
                f"searchOrder answered something else than a search result: {exc}",
                platform=PLATFORM,
            ) from exc
        pagination = parsed.pagination
        total = (pagination.total_records_amount if pagination else None) or 0
        pages = (pagination.total_pages if pagination else None) or 0
        return SearchPage(tuple(parsed.order_number_list or ()), total, pages, page)

    async def fit_window(self, start: datetime, end: datetime) -> tuple[datetime, SearchPage]:
        """The largest end ≤ `end` (halving) whose search stays under the cap, and its page 1."""
        while True:
            first = await self.search_page(start, end, 1)
            if first.total < self.settings.result_cap:
                return end, first
            span = int((end - start).total_seconds())
            if span < 1:
                raise PlatformRejected(
                    f"{first.total} orders placed at {start.isoformat()}: searchOrder cannot "
                    f"return more than {self.settings.result_cap} from one second",
                    platform=PLATFORM,
                )
            end = start + timedelta(seconds=span // 2)

    async def get_orders(self, order_numbers: Sequence[str]) -> GetOrderResult:
        """The orders, fetched 100 at a time; invalid ones come back described, not raised."""
        orders: list[OrderModel] = []
        invalid: list[InvalidOrder] = []
        messages: list[MessageModel] = []
        for offset in range(0, len(order_numbers), GET_ORDER_BATCH):
            chunk = order_numbers[offset : offset + GET_ORDER_BATCH]
            response = await self._post(GET_ORDER_PATH, get_order_body(chunk, GET_ORDER_VERSION))
            try:
                result = parse_get_order(response.content)
            except (ValidationError, ValueError) as exc:
                raise PlatformRejected(
                    f"getOrder answered something else than orders: {exc}", platform=PLATFORM
                ) from exc
            orders.extend(result.orders)
            invalid.extend(result.invalid)
            messages.extend(result.messages)
        return GetOrderResult(tuple(orders), tuple(invalid), tuple(messages))

    async def _pace(self) -> None:
        pacer = self._pacer
        async with pacer.lock:
            if pacer.last_sent is not None:
                gap = timedelta(seconds=self.settings.min_interval)
                wait = (pacer.last_sent + gap - self._clock()).total_seconds()
                if wait > 0:
                    await self._wait(wait, throttled=True)
            pacer.last_sent = self._clock()

    async def _wait(self, seconds: float, *, throttled: bool) -> None:
        if throttled:
            self._stats.throttle_waits += 1
            self._stats.throttle_wait_seconds += seconds
        await self._sleep(seconds)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.settings.backoff_cap)
        return min(self.settings.backoff_base * 2.0 ** (attempt - 1), self.settings.backoff_cap)

    async def _post(self, path: str, body: bytes) -> httpx.Response:
        headers = {
            "Authorization": self._credentials.authorization(),
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
        }
        problem = ""
        retry_after: float | None = None
        for attempt in range(1, self.settings.max_attempts + 1):
            if attempt > 1:
                throttled = problem.startswith(("HTTP 429", "HTTP 503"))
                await self._wait(self._backoff(attempt - 1, retry_after), throttled=throttled)
            await self._pace()
            self._stats.requests += 1
            try:
                response = await self._http.post(
                    f"{self._base_url}{path}",
                    content=body,
                    headers=headers,
                    timeout=self.settings.timeout,
                )
            except httpx.TimeoutException:
                problem, retry_after = "timed out", None
                continue
            except httpx.TransportError as exc:
                problem, retry_after = f"connection failed ({type(exc).__name__})", None
                continue
            if response.status_code == 200:
                return response
            if response.status_code in (429, 503) or response.status_code >= 500:
                problem = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
                continue
            raise self._refused(path, response)
        raise PlatformUnavailable(
            f"Rakuten {path} failed {self.settings.max_attempts} times, last: {problem}",
            platform=PLATFORM,
            retry_after=retry_after,
        )

    def _refused(self, path: str, response: httpx.Response) -> Exception:
        gateway = parse_gateway_error(response.content)
        code = gateway.results.error_code if gateway else ""
        if code == "ES01-01" or response.status_code == 401:
            return PlatformAuthRevoked(LICENSE_RENEWAL_MESSAGE, platform=PLATFORM)
        if code == "ES04-01" or response.status_code == 403:
            return PlatformAuthRevoked(FUNCTION_DISABLED_MESSAGE, platform=PLATFORM)
        detail = f"{code} {gateway.results.message}" if gateway else _messages(response.content)
        return PlatformRejected(
            f"Rakuten {path} refused the request (HTTP {response.status_code}): {detail}",
            platform=PLATFORM,
        )
