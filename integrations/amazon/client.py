"""SP-API over HTTP: LWA tokens, per-operation token buckets, retries, NextToken paging.

- LWA: a refresh-token grant buys an access token (3600 s); it is reused until a minute before
  it expires. `invalid_grant` and friends mean the seller revoked the app: `PlatformAuthRevoked`.
- A 403 (expired or invalid access token) buys one new token and retries once; a second 403
  is `PlatformAuthRevoked` (the token is fresh, so the grant itself no longer works).
- Rate limits are token buckets per operation, as Amazon keeps them (malls.md 3.3). A request
  waits until its bucket holds a token; `x-amzn-RateLimit-Limit` on a 2xx replaces the
  documented rate. A 429 empties the bucket, so the retry waits one full refill interval and
  never arrives before Amazon's bucket can have a token again; 429s in a row double the wait.
- 5xx and transport failures (timeouts, resets) are retried with bounded exponential backoff,
  then raise `PlatformUnavailable`. Other 4xx answers raise `PlatformRejected`.

Time comes from an injected clock and waits go through an injected sleep, so tests run the
rate limits on a controlled clock. `take_stats()` hands over what the calls since the last
call cost (requests sent, throttle waits).
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import quote

import httpx
from pydantic import JsonValue, ValidationError

from domain.platforms import (
    PageStats,
    Platform,
    PlatformAuthRevoked,
    PlatformRejected,
    PlatformUnavailable,
)
from integrations.amazon import wire

# Far East region (JP); `base_url` of an account replaces it and the LWA host together.
SP_API_ENDPOINT = "https://sellingpartnerapi-fe.amazon.com"
LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
JP_MARKETPLACE_ID = "A1VC38T7YXB528"

# An access token is renewed this long before Amazon says it expires.
TOKEN_REFRESH_MARGIN = timedelta(seconds=60)
# 5xx and transport failures: retries after the first attempt, and their backoff.
MAX_RETRIES = 3
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0
# Waiting out 429s for one request stops here: the sync gives up for now (PlatformUnavailable
# with retry_after) rather than hold a worker for an hour.
THROTTLE_BUDGET_SECONDS = 900.0
ORDERS_PAGE_SIZE = 100

# LWA error codes that mean the grant or the app's credentials no longer work.
_REVOKED_GRANT = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"}
)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


class Operation(StrEnum):
    GET_ORDERS = "getOrders"
    GET_ORDER = "getOrder"
    GET_ORDER_ITEMS = "getOrderItems"
    GET_MARKETPLACE_PARTICIPATIONS = "getMarketplaceParticipations"


# (rate per second, burst) per operation: malls.md 3.3; participations from the Sellers API
# usage plan.
RATE_LIMITS: Mapping[Operation, tuple[float, int]] = {
    Operation.GET_ORDERS: (0.0167, 20),
    Operation.GET_ORDER: (0.5, 30),
    Operation.GET_ORDER_ITEMS: (0.5, 30),
    Operation.GET_MARKETPLACE_PARTICIPATIONS: (0.016, 15),
}


class InvalidNextToken(PlatformRejected):
    """Amazon refused a NextToken (expired or undecodable): restart the pass's window."""


@dataclass(frozen=True, slots=True)
class AmazonCredentials:
    seller_id: str
    refresh_token: str
    lwa_client_id: str
    lwa_client_secret: str
    marketplace_id: str = JP_MARKETPLACE_ID

    @classmethod
    def of(cls, credentials: Mapping[str, str]) -> "AmazonCredentials":
        """The stored credentials; missing keys make the connection unusable."""
        keys = ("seller_id", "refresh_token", "lwa_client_id", "lwa_client_secret")
        missing = [key for key in keys if not credentials.get(key)]
        if missing:
            raise PlatformAuthRevoked(
                f"credentials lack {', '.join(missing)}", platform=Platform.AMAZON
            )
        return cls(
            seller_id=credentials["seller_id"],
            refresh_token=credentials["refresh_token"],
            lwa_client_id=credentials["lwa_client_id"],
            lwa_client_secret=credentials["lwa_client_secret"],
            marketplace_id=credentials.get("marketplace_id") or JP_MARKETPLACE_ID,
        )


@dataclass(slots=True)
class TokenBucket:
    """Amazon's limiter as the client mirrors it: `rate` tokens a second, at most `burst`."""

    rate: float
    burst: float
    tokens: float
    updated_at: float | None = None

    def _refill(self, now: float) -> None:
        if self.updated_at is not None and now > self.updated_at:
            self.tokens = min(self.burst, self.tokens + (now - self.updated_at) * self.rate)
        if self.updated_at is None or now > self.updated_at:
            self.updated_at = now

    def delay(self, now: float) -> float:
        """Seconds until a token is available (0 when one is)."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0

    def empty(self, now: float, intervals: float = 1.0) -> None:
        """Amazon's bucket had no token: wait `intervals` refill intervals from now."""
        self._refill(now)
        self.tokens = 1.0 - intervals

    def observe_rate(self, header: str | None) -> None:
        if header is None:
            return
        try:
            rate = float(header)
        except ValueError:
            return
        if rate > 0 and rate == rate and rate != float("inf"):
            self.rate = rate


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class AmazonClient:
    """One seller's SP-API session: its access token, its rate buckets, its counters."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        credentials: AmazonCredentials,
        base_url: str | None,
        *,
        clock: Clock,
        sleep: Sleep,
    ) -> None:
        self._http = http
        self.credentials = credentials
        root = base_url.rstrip("/") if base_url else None
        self._endpoint = root or SP_API_ENDPOINT
        self._token_url = f"{root}/auth/o2/token" if root else LWA_TOKEN_URL
        self._clock = clock
        self._sleep = sleep
        self._buckets = {
            operation: TokenBucket(rate, burst, float(burst))
            for operation, (rate, burst) in RATE_LIMITS.items()
        }
        self._token: str | None = None
        self._token_expires_at: datetime | None = None
        self._requests = 0
        self._waits = 0
        self._wait_seconds = 0.0

    def take_stats(self) -> PageStats:
        """What the calls since the last `take_stats` cost; resets the counters."""
        stats = PageStats(self._requests, self._waits, self._wait_seconds)
        self._requests, self._waits, self._wait_seconds = 0, 0, 0.0
        return stats

    # -- LWA ------------------------------------------------------------------------------

    async def _access_token(self) -> str:
        now = self._clock()
        if (
            self._token is not None
            and self._token_expires_at is not None
            and now < self._token_expires_at
        ):
            return self._token
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.credentials.refresh_token,
            "client_id": self.credentials.lwa_client_id,
            "client_secret": self.credentials.lwa_client_secret,
        }
        failures = 0
        while True:
            try:
                self._requests += 1
                response = await self._http.post(self._token_url, data=form)
            except httpx.TransportError as exc:
                failures = await self._back_off(failures, f"LWA token exchange: {exc!r}")
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise PlatformRejected(
                    f"LWA token exchange failed: {exc!r}", platform=Platform.AMAZON
                ) from exc
            if response.status_code >= 500 or response.status_code == 429:
                failures = await self._back_off(
                    failures, f"LWA token exchange answered {response.status_code}"
                )
                continue
            break
        if response.status_code != 200:
            try:
                error = wire.LwaError.model_validate_json(response.content)
            except ValidationError:
                error = wire.LwaError(error=f"http_{response.status_code}")
            message = f"LWA refused the refresh token: {error.error} {error.error_description}"
            if error.error in _REVOKED_GRANT or response.status_code == 401:
                raise PlatformAuthRevoked(message.strip(), platform=Platform.AMAZON)
            raise PlatformRejected(message.strip(), platform=Platform.AMAZON)
        try:
            token = wire.LwaToken.model_validate_json(response.content)
        except ValidationError as exc:
            raise PlatformRejected(
                f"LWA token answer unusable: {wire.field_problem(exc)}", platform=Platform.AMAZON
            ) from exc
        lifetime = timedelta(seconds=token.expires_in)
        margin = min(TOKEN_REFRESH_MARGIN, lifetime / 2)
        self._token = token.access_token
        self._token_expires_at = self._clock() + lifetime - margin
        return token.access_token

    def _forget_token(self) -> None:
        self._token = None
        self._token_expires_at = None

    # -- one SP-API call ------------------------------------------------------------------

    async def _back_off(self, failures: int, problem: str) -> int:
        failures += 1
        if failures > MAX_RETRIES:
            raise PlatformUnavailable(
                f"{problem} (after {MAX_RETRIES} retries)", platform=Platform.AMAZON
            )
        await self._sleep(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failures - 1)))
        return failures

    async def _acquire(self, bucket: TokenBucket) -> None:
        delay = bucket.delay(self._clock().timestamp())
        if delay > 0:
            self._waits += 1
            self._wait_seconds += delay
            await self._sleep(delay)
        bucket.take(self._clock().timestamp())

    async def _get(
        self, operation: Operation, path: str, params: Sequence[tuple[str, str]]
    ) -> bytes:
        bucket = self._buckets[operation]
        failures = throttled = 0
        throttled_seconds = 0.0
        refreshed = False
        while True:
            await self._acquire(bucket)
            # After the wait: a token fetched before a minute-long wait could expire meanwhile.
            token = await self._access_token()
            try:
                self._requests += 1
                response = await self._http.get(
                    f"{self._endpoint}{path}",
                    params=list(params),
                    headers={"x-amz-access-token": token, "accept": "application/json"},
                )
            except httpx.TransportError as exc:
                failures = await self._back_off(failures, f"{operation}: {exc!r}")
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise PlatformRejected(
                    f"{operation} failed: {exc!r}", platform=Platform.AMAZON
                ) from exc
            status = response.status_code
            if status == 200:
                bucket.observe_rate(response.headers.get("x-amzn-RateLimit-Limit"))
                return response.content
            if status == 429:
                throttled += 1
                # 429 answers carry no rate: when one full interval was not enough, the rate
                # applied is lower than the one believed, so each retry waits twice as long.
                intervals = 2.0 ** (throttled - 1)
                throttled_seconds += intervals / bucket.rate
                if throttled_seconds > THROTTLE_BUDGET_SECONDS:
                    raise PlatformUnavailable(
                        f"{operation} throttled {throttled} times in a row",
                        platform=Platform.AMAZON,
                        retry_after=intervals / bucket.rate,
                    )
                bucket.empty(self._clock().timestamp(), intervals)
                continue
            if status in (401, 403):
                if refreshed:
                    raise PlatformAuthRevoked(
                        f"{operation} refused a fresh access token: {_error_text(response)}",
                        platform=Platform.AMAZON,
                    )
                refreshed = True
                self._forget_token()
                continue
            if status >= 500:
                failures = await self._back_off(failures, f"{operation} answered {status}")
                continue
            paging = status == 400 and any(name == "NextToken" for name, _ in params)
            raise (InvalidNextToken if paging else PlatformRejected)(
                f"{operation} answered {status}: {_error_text(response)}",
                platform=Platform.AMAZON,
            )

    # -- operations -----------------------------------------------------------------------

    async def get_orders(
        self, *, updated_after: datetime, updated_before: datetime
    ) -> wire.OrdersPayload:
        """The first page of orders last updated in [after, before] (UTC, whole seconds)."""
        params = [
            ("MarketplaceIds", self.credentials.marketplace_id),
            ("LastUpdatedAfter", _iso(updated_after)),
            ("LastUpdatedBefore", _iso(updated_before)),
            ("MaxResultsPerPage", str(ORDERS_PAGE_SIZE)),
        ]
        return await self._orders_page(params)

    async def next_orders(self, next_token: str) -> wire.OrdersPayload:
        """The page after `next_token`; the token carries the query, so no filters go along."""
        params = [("MarketplaceIds", self.credentials.marketplace_id), ("NextToken", next_token)]
        return await self._orders_page(params)

    async def _orders_page(self, params: Sequence[tuple[str, str]]) -> wire.OrdersPayload:
        body = await self._get(Operation.GET_ORDERS, "/orders/v0/orders", params)
        try:
            return wire.OrdersResponse.model_validate_json(body).payload
        except ValidationError as exc:
            raise PlatformRejected(
                f"getOrders answer unusable: {wire.field_problem(exc)}", platform=Platform.AMAZON
            ) from exc

    async def get_order(self, order_id: str) -> JsonValue:
        """One order as getOrders lists it (unvalidated: `mapping` checks it); an id Amazon
        does not know raises `PlatformRejected`."""
        path = f"/orders/v0/orders/{quote(order_id, safe='')}"
        body = await self._get(Operation.GET_ORDER, path, [])
        try:
            return wire.OrderResponse.model_validate_json(body).payload
        except ValidationError as exc:
            raise PlatformRejected(
                f"getOrder answer unusable: {wire.field_problem(exc)}", platform=Platform.AMAZON
            ) from exc

    async def get_order_items(self, order_id: str) -> list[JsonValue]:
        """Every item of one order, following the items' own NextToken."""
        path = f"/orders/v0/orders/{quote(order_id, safe='')}/orderItems"
        items: list[JsonValue] = []
        params: list[tuple[str, str]] = []
        while True:
            body = await self._get(Operation.GET_ORDER_ITEMS, path, params)
            try:
                payload = wire.OrderItemsResponse.model_validate_json(body).payload
            except ValidationError as exc:
                raise PlatformRejected(
                    f"getOrderItems answer unusable: {wire.field_problem(exc)}",
                    platform=Platform.AMAZON,
                ) from exc
            items.extend(payload.OrderItems)
            if not payload.NextToken:
                return items
            params = [("NextToken", payload.NextToken)]

    async def marketplace_participations(self) -> list[wire.MarketplaceParticipation]:
        body = await self._get(
            Operation.GET_MARKETPLACE_PARTICIPATIONS, "/sellers/v1/marketplaceParticipations", []
        )
        try:
            return wire.MarketplaceParticipationsResponse.model_validate_json(body).payload
        except ValidationError as exc:
            raise PlatformRejected(
                f"marketplaceParticipations answer unusable: {wire.field_problem(exc)}",
                platform=Platform.AMAZON,
            ) from exc


def _error_text(response: httpx.Response) -> str:
    try:
        errors = wire.ErrorResponse.model_validate_json(response.content).errors
    except ValidationError:
        return response.text[:200]
    return "; ".join(f"{error.code} {error.message}".strip() for error in errors)[:500]
