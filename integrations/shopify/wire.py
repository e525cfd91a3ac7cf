"""Shopify's payloads as pydantic models: Admin GraphQL nodes and REST-shaped webhook bodies.

Only the fields Kizuki reads are declared; unknown fields are ignored. One malformed order,
customer or contract never spoils its page: an orders page is first validated whole from its
JSON in one pass (`OrdersResponse`, the fast path of a backfill); when that fails, the page is
read generically (`GraphQLResponse`) and each node validated on its own, so only the bad
ones are rejected.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# A GraphQL node or webhook body before validation.
JSONObject = dict[str, Any]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- GraphQL envelope -------------------------------------------------------------------------


class ThrottleStatus(_Wire):
    maximum_available: float = Field(alias="maximumAvailable")
    currently_available: float = Field(alias="currentlyAvailable")
    restore_rate: float = Field(alias="restoreRate")


class QueryCost(_Wire):
    requested_query_cost: float | None = Field(default=None, alias="requestedQueryCost")
    actual_query_cost: float | None = Field(default=None, alias="actualQueryCost")
    throttle_status: ThrottleStatus | None = Field(default=None, alias="throttleStatus")


class Extensions(_Wire):
    cost: QueryCost | None = None


class ErrorExtensions(_Wire):
    code: str | None = None


class GraphQLError(_Wire):
    message: str = ""
    extensions: ErrorExtensions | None = None
    path: list[str | int] | None = None

    @property
    def code(self) -> str | None:
        return self.extensions.code if self.extensions else None


class Envelope(_Wire):
    errors: list[GraphQLError] = []
    extensions: Extensions | None = None


class GraphQLResponse(Envelope):
    """Any answer, its `data` as parsed: nodes are validated one by one later."""

    data: JSONObject | None = None


class PageInfo(_Wire):
    has_next_page: bool = Field(alias="hasNextPage")
    end_cursor: str | None = Field(default=None, alias="endCursor")


class RawConnection(_Wire):
    """A connection whose nodes are validated one by one later."""

    page_info: PageInfo = Field(alias="pageInfo")
    nodes: list[JSONObject]


class Shop(_Wire):
    name: str
    myshopify_domain: str = Field(alias="myshopifyDomain")


class AccessScope(_Wire):
    handle: str


class AppInstallation(_Wire):
    access_scopes: list[AccessScope] = Field(alias="accessScopes")


# --- GraphQL nodes ----------------------------------------------------------------------------


class Money(_Wire):
    amount: Decimal
    currency_code: str = Field(alias="currencyCode")


class MoneyBag(_Wire):
    shop_money: Money = Field(alias="shopMoney")


class Customer(_Wire):
    id: str = Field(min_length=1)
    email: str | None = None
    phone: str | None = None
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    display_name: str | None = Field(default=None, alias="displayName")
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class Ref(_Wire):
    id: str = Field(min_length=1)


class LineItem(_Wire):
    id: str
    sku: str | None = None
    name: str = ""
    quantity: int = Field(ge=0)
    current_quantity: int = Field(alias="currentQuantity", ge=0)
    original_unit_price_set: MoneyBag = Field(alias="originalUnitPriceSet")
    discounted_unit_price_set: MoneyBag | None = Field(default=None, alias="discountedUnitPriceSet")
    product: Ref | None = None
    variant: Ref | None = None


class LineItems(_Wire):
    nodes: list[LineItem]
    page_info: PageInfo | None = Field(default=None, alias="pageInfo")

    @property
    def cut_short(self) -> bool:
        """Whether the order has more lines than its page carried."""
        return self.page_info is not None and self.page_info.has_next_page


class Order(_Wire):
    id: str = Field(min_length=1)
    name: str = ""
    created_at: datetime = Field(alias="createdAt")
    processed_at: datetime | None = Field(default=None, alias="processedAt")
    updated_at: datetime = Field(alias="updatedAt")
    cancelled_at: datetime | None = Field(default=None, alias="cancelledAt")
    display_financial_status: str | None = Field(default=None, alias="displayFinancialStatus")
    display_fulfillment_status: str | None = Field(default=None, alias="displayFulfillmentStatus")
    email: str | None = None
    phone: str | None = None
    test: bool = False
    currency_code: str = Field(alias="currencyCode")
    customer: Customer | None = None
    total_price_set: MoneyBag = Field(alias="totalPriceSet")
    total_refunded_set: MoneyBag | None = Field(default=None, alias="totalRefundedSet")
    line_items: LineItems = Field(alias="lineItems")


class OrderConnection(_Wire):
    page_info: PageInfo = Field(alias="pageInfo")
    nodes: list[Order]


class OrdersData(_Wire):
    orders: OrderConnection


class OrdersResponse(Envelope):
    """An orders page whose every node is valid, validated from its JSON in one pass."""

    data: OrdersData


class BillingPolicy(_Wire):
    interval: str
    interval_count: int = Field(alias="intervalCount", gt=0)


class ContractLine(_Wire):
    title: str = ""
    quantity: int = Field(default=1, ge=0)


class ContractLines(_Wire):
    nodes: list[ContractLine]


class BillingCycle(_Wire):
    cycle_index: int = Field(alias="cycleIndex")
    cycle_start_at: datetime = Field(alias="cycleStartAt")
    billing_attempt_expected_date: datetime | None = Field(
        default=None, alias="billingAttemptExpectedDate"
    )
    skipped: bool = False


class BillingCycles(_Wire):
    nodes: list[BillingCycle]


class SubscriptionContract(_Wire):
    id: str = Field(min_length=1)
    status: str
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    next_billing_date: datetime | None = Field(default=None, alias="nextBillingDate")
    customer: Customer
    billing_policy: BillingPolicy = Field(alias="billingPolicy")
    lines: ContractLines
    # Fetched apart (`subscriptionBillingCycles`); absent when not asked for.
    billing_cycles: BillingCycles = Field(
        default_factory=lambda: BillingCycles(nodes=[]), alias="billingCycles"
    )


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
            "pageInfo": connection.page_info.model_dump(by_alias=True),
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
    """The connection at `path` in a GraphQL `data` object; ValueError when it is missing."""
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise ValueError(f"response has no {'.'.join(path)}")
        value = value[key]
    return RawConnection.model_validate(value)
