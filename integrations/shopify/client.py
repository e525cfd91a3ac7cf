"""Shopify Admin GraphQL over an injected httpx client: auth, paging, cost-based throttling.

Throttling follows Shopify's leaky bucket of query cost points. Every answer reports the
bucket (`extensions.cost.throttleStatus`); the client remembers it per shop and, before each
query, waits until the bucket has restored the query's expected cost, so it never sends a
query the bucket cannot pay for. A THROTTLED answer (HTTP 200 or 429) waits for the missing
points; a plain 429 waits for `Retry-After`. 5xx answers and timeouts are retried with
exponential backoff a bounded number of times, then raise `PlatformUnavailable`.
"""

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import msgspec

from domain.platforms import (
    PageStats,
    PlatformAuthRevoked,
    PlatformRejected,
    PlatformUnavailable,
)
from integrations.shopify import wire

API_VERSION = "2025-01"
PLATFORM = "shopify"

_MONEY = "shopMoney { amount currencyCode }"
_CUSTOMER = "id email phone firstName lastName displayName createdAt updatedAt"
_LINES = (
    "pageInfo { hasNextPage endCursor } nodes { id sku name quantity currentQuantity"
    f" originalUnitPriceSet {{ {_MONEY} }} discountedUnitPriceSet {{ {_MONEY} }}"
    " product { id } variant { id } }"
)
ORDERS_QUERY = f"""query KizukiOrders($first: Int!, $after: String, $query: String) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id name createdAt processedAt updatedAt cancelledAt cancelReason
      displayFinancialStatus displayFulfillmentStatus email phone test currencyCode
      customer {{ {_CUSTOMER} }}
      totalPriceSet {{ {_MONEY} }}
      totalRefundedSet {{ {_MONEY} }}
      lineItems(first: 50) {{ {_LINES} }}
    }}
  }}
}}"""
ORDER_LINES_QUERY = f"""query KizukiOrderLines($id: ID!, $after: String) {{
  order(id: $id) {{ lineItems(first: 250, after: $after) {{ {_LINES} }} }}
}}"""
CONTRACTS_QUERY = f"""query KizukiContracts($first: Int!, $after: String) {{
  subscriptionContracts(first: $first, after: $after) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      id status createdAt updatedAt nextBillingDate
      customer {{ {_CUSTOMER} }}
      billingPolicy {{ interval intervalCount }}
      lines(first: 5) {{ nodes {{ title quantity }} }}
    }}
  }}
}}"""
CYCLES_QUERY = """query KizukiCycles(
  $id: ID!, $first: Int!, $after: String, $start: DateTime!, $end: DateTime!
) {
  subscriptionBillingCycles(
    contractId: $id, first: $first, after: $after,
    billingCyclesDateRangeSelector: { startDate: $start, endDate: $end }
  ) {
    pageInfo { hasNextPage endCursor }
    nodes { cycleIndex cycleStartAt billingAttemptExpectedDate skipped }
  }
}"""
SHOP_QUERY = "query KizukiShop { shop { name myshopifyDomain } }"
SCOPES_QUERY = "query KizukiScopes { currentAppInstallation { accessScopes { handle } } }"

# Seconds added to computed waits so float rounding never lands a query a hair too early.
_WAIT_MARGIN = 0.01
_MAX_THROTTLE_WAITS = 60


class AccessDenied(PlatformRejected):
    """The token lacks a scope the query needs (GraphQL ACCESS_DENIED)."""


class QueryTooCostly(PlatformRejected):
    """The query's cost exceeds the bucket's maximum (MAX_COST_EXCEEDED): ask for less."""


@dataclass(slots=True)
class Bucket:
    """The shop's cost bucket as last reported, and when."""

    maximum: float
    available: float
    restore_rate: float
    at: datetime

    def available_at(self, now: datetime) -> float:
        elapsed = max(0.0, (now - self.at).total_seconds())
        return min(self.maximum, self.available + elapsed * self.restore_rate)


@dataclass(slots=True)
class StatsCounter:
    requests: int = 0
    throttle_waits: int = 0
    throttle_wait_seconds: float = 0.0

    def take(self) -> PageStats:
        """What was counted since the last call, then start again from zero."""
        stats = PageStats(self.requests, self.throttle_waits, self.throttle_wait_seconds)
        self.requests, self.throttle_waits, self.throttle_wait_seconds = 0, 0, 0.0
        return stats


@dataclass(slots=True)
class ShopState:
    """What the client learnt about one shop: its bucket and each operation's cost.

    Kept by the platform across syncs, so a new sync paces its first queries too.
    """

    bucket: Bucket | None = None
    # The cost Shopify asked for each operation last time: what the next one will ask.
    costs: dict[str, float] = field(default_factory=dict)


class ShopifyClient:
    """One shop's Admin GraphQL API, paced by the shop's bucket as last reported."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        access_token: str,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]],
        state: ShopState,
        api_version: str = API_VERSION,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 1.0,
    ) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/admin/api/{api_version}/graphql.json"
        self._headers = {"X-Shopify-Access-Token": access_token}
        self._clock = clock
        self._sleep = sleep
        self._state = state
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff
        self.stats = StatsCounter()
        # Fields Shopify left null because the app may not read them (protected customer data).
        self.denied_fields: set[str] = set()

    async def shop(self) -> wire.Shop:
        data = await self.query("shop", SHOP_QUERY, {})
        try:
            return wire.node((data or {}).get("shop"), wire.Shop)
        except msgspec.ValidationError as error:
            raise PlatformRejected(f"unusable shop answer: {error}", platform=PLATFORM) from error

    async def access_scopes(self) -> frozenset[str]:
        data = await self.query("scopes", SCOPES_QUERY, {})
        try:
            installation = wire.node(
                (data or {}).get("currentAppInstallation"), wire.AppInstallation
            )
        except msgspec.ValidationError as error:
            raise PlatformRejected(f"unusable scopes answer: {error}", platform=PLATFORM) from error
        return frozenset(scope.handle for scope in installation.access_scopes)

    async def orders(self, search: str, first: int, after: str | None) -> wire.RawConnection:
        """A page of order nodes, oldest `updatedAt` first, each with all its line items."""
        variables = {"first": first, "after": after, "query": search}
        data = await self.query(f"orders:{first}", ORDERS_QUERY, variables)
        page = self._connection(data, "orders")
        nodes = [await self._complete_lines(node) for node in page.nodes]
        if all(done is node for done, node in zip(nodes, page.nodes, strict=True)):
            return page
        return wire.RawConnection(page_info=page.page_info, nodes=nodes)

    async def contracts(
        self,
        first: int,
        after: str | None,
        *,
        cycles_between: tuple[datetime, datetime],
        cycles_since: datetime | None,
    ) -> wire.RawConnection:
        """A page of contract nodes; each live or recently changed one with its billing cycles
        expected within `cycles_between` (`billingCycles`, which Shopify serves apart)."""
        data = await self.query(
            f"contracts:{first}", CONTRACTS_QUERY, {"first": first, "after": after}
        )
        page = self._connection(data, "subscriptionContracts")
        nodes = [
            await self._with_cycles(node, cycles_between)
            if wire.wants_cycles(node, cycles_since)
            else node
            for node in page.nodes
        ]
        return wire.RawConnection(page_info=page.page_info, nodes=nodes)

    async def _with_cycles(
        self, node: wire.JSONObject, between: tuple[datetime, datetime]
    ) -> wire.JSONObject:
        start, end = (moment.isoformat() for moment in between)
        cycles: list[wire.JSONObject] = []
        after: str | None = None
        while True:
            variables = {"id": node.get("id"), "first": 50, "after": after}
            data = await self.query(
                "billing-cycles", CYCLES_QUERY, {**variables, "start": start, "end": end}
            )
            page = self._connection(data, "subscriptionBillingCycles")
            cycles.extend(page.nodes)
            if not page.page_info.has_next_page or page.page_info.end_cursor is None:
                return {**node, "billingCycles": {"nodes": cycles}}
            after = page.page_info.end_cursor

    async def _complete_lines(self, node: wire.JSONObject) -> wire.JSONObject:
        after = wire.more_lines_after(node)
        while after is not None:
            data = await self.query(
                "order-lines", ORDER_LINES_QUERY, {"id": node.get("id"), "after": after}
            )
            node = wire.with_more_lines(node, self._connection(data, "order", "lineItems"))
            after = wire.more_lines_after(node)
        return node

    def _connection(self, data: wire.JSONObject | None, *path: str) -> wire.RawConnection:
        try:
            return wire.connection_at(data, *path)
        except ValueError as error:  # msgspec's ValidationError is one too
            raise PlatformRejected(
                f"unusable {path[0]} page: {error}", platform=PLATFORM
            ) from error

    async def query(
        self, operation: str, document: str, variables: Mapping[str, object]
    ) -> wire.JSONObject | None:
        """Send one query, pacing it by the bucket; the `data` of the answer."""
        failures = 0
        throttled = 0
        while True:
            await self._wait_for_bucket(operation)
            self.stats.requests += 1
            try:
                response = await self._http.post(
                    self._url,
                    json={"query": document, "variables": variables},
                    headers=self._headers,
                    timeout=self._timeout,
                )
            except httpx.InvalidURL as error:
                raise PlatformRejected(f"bad Shopify URL: {error}", platform=PLATFORM) from error
            except httpx.TransportError as error:
                failures += 1
                await self._retry_or_fail(failures, f"{type(error).__name__}: {error}")
                continue
            status = response.status_code
            if status in (401, 403):
                raise PlatformAuthRevoked(
                    f"Shopify refused the access token (HTTP {status})", platform=PLATFORM
                )
            if status >= 500:
                failures += 1
                await self._retry_or_fail(failures, f"HTTP {status}")
                continue
            body = self._parse(response)
            if body is not None:
                self._remember(operation, body)
            if status == 429 or (body is not None and self._is_throttled(body)):
                throttled += 1
                if throttled > _MAX_THROTTLE_WAITS:
                    raise PlatformUnavailable(
                        "Shopify kept throttling", platform=PLATFORM, retry_after=60.0
                    )
                await self._throttle_wait(self._throttled_for(response, body, operation))
                continue
            if status != 200 or body is None:
                raise PlatformRejected(
                    f"Shopify answered HTTP {status}: {response.text[:200]}", platform=PLATFORM
                )
            self._raise_errors(body)
            return body.data

    def _parse(self, response: httpx.Response) -> wire.GraphQLResponse | None:
        try:
            return wire.decode(response.content, wire.GraphQLResponse)
        except msgspec.DecodeError:
            return None

    def _is_throttled(self, body: wire.GraphQLResponse) -> bool:
        return any(error.code == "THROTTLED" for error in body.errors)

    def _raise_errors(self, body: wire.GraphQLResponse) -> None:
        if not body.errors:
            return
        codes = {error.code for error in body.errors}
        message = "; ".join(error.message for error in body.errors)[:500]
        nested = [error.path for error in body.errors if error.path and len(error.path) > 1]
        if codes == {"ACCESS_DENIED"} and body.data is not None and len(nested) == len(body.errors):
            # Parts of the answer withheld (an order's customer): the rest is still good.
            self.denied_fields.update(str(path[-1]) for path in nested if path)
            return
        if "ACCESS_DENIED" in codes:
            raise AccessDenied(f"Shopify denied access: {message}", platform=PLATFORM)
        if "MAX_COST_EXCEEDED" in codes:
            raise QueryTooCostly(f"query too costly: {message}", platform=PLATFORM)
        if body.data is None or "INTERNAL_SERVER_ERROR" in codes:
            raise PlatformRejected(f"Shopify answered with errors: {message}", platform=PLATFORM)

    def _remember(self, operation: str, body: wire.GraphQLResponse) -> None:
        cost = body.extensions.cost if body.extensions else None
        if cost is None:
            return
        if cost.requested_query_cost is not None:
            self._state.costs[operation] = cost.requested_query_cost
        status = cost.throttle_status
        if status is not None:
            self._state.bucket = Bucket(
                status.maximum_available,
                status.currently_available,
                status.restore_rate,
                self._clock(),
            )

    def _throttled_for(
        self, response: httpx.Response, body: wire.GraphQLResponse | None, operation: str
    ) -> float:
        """Seconds until the throttled query may be sent again: the bucket's missing points
        at its restore rate, and at least any `Retry-After`."""
        waits = [1.0]
        bucket = self._state.bucket
        cost = self._state.costs.get(operation)
        reported = body is not None and body.extensions is not None and body.extensions.cost
        if reported and bucket is not None and cost is not None and bucket.restore_rate > 0:
            missing = cost - bucket.available_at(self._clock())
            waits = [max(0.0, missing / bucket.restore_rate)]
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                waits.append(float(retry_after))
        return max(waits) + _WAIT_MARGIN

    async def _wait_for_bucket(self, operation: str) -> None:
        bucket = self._state.bucket
        if bucket is None or bucket.restore_rate <= 0:
            return
        # An operation of unknown cost waits for a full bucket: any query that may run at all
        # fits in it, so even the first one is never sent too early.
        cost = min(self._state.costs.get(operation, bucket.maximum), bucket.maximum)
        missing = cost - bucket.available_at(self._clock())
        if missing > 0:
            await self._throttle_wait(missing / bucket.restore_rate + _WAIT_MARGIN)

    async def _throttle_wait(self, seconds: float) -> None:
        self.stats.throttle_waits += 1
        self.stats.throttle_wait_seconds += seconds
        await self._sleep(seconds)

    async def _retry_or_fail(self, failures: int, problem: str) -> None:
        delay = min(30.0, self._backoff * 2 ** (failures - 1))
        if failures > self._max_retries:
            raise PlatformUnavailable(
                f"Shopify unavailable after {failures} attempts: {problem}",
                platform=PLATFORM,
                retry_after=delay,
            )
        await self._sleep(delay)
