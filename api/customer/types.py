import uuid
from collections import defaultdict
from collections.abc import Awaitable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import strawberry
from graphql import FieldNode

from api.batching import now_or_later
from api.connection.types import StoreConnection
from api.context import Context, Info
from api.fields import field
from api.lookahead import arguments_of, fields_at, node_selects, selects
from api.money import Money, money
from api.order.loaders import OrderPage
from api.order.types import Order, prefetch_lines
from api.relay import Connection, Node, encode_id, page_request, to_connection
from api.risk.types import RiskPoint, RiskScore
from api.subscription.types import Subscription
from domain.customer.evidence import (
    IdentityEvidence,
    MergeRow,
    Suggestion,
)
from domain.customer.service import CustomerRow, CustomerSort, IdentityRow, identities_by_customer
from domain.errors import DomainError, InvalidInput
from domain.order.service import (
    ORDER_SORTS,
    OrderLineRow,
    OrderRow,
    OrderSort,
    lines_by_order,
    orders_by_customer,
)
from domain.pagination import MAX_PAGE_SIZE, Page
from domain.risk.models import HISTORY_STEP
from domain.subscription.service import subscriptions_by_customer

strawberry.enum(CustomerSort, name="CustomerSortKey")


@strawberry.type(description="The customer as one mall account knows them.")
class CustomerIdentity(Node):
    platform: str
    external_id: str = strawberry.field(description="The customer's id on that mall.")
    email: str | None
    email_masked: bool = strawberry.field(
        description="The mall gave a relay address (Amazon, Rakuten), not the real one."
    )
    connection_key: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: IdentityRow) -> "CustomerIdentity":
        return cls(
            id=encode_id("CustomerIdentity", row.id),
            platform=row.platform,
            external_id=row.external_id,
            email=row.email,
            email_masked=row.email_masked,
            connection_key=row.connection_id,
        )

    @strawberry.field
    async def connection(self, info: Info) -> StoreConnection:
        row = await info.context.loaders.connection.load(self.connection_key)
        if row is None:
            raise LookupError(f"identity {self.id} has no connection in its shop")
        return StoreConnection.from_row(row)


@strawberry.type(description="One person, unified over every mall they bought on.")
class Customer(Node):
    display_name: str
    email: str | None
    phone: str | None
    birth_date: date | None
    marketing_restricted: bool = strawberry.field(
        description="Known only from a mall whose terms forbid marketing to them: never targeted."
    )
    first_order_at: datetime | None
    last_order_at: datetime | None
    order_count: int
    total_spent: Money
    created_at: datetime
    key: strawberry.Private[uuid.UUID]
    currency: strawberry.Private[str]
    prefilled_identities: strawberry.Private[list[CustomerIdentity] | None] = None
    prefilled_subscriptions: strawberry.Private[list[Subscription] | None] = None
    # `orders` by response name, each page as its arguments ask (see `prefetch_children`).
    prefilled_orders: strawberry.Private[dict[str, Connection[Order]] | None] = None

    @classmethod
    def from_row(cls, row: CustomerRow) -> "Customer":
        return cls(
            id=encode_id("Customer", row.id),
            display_name=row.display_name,
            email=row.email,
            phone=row.phone,
            birth_date=row.birth_date,
            marketing_restricted=row.marketing_restricted,
            first_order_at=row.first_order_at,
            last_order_at=row.last_order_at,
            order_count=row.order_count,
            total_spent=money(row.total_spent, row.currency),
            created_at=row.created_at,
            key=row.id,
            currency=row.currency,
        )

    @field("Oldest first.", graphql_type=list[CustomerIdentity], prefilled="prefilled_identities")
    def identities(self, info: Info) -> list[CustomerIdentity] | Awaitable[list[CustomerIdentity]]:
        return now_or_later(
            info.context.loaders.identities_of_customer.load(self.key),
            lambda rows: [CustomerIdentity.from_row(row) for row in rows],
        )

    @field("The customer's orders, oldest first unless `reverse`.", prefilled="prefilled_orders")
    async def orders(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        sort_key: OrderSort = OrderSort.ORDERED_AT,
        reverse: bool = False,
    ) -> Connection[Order]:
        page = order_page(first, after, last, before, sort_key, reverse)
        context = info.context
        rows = await context.loaders.orders_of_customer.load((self.key, page))
        connection = orders_connection(context, self.key, page, rows)
        if selects(info, "edges", "node", "lines"):
            await prefetch_lines(info, [edge.node for edge in connection.edges])
        return connection

    @field(
        "Recurring orders, oldest first.",
        graphql_type=list[Subscription],
        prefilled="prefilled_subscriptions",
    )
    def subscriptions(self, info: Info) -> list[Subscription] | Awaitable[list[Subscription]]:
        return now_or_later(
            info.context.loaders.subscriptions_of_customer.load(self.key),
            lambda rows: [Subscription.from_row(row) for row in rows],
        )

    @field(
        "The customer's current risk of not buying again; null until first scored.",
        graphql_type=RiskScore | None,
    )
    def risk(self, info: Info) -> RiskScore | Awaitable[RiskScore | None] | None:
        currency = self.currency
        return now_or_later(
            info.context.loaders.risk_of_customer.load(self.key),
            lambda row: None if row is None else RiskScore.from_row(row, currency),
        )

    @field(
        "The customer's past scores, newest first: the first, and then one wherever the band "
        f"changed or the probability moved at least {HISTORY_STEP:g} from the previous "
        "point's (risk stays within that between two points)."
    )
    async def risk_history(self, info: Info, first: int = 30) -> list[RiskPoint]:
        if not 0 <= first <= MAX_PAGE_SIZE:
            raise InvalidInput(f"first must be between 0 and {MAX_PAGE_SIZE}", "first")
        rows = await info.context.loaders.risk_history_of_customer.load((self.key, first))
        return [RiskPoint.from_row(row) for row in rows]

    @field("Merges this customer survived, newest first; undone ones show `unmergedAt`.")
    async def merges(self, info: Info) -> list["CustomerMerge"]:
        rows = await info.context.loaders.merges_of_customer.load(self.key)
        return [CustomerMerge.from_row(row) for row in rows]

    @field(
        "How this customer's identities were linked (at ingest by a shared email or phone, or "
        "by a staff merge) and open merge suggestions; identities without any are left out."
    )
    async def identity_evidence(self, info: Info) -> list["IdentityEvidenceType"]:
        rows = await info.context.loaders.evidence_of_customer.load(self.key)
        return [IdentityEvidenceType.from_row(row) for row in rows]


def order_page(
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    sort_key: OrderSort,
    reverse: bool,
) -> OrderPage:
    """The page `Customer.orders` asks its loader for."""
    request = page_request(
        first=first,
        after=after,
        last=last,
        before=before,
        sort_key=sort_key.name,
        column=ORDER_SORTS[sort_key],
        reverse=reverse,
    )
    return OrderPage(request, sort_key)


def _written_order_page(node: FieldNode, variables: Mapping[str, Any]) -> OrderPage | None:
    """The page an `orders` selection will ask for; None when it cannot be told in advance."""
    arguments = arguments_of(node, variables)
    sort = arguments.get("sortKey") or OrderSort.ORDERED_AT
    try:
        return order_page(
            arguments.get("first"),
            arguments.get("after"),
            arguments.get("last"),
            arguments.get("before"),
            OrderSort[sort]
            if isinstance(sort, str) and sort in OrderSort.__members__
            else OrderSort(sort),
            bool(arguments.get("reverse") or False),
        )
    except (DomainError, ValueError, TypeError):
        # The field itself will refuse these arguments, with the error at its own path.
        return None


def orders_connection(
    context: Context, customer_key: uuid.UUID, page: OrderPage, rows: Page[OrderRow]
) -> Connection[Order]:
    """`Customer.orders` of one customer from its page of rows."""
    counts = context.loaders

    return to_connection(
        rows,
        sort_key=page.sort.name,
        column=ORDER_SORTS[page.sort],
        node=Order.from_row,
        count=lambda: counts.order_count_of_customer.load(customer_key),
    )


async def prefetch_children(info: Info, customers: Sequence[Customer]) -> None:
    """Fill what the selection asks of `customers` with one query per kind, before they resolve.

    The executor then serves each customer's identities, subscriptions and orders (with their
    lines) as plain values: at a hundred customers, a resolver call per customer costs more
    than the queries. What cannot be told in advance is left to the resolvers.
    """
    if not customers:
        return
    context = info.context
    keys = [customer.key for customer in customers]
    if selects(info, "edges", "node", "identities"):
        identities = await context.run(identities_by_customer, keys)
        for customer in customers:
            customer.prefilled_identities = [
                CustomerIdentity.from_row(row) for row in identities[customer.key]
            ]
    if selects(info, "edges", "node", "subscriptions"):
        subscriptions = await context.run(subscriptions_by_customer, keys)
        for customer in customers:
            customer.prefilled_subscriptions = [
                Subscription.from_row(row) for row in subscriptions[customer.key]
            ]
    if selects(info, "edges", "node", "risk"):
        # Loaded up front, every customer's `risk` resolves at once from the loader's cache.
        await context.loaders.risk_of_customer.load_many(keys)
    await _prefill_orders(info, customers)


async def _prefill_orders(info: Info, customers: Sequence[Customer]) -> None:
    """Each `orders` selection's page for every customer: one query per distinct page."""
    context = info.context
    fragments = info._raw_info.fragments
    # Fields of one response name are merged: one set of arguments, selections combined.
    nodes_by_name: dict[str, list[FieldNode]] = defaultdict(list)
    for node in fields_at(info, "edges", "node", "orders"):
        nodes_by_name[(node.alias or node.name).value].append(node)
    pages: dict[str, OrderPage] = {}
    with_lines: set[OrderPage] = set()
    for name, nodes in nodes_by_name.items():
        page = _written_order_page(nodes[0], info.variable_values)
        if page is None:
            continue
        pages[name] = page
        if any(node_selects(node, fragments, "edges", "node", "lines") for node in nodes):
            with_lines.add(page)
    if not pages:
        return
    keys = [customer.key for customer in customers]
    rows: dict[OrderPage, dict[uuid.UUID, Page[OrderRow]]] = {}
    for page in dict.fromkeys(pages.values()):
        rows[page] = await context.run(orders_by_customer, keys, page.request, sort=page.sort)
    lines: dict[uuid.UUID, list[OrderLineRow]] = {}
    order_ids = [
        order.id for page in with_lines for found in rows[page].values() for order in found.items
    ]
    if order_ids:
        lines = await context.run(lines_by_order, list(dict.fromkeys(order_ids)))
    for customer in customers:
        filled: dict[str, Connection[Order]] = {}
        for name, page in pages.items():
            connection = orders_connection(context, customer.key, page, rows[page][customer.key])
            if page in with_lines:
                for edge in connection.edges:
                    edge.node.prefilled_lines = edge.node._lines(lines[edge.node.key])
            filled[name] = connection
        customer.prefilled_orders = filled


@strawberry.type(description="One customer absorbed into another by staff, undoable exactly.")
class CustomerMerge:
    id: strawberry.ID = strawberry.field(description="Give it to `unmergeCustomer`.")
    absorbed_customer_id: strawberry.ID = strawberry.field(
        description="The absorbed customer's ID: unknown while merged, its own again after."
    )
    identity_ids: list[strawberry.ID] = strawberry.field(
        description="The absorbed customer's identities that moved."
    )
    actor: str | None = strawberry.field(description="Who merged, as the audit log names them.")
    merged_at: datetime
    unmerged_at: datetime | None
    survivor_key: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: MergeRow) -> "CustomerMerge":
        return cls(
            id=encode_id("CustomerMerge", row.id),
            absorbed_customer_id=encode_id("Customer", row.absorbed_id),
            identity_ids=[encode_id("CustomerIdentity", key) for key in row.identity_ids],
            actor=row.actor,
            merged_at=row.merged_at,
            unmerged_at=row.unmerged_at,
            survivor_key=row.survivor_id,
        )

    @field("The customer that absorbed the other one.")
    async def survivor(self, info: Info) -> Customer | None:
        row = await info.context.loaders.customer.load(self.survivor_key)
        return None if row is None else Customer.from_row(row)


@strawberry.type(
    description="An identity whose contact data came to match another customer's: staff may "
    "merge the two with `mergeCustomers`."
)
class MergeSuggestion:
    matched: str = strawberry.field(description='"email" or "phone".')
    matched_identity_id: strawberry.ID
    suggested_at: datetime
    customer_key: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: Suggestion) -> "MergeSuggestion":
        return cls(
            matched=row.matched,
            matched_identity_id=encode_id("CustomerIdentity", row.identity_id),
            suggested_at=row.at,
            customer_key=row.customer_id,
        )

    @field("The customer the identity now matches.")
    async def customer(self, info: Info) -> Customer | None:
        row = await info.context.loaders.customer.load(self.customer_key)
        return None if row is None else Customer.from_row(row)


@strawberry.type(name="IdentityEvidence", description="Why an identity belongs to its customer.")
class IdentityEvidenceType:
    identity_id: strawberry.ID
    matched: str | None = strawberry.field(
        description='Linked at ingest by a shared "email" or "phone"; null otherwise.'
    )
    matched_identity_id: strawberry.ID | None = strawberry.field(
        description="The identity it shared the email or phone with."
    )
    linked_at: datetime | None
    other_candidate_ids: list[strawberry.ID] = strawberry.field(
        description="Other customers that matched too; the oldest matching one was chosen."
    )
    merge_id: strawberry.ID | None = strawberry.field(
        description="The staff merge that brought it here, if any."
    )
    suggestion: MergeSuggestion | None

    @classmethod
    def from_row(cls, row: IdentityEvidence) -> "IdentityEvidenceType":
        return cls(
            identity_id=encode_id("CustomerIdentity", row.identity_id),
            matched=row.matched,
            matched_identity_id=None
            if row.matched_identity_id is None
            else encode_id("CustomerIdentity", row.matched_identity_id),
            linked_at=row.linked_at,
            other_candidate_ids=[encode_id("Customer", key) for key in row.other_candidates],
            merge_id=None if row.merge_id is None else encode_id("CustomerMerge", row.merge_id),
            suggestion=None if row.suggestion is None else MergeSuggestion.from_row(row.suggestion),
        )
