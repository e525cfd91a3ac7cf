"""The fake Shopify Admin GraphQL endpoint: paging, search, cost bucket, scopes, failures.

`FakeShopify(store, tokens=...)` holds the knobs and records what clients did; `.app` is the
Starlette app to serve on loopback. Cost accounting is Shopify's leaky bucket: a query asks
`1 + first * node cost` points, is THROTTLED when the bucket holds fewer, and spends
`1 + returned nodes * node cost`. A request the client could have known was too early (the
bucket was short and nothing but the client spent from it since the last answer) is recorded
in `violations`; so is any request sent before a `Retry-After` ran out.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.shopify.graphql import Field, GraphQLSyntaxError, parse
from tests.fakes.shopify.query import Search, cursor, project, projector, uncursor, when
from tests.fakes.shopify.store import JSON, FakeOrder, ShopifyStore

ALL_SCOPES = frozenset(
    {"read_orders", "read_all_orders", "read_customers", "read_own_subscription_contracts"}
)


@dataclass
class Knobs:
    max_available: float = 1000.0
    restore_rate: float = 50.0
    order_node_cost: float = 2.0
    contract_node_cost: float = 3.0
    # HTTP status of THROTTLED answers: Shopify sends 200, some clients report 429.
    throttle_status: int = 200
    # Request number (1-based) → what happens to it.
    fail_on: dict[int, int] = field(default_factory=dict)
    stall_on: dict[int, float] = field(default_factory=dict)
    retry_after_on: dict[int, float] = field(default_factory=dict)
    # Before request n another app spends this many points from the shared bucket.
    drain_on: dict[int, float] = field(default_factory=dict)


@dataclass
class Logged:
    number: int
    at: datetime
    root: str
    variables: dict[str, Any]
    status: int


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


class _Denied(Exception):
    pass


class FakeShopify:
    def __init__(
        self,
        store: ShopifyStore,
        *,
        tokens: dict[str, frozenset[str]] | None = None,
        knobs: Knobs | None = None,
    ) -> None:
        self.store = store
        self.tokens = tokens if tokens is not None else {"shpat_test": ALL_SCOPES}
        self.knobs = knobs or Knobs()
        self.requests = 0
        self.throttled = 0
        self.log: list[Logged] = []
        self.violations: list[str] = []
        self._available = self.knobs.max_available
        self._level_at = store.clock()
        # The client knows nothing of the bucket until it gets its first answer.
        self._surprised = True
        self._blocked_until: datetime | None = None
        self._projected: dict[tuple[str, int], tuple[JSON, Any]] = {}
        # Whether the app is approved for protected customer data (level 1): without it, an
        # order's customer is null with an ACCESS_DENIED error at its path.
        self.customer_access = True
        self._nested_errors: list[JSON] = []
        self.app = Starlette(
            routes=[Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"])]
        )

    # --- the bucket ---------------------------------------------------------------------------

    def available(self) -> float:
        elapsed = (self.store.clock() - self._level_at).total_seconds()
        return min(self.knobs.max_available, self._available + elapsed * self.knobs.restore_rate)

    def _spend(self, points: float) -> None:
        self._available = self.available() - points
        self._level_at = self.store.clock()

    def drain(self, points: float) -> None:
        """Another app of the shop spends points: the client cannot know."""
        self._spend(min(points, self.available()))
        self._surprised = True

    def _cost(self, requested: float, actual: float | None) -> JSON:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": self.knobs.max_available,
                "currentlyAvailable": self.available(),
                "restoreRate": self.knobs.restore_rate,
            },
        }

    # --- the endpoint -------------------------------------------------------------------------

    async def _graphql(self, request: Request) -> Response:
        self.requests += 1
        number = self.requests
        now = self.store.clock()
        knobs = self.knobs
        try:
            body = orjson.loads(await request.body())
            fields = parse(body.get("query", ""), body.get("variables"))
        except (orjson.JSONDecodeError, GraphQLSyntaxError, AttributeError) as error:
            return _json({"errors": [{"message": f"Parse error: {error}"}]}, 200)
        variables = body.get("variables") or {}
        logged = Logged(number, now, fields[0].name if fields else "", variables, 200)
        self.log.append(logged)
        if number in knobs.stall_on:
            # The client gives up before this answer comes.
            logged.status = 504
            await asyncio.sleep(knobs.stall_on[number])
            return Response("upstream timed out", 504)
        response = await self._answer(request, number, now, fields, knobs)
        logged.status = response.status_code
        return response

    async def _answer(
        self, request: Request, number: int, now: datetime, fields: list[Field], knobs: Knobs
    ) -> Response:
        scopes = self.tokens.get(request.headers.get("X-Shopify-Access-Token", ""))
        if scopes is None:
            return _json(
                {
                    "errors": "[API] Invalid API key or access token "
                    "(unrecognized login or wrong password)"
                },
                401,
            )
        if self._blocked_until is not None and now < self._blocked_until:
            self.violations.append(f"request {number} sent before Retry-After ran out")
        if number in knobs.fail_on:
            return _json({"errors": "Internal Server Error"}, knobs.fail_on[number])
        if number in knobs.retry_after_on:
            wait = knobs.retry_after_on[number]
            self._blocked_until = now + timedelta(seconds=wait)
            return _json(
                {"errors": "Exceeded 2 calls per second for api client."},
                429,
                {"Retry-After": f"{wait:.1f}"},
            )
        if number in knobs.drain_on:
            self.drain(knobs.drain_on[number])
        self.store.catch_up_index()
        requested = sum(self._requested(field_) for field_ in fields)
        if requested > knobs.max_available:
            return _json(
                {
                    "errors": [
                        {
                            "message": f"Query cost is {requested}, which exceeds the single "
                            f"query max cost limit ({knobs.max_available}).",
                            "extensions": {"code": "MAX_COST_EXCEEDED"},
                        }
                    ],
                    "extensions": {"cost": self._cost(requested, None)},
                }
            )
        if self.available() < requested:
            self.throttled += 1
            if not self._surprised:
                self.violations.append(
                    f"request {number} asked {requested} points with "
                    f"{self.available():.2f} available"
                )
            self._surprised = False
            return _json(
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": {"cost": self._cost(requested, None)},
                },
                knobs.throttle_status,
            )
        self._surprised = False
        data: JSON = {}
        actual = 0.0
        errors: list[JSON] = []
        self._nested_errors = errors
        for field_ in fields:
            try:
                value, cost = self._resolve(field_, scopes)
            except _Denied as denied:
                errors.append(
                    {
                        "message": str(denied),
                        "extensions": {"code": "ACCESS_DENIED"},
                        "path": [field_.key],
                    }
                )
                value, cost = None, 1.0
            except GraphQLSyntaxError as error:
                return _json({"errors": [{"message": str(error)}]})
            data[field_.key] = value
            actual += cost
        self._spend(actual)
        payload: JSON = {"data": data, "extensions": {"cost": self._cost(requested, actual)}}
        if errors:
            payload["errors"] = errors
        return _json(payload)

    def _requested(self, root: Field) -> float:
        first = int(root.args.get("first") or 0)
        if root.name == "orders":
            return 1 + first * self.knobs.order_node_cost
        if root.name == "subscriptionContracts":
            return 1 + first * self.knobs.contract_node_cost
        if root.name == "subscriptionBillingCycles":
            return 1 + first
        if root.name == "order":
            lines = root.child("lineItems")
            return 1 + int(lines.args.get("first") or 0 if lines else 0)
        return 1.0

    # --- resolvers ----------------------------------------------------------------------------

    def _resolve(self, root: Field, scopes: frozenset[str]) -> tuple[Any, float]:
        store = self.store
        if root.name == "shop":
            shop = {"name": store.shop_name, "myshopifyDomain": store.shop_domain}
            return project(shop, root), 1.0
        if root.name == "currentAppInstallation":
            installation = {"accessScopes": [{"handle": scope} for scope in sorted(scopes)]}
            return project(installation, root), 1.0
        if root.name == "orders":
            if "read_orders" not in scopes:
                raise _Denied("Access denied for orders field.")
            connection = self._orders(root, "read_all_orders" in scopes)
            orders: list[FakeOrder] = connection.pop("orders")
            result = project({**connection, "nodes": None}, root, paged=True)
            nodes = root.child("nodes")
            if nodes is not None:
                result[nodes.key] = self._order_nodes(orders, nodes)
                if not self.customer_access:
                    result[nodes.key] = self._deny_customers(result[nodes.key], root, nodes)
            return result, 1 + len(orders) * self.knobs.order_node_cost
        if root.name == "order":
            found = self._order_by_gid(str(root.args.get("id")), "read_all_orders" in scopes)
            node = store.order_node(found) if found else None
            lines = root.child("lineItems")
            returned = 0
            if node is not None and lines is not None:
                returned = min(int(lines.args.get("first") or 0), len(node["lineItems"]["nodes"]))
            return project(node, root), 1 + returned
        if root.name == "subscriptionContracts":
            if "read_own_subscription_contracts" not in scopes:
                raise _Denied("Access denied for subscriptionContracts field.")
            connection = self._contracts(root)
            cost = 1 + len(connection["nodes"]) * self.knobs.contract_node_cost
            return project(connection, root, paged=True), cost
        if root.name == "subscriptionBillingCycles":
            if "read_own_subscription_contracts" not in scopes:
                raise _Denied("Access denied for subscriptionBillingCycles field.")
            connection = self._cycles(root)
            return project(connection, root, paged=True), 1 + len(connection["nodes"])
        raise GraphQLSyntaxError(f"Field '{root.name}' doesn't exist on type 'QueryRoot'")

    def _order_nodes(self, orders: list[FakeOrder], selection: Field) -> list[Any]:
        """Projected order nodes, each projected once per query shape until it changes."""
        shape = repr(selection)
        project = projector(selection, paged=False)
        projected = []
        for order in orders:
            node = self.store.order_node(order)
            hit = self._projected.get((shape, order.id))
            if hit is None or hit[0] is not node:
                hit = (node, project(node))
                self._projected[(shape, order.id)] = hit
            projected.append(hit[1])
        return projected

    def _deny_customers(self, nodes: list[JSON], root: Field, selection: Field) -> list[JSON]:
        denied = []
        for index, node in enumerate(nodes):
            node = {**node, **{key: None for key in ("email", "phone") if key in node}}
            customer = selection.child("customer")
            if customer is not None and node.get(customer.key) is not None:
                node[customer.key] = None
                self._nested_errors.append(
                    {
                        "message": "This app is not approved to access the Customer object.",
                        "extensions": {"code": "ACCESS_DENIED"},
                        "path": [root.key, selection.key, index, customer.key],
                    }
                )
            denied.append(node)
        return denied

    def _order_by_gid(self, gid: str, all_orders: bool) -> FakeOrder | None:
        try:
            order = self.store.orders.get(int(gid.rsplit("/", 1)[-1]))
        except ValueError:
            return None
        return order if order is not None and self.store.visible(order, all_orders) else None

    def _orders(self, root: Field, all_orders: bool) -> JSON:
        args = root.args
        first = int(args.get("first") or 0)
        if not 0 < first <= 250:
            raise GraphQLSyntaxError("first must be between 1 and 250")
        search = Search.of(args.get("query"))
        sort_key = str(args.get("sortKey") or "ID")
        reverse = bool(args.get("reverse"))
        after = uncursor(args["after"]) if args.get("after") else None
        store = self.store

        def matches(order: FakeOrder) -> bool:
            indexed = order.indexed_at
            return (
                indexed is not None
                and store.visible(order, all_orders)
                and search.accepts("updated_at", indexed.timestamp())
                and search.accepts("created_at", order.created_at.timestamp())
            )

        picked: list[tuple[list[Any], FakeOrder]] = []
        if sort_key == "UPDATED_AT" and not reverse:
            lower = search.lower_key("updated_at")
            if after is not None:
                key = (float(after[0]), int(after[1]))
                lower = key if lower is None else max(lower, key)
            upper = search.upper("updated_at")
            for order in store.scan_updated(lower):
                indexed = order.indexed_at
                assert indexed is not None
                if upper is not None and indexed.timestamp() > upper:
                    break
                if matches(order):
                    picked.append(([indexed.timestamp(), order.id], order))
                    if len(picked) > first:
                        break
        else:
            picked = self._sorted(sort_key, reverse, after, first, matches)
        more = len(picked) > first
        picked = picked[:first]
        return {
            "pageInfo": {
                "hasNextPage": more,
                "hasPreviousPage": after is not None,
                "endCursor": cursor(*picked[-1][0]) if picked else None,
                "startCursor": cursor(*picked[0][0]) if picked else None,
            },
            "orders": [order for _, order in picked],
        }

    def _sorted(
        self,
        sort_key: str,
        reverse: bool,
        after: list[Any] | None,
        first: int,
        matches: Callable[[FakeOrder], bool],
    ) -> list[tuple[list[Any], FakeOrder]]:
        def key(order: FakeOrder) -> list[Any]:
            if sort_key == "UPDATED_AT" and order.indexed_at is not None:
                return [order.indexed_at.timestamp(), order.id]
            if sort_key == "CREATED_AT":
                return [order.created_at.timestamp(), order.id]
            return [order.id, order.id]

        rows = sorted(
            ((key(order), order) for order in self.store.orders.values() if matches(order)),
            key=lambda row: row[0],
            reverse=reverse,
        )
        if after is not None:
            rows = [row for row in rows if (row[0] < after if reverse else row[0] > after)]
        return rows[: first + 1]

    def _cycles(self, root: Field) -> JSON:
        """A contract's billing cycles expected within the date range, by index."""
        args = root.args
        first = int(args.get("first") or 0)
        if not 0 < first <= 250:
            raise GraphQLSyntaxError("first must be between 1 and 250")
        contract_id = str(args.get("contractId") or "").rsplit("/", 1)[-1]
        contract = self.store.contracts.get(int(contract_id)) if contract_id.isdigit() else None
        if contract is None:
            raise GraphQLSyntaxError(f"Invalid id: {args.get('contractId')}")
        selector = args.get("billingCyclesDateRangeSelector") or {}
        if not isinstance(selector, dict) or not {"startDate", "endDate"} <= set(selector):
            raise GraphQLSyntaxError("billingCyclesDateRangeSelector needs startDate and endDate")
        start, end = when(str(selector["startDate"])), when(str(selector["endDate"]))
        after = int(uncursor(args["after"])[0]) if args.get("after") else -1
        cycles = [
            cycle
            for cycle in contract.cycles
            if start <= cycle.start_at <= end and cycle.index > after
        ]
        page = cycles[:first]
        return {
            "pageInfo": {
                "hasNextPage": len(cycles) > first,
                "endCursor": cursor(page[-1].index) if page else None,
            },
            "nodes": [self.store.cycle_node(cycle) for cycle in page],
        }

    def _contracts(self, root: Field) -> JSON:
        first = int(root.args.get("first") or 0)
        if not 0 < first <= 250:
            raise GraphQLSyntaxError("first must be between 1 and 250")
        after = int(uncursor(root.args["after"])[0]) if root.args.get("after") else 0
        ids = sorted(contract_id for contract_id in self.store.contracts if contract_id > after)
        page = ids[:first]
        return {
            "pageInfo": {
                "hasNextPage": len(ids) > first,
                "endCursor": cursor(page[-1]) if page else None,
            },
            "nodes": [self.store.contract_node(self.store.contracts[i]) for i in page],
        }
