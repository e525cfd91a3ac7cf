"""Shopify's payloads: Admin GraphQL answers as msgspec structs, REST-shaped webhook bodies as
pydantic models.

Only the fields Kizuki reads are declared; unknown fields are ignored. GraphQL answers are
the bulk of a sync (a backfill reads every order the shop ever had), so they are decoded
with msgspec, which validates JSON straight into typed structs about six times faster than
pydantic does (bench/ingest.py, docs/benchmarks.md); webhook bodies come one at a time and
share pydantic with the rest of Kizuki.

One malformed order, customer or contract never spoils its page: a page is decoded with its
nodes as plain data (`GraphQLResponse`), and each node is converted on its own (`node`), so
only the bad ones are rejected, each with the path of its bad field (`problem`).
"""

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import msgspec
from pydantic import BaseModel, ConfigDict, Field

# A GraphQL node or webhook body before validation.
JSONObject = dict[str, Any]

S = TypeVar("S", bound=msgspec.Struct)

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(gt=0)]


class _Node(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A GraphQL object: camelCase on the wire, snake_case here. Subclasses repeat `frozen`
    and `kw_only`, which msgspec inherits but type checkers do not."""


def decode(content: bytes, kind: type[S]) -> S:
    """A GraphQL answer's JSON as `kind`; raises `msgspec.ValidationError` or
    `msgspec.DecodeError`."""
    return msgspec.json.decode(content, type=kind)


def node(raw: object, kind: type[S]) -> S:
    """Already parsed data as `kind`; raises `msgspec.ValidationError`."""
    return msgspec.convert(raw, kind)


_AT = re.compile(r"^(?P<message>.*) - at `\$(?P<path>[^`]*)`$", re.DOTALL)


def problem(error: msgspec.ValidationError) -> str:
    """The bad field by its path, e.g. `totalPriceSet.shopMoney.amount: Invalid decimal string`."""
    found = _AT.match(str(error))
    if found is None:
        return f"<root>: {error}"
    path = re.sub(r"\[(\d+)\]", r".\1", found["path"]).lstrip(".")
    return f"{path or '<root>'}: {found['message']}"


# --- GraphQL envelope -------------------------------------------------------------------------


class ThrottleStatus(_Node, frozen=True, kw_only=True):
    maximum_available: float
    currently_available: float
    restore_rate: float


class QueryCost(_Node, frozen=True, kw_only=True):
    requested_query_cost: float | None = None
    actual_query_cost: float | None = None
    throttle_status: ThrottleStatus | None = None


class Extensions(_Node, frozen=True, kw_only=True):
    cost: QueryCost | None = None


class ErrorExtensions(_Node, frozen=True, kw_only=True):
    code: str | None = None


class GraphQLError(_Node, frozen=True, kw_only=True):
    message: str = ""
    extensions: ErrorExtensions | None = None
    path: list[str | int] | None = None

    @property
    def code(self) -> str | None:
        return self.extensions.code if self.extensions else None


class GraphQLResponse(_Node, frozen=True, kw_only=True):
    """Any answer, its `data` as parsed: nodes are converted one by one later."""

    data: JSONObject | None = None
    errors: list[GraphQLError] = []
    extensions: Extensions | None = None


class PageInfo(_Node, frozen=True, kw_only=True):
    has_next_page: bool
    end_cursor: str | None = None


class RawConnection(_Node, frozen=True, kw_only=True):
    """A connection whose nodes are converted one by one later."""

    page_info: PageInfo
    nodes: list[JSONObject]


class Shop(_Node, frozen=True, kw_only=True):
    name: str
    myshopify_domain: str


class AccessScope(_Node, frozen=True, kw_only=True):
    handle: str


class AppInstallation(_Node, frozen=True, kw_only=True):
    access_scopes: list[AccessScope]


# --- GraphQL nodes ----------------------------------------------------------------------------


class Money(_Node, frozen=True, kw_only=True):
    amount: Decimal
    currency_code: str


class MoneyBag(_Node, frozen=True, kw_only=True):
    shop_money: Money


class Customer(_Node, frozen=True, kw_only=True):
    id: NonEmpty
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Ref(_Node, frozen=True, kw_only=True):
    id: NonEmpty


class LineItem(_Node, frozen=True, kw_only=True):
    id: str
    sku: str | None = None
    name: str = ""
    quantity: Count
    current_quantity: Count
    original_unit_price_set: MoneyBag
    discounted_unit_price_set: MoneyBag | None = None
    product: Ref | None = None
    variant: Ref | None = None


class LineItems(_Node, frozen=True, kw_only=True):
    nodes: list[LineItem]


class Order(_Node, frozen=True, kw_only=True):
    id: NonEmpty
    name: str = ""
    created_at: datetime
    processed_at: datetime | None = None
    updated_at: datetime
    cancelled_at: datetime | None = None
    display_financial_status: str | None = None
    display_fulfillment_status: str | None = None
    email: str | None = None
    phone: str | None = None
    test: bool = False
    currency_code: str
    customer: Customer | None = None
    total_price_set: MoneyBag
    total_refunded_set: MoneyBag | None = None
    line_items: LineItems


class BillingPolicy(_Node, frozen=True, kw_only=True):
    interval: str
    interval_count: Positive


class ContractLine(_Node, frozen=True, kw_only=True):
    title: str = ""
    quantity: Count = 1


class ContractLines(_Node, frozen=True, kw_only=True):
    nodes: list[ContractLine]


class BillingCycle(_Node, frozen=True, kw_only=True):
    cycle_index: int
    cycle_start_at: datetime
    billing_attempt_expected_date: datetime | None = None
    skipped: bool = False


class BillingCycles(_Node, frozen=True, kw_only=True):
    nodes: list[BillingCycle] = []


class SubscriptionContract(_Node, frozen=True, kw_only=True):
    id: NonEmpty
    status: str
    created_at: datetime
    updated_at: datetime
    next_billing_date: datetime | None = None
    customer: Customer
    billing_policy: BillingPolicy
    lines: ContractLines
    # Fetched apart (`subscriptionBillingCycles`); absent when not asked for.
    billing_cycles: BillingCycles = msgspec.field(default_factory=BillingCycles)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- REST-shaped webhook bodies ---------------------------------------------------------------


class RestMoney(_Wire):
    amount: Decimal
    currency_code: str


class RestMoneySet(_Wire):
    shop_money: RestMoney


class RestCustomer(_Wire):
    id: int
    admin_graphql_api_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RestDiscountAllocation(_Wire):
    amount: Decimal


class RestLineItem(_Wire):
    id: int
    sku: str | None = None
    name: str = ""
    quantity: int = Field(ge=0)
    current_quantity: int | None = Field(default=None, ge=0)
    price: Decimal
    product_id: int | None = None
    discount_allocations: list[RestDiscountAllocation] = []

    @property
    def discounted_price(self) -> Decimal:
        """The unit price after the line's own discounts (GraphQL's discountedUnitPriceSet)."""
        if not self.discount_allocations or self.quantity == 0:
            return self.price
        discount = sum((item.amount for item in self.discount_allocations), Decimal(0))
        return self.price - discount / self.quantity


class RestTransaction(_Wire):
    kind: str
    status: str
    amount: Decimal


class RestRefund(_Wire):
    transactions: list[RestTransaction] = []


class RestOrder(_Wire):
    id: int
    admin_graphql_api_id: str | None = None
    created_at: datetime
    processed_at: datetime | None = None
    updated_at: datetime
    cancelled_at: datetime | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    email: str | None = None
    phone: str | None = None
    test: bool = False
    currency: str
    total_price: Decimal
    total_price_set: RestMoneySet | None = None
    customer: RestCustomer | None = None
    line_items: list[RestLineItem] = []
    refunds: list[RestRefund] = []


class RestBillingPolicy(_Wire):
    interval: str
    interval_count: int = Field(gt=0)


class RestContract(_Wire):
    id: int
    admin_graphql_api_id: str | None = None
    customer_id: int
    admin_graphql_api_customer_id: str | None = None
    status: str
    updated_at: datetime | None = None
    billing_policy: RestBillingPolicy | None = None


class RestBillingCycle(_Wire):
    subscription_contract_id: int
    admin_graphql_api_subscription_contract_id: str | None = None
    cycle_index: int
    cycle_start_at: datetime
    billing_attempt_expected_date: datetime | None = None
    skipped: bool


class PrivacyCustomer(_Wire):
    id: int
    email: str | None = None
    phone: str | None = None


class DataRequestId(_Wire):
    id: int


class PrivacyPayload(_Wire):
    shop_domain: str
    customer: PrivacyCustomer | None = None
    orders_requested: list[int] = []
    orders_to_redact: list[int] = []
    data_request: DataRequestId | None = None


# --- raw-node helpers (the client completes nodes before they are validated) ------------------


def more_lines_after(node: JSONObject) -> str | None:
    """The cursor of an order node's next line items, when the page cut its lines short."""
    try:
        page_info = node["lineItems"]["pageInfo"]
        if page_info["hasNextPage"] and isinstance(page_info["endCursor"], str):
            return page_info["endCursor"]
    except (KeyError, TypeError):
        pass
    return None


def with_more_lines(node: JSONObject, connection: RawConnection) -> JSONObject:
    """The order node with the next page of its line items appended."""
    lines = node["lineItems"]
    return {
        **node,
        "lineItems": {
            **lines,
            "nodes": [*lines["nodes"], *connection.nodes],
            "pageInfo": msgspec.to_builtins(connection.page_info),
        },
    }


def wants_cycles(node: JSONObject, since: datetime | None) -> bool:
    """Whether a contract node's billing cycles are worth reading: it is live (cycles may
    still be skipped), or it changed since `since` (None: always)."""
    if since is None or node.get("status") in ("ACTIVE", "PAUSED"):
        return True
    updated = node.get("updatedAt")
    if not isinstance(updated, str):
        return True
    try:
        return datetime.fromisoformat(updated.replace("Z", "+00:00")) >= since
    except ValueError:
        return True


def connection_at(data: JSONObject | None, *path: str) -> RawConnection:
    """The connection at `path` in a GraphQL `data` object; ValueError when it is missing,
    `msgspec.ValidationError` when it is not a connection."""
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise ValueError(f"response has no {'.'.join(path)}")
        value = value[key]
    return node(value, RawConnection)
