import uuid

import strawberry

from api.context import Info
from api.customer.types import Customer, MergeSuggestion, prefetch_children
from api.fields import field
from api.relay import Connection, decode_id_of, encode_id, page_request, to_connection
from domain.customer.service import (
    CUSTOMER_SORTS,
    CustomerSort,
    RiskFilter,
    count_customers,
    list_customers,
)
from domain.customer.suggestions import (
    SUGGESTION_SORT,
    SuggestionRow,
    count_merge_suggestions,
    list_merge_suggestions,
)
from domain.risk.bands import Band
from domain.risk.signs import Sign


@strawberry.type(
    description="An identity of one customer whose contact data now matches another customer: "
    "merge the two with `mergeCustomers`, or leave them apart."
)
class OpenMergeSuggestion:
    identity_id: strawberry.ID
    suggestion: MergeSuggestion
    customer_key: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: SuggestionRow) -> "OpenMergeSuggestion":
        return cls(
            identity_id=encode_id("CustomerIdentity", row.id),
            suggestion=MergeSuggestion.from_row(row.suggestion),
            customer_key=row.customer_id,
        )

    @field("The customer the identity belongs to now.")
    async def customer(self, info: Info) -> Customer | None:
        row = await info.context.loaders.customer.load(self.customer_key)
        return None if row is None else Customer.from_row(row)


@strawberry.type
class CustomerQuery:
    @field(
        "The shop's customers. `query` matches part of the name or email (any case) or "
        "exactly a mall's customer id. `riskBands` keeps customers whose current score is in "
        "one of the bands; `signs` those whose current score shows one of the signs (strength "
        "0.5 or more). Sorted by `RISK`, customers without a score come last either way."
    )
    async def customers(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        query: str | None = None,
        sort_key: CustomerSort = CustomerSort.CREATED_AT,
        reverse: bool = False,
        risk_bands: list[Band] | None = None,
        signs: list[Sign] | None = None,
    ) -> Connection[Customer]:
        column = CUSTOMER_SORTS[sort_key]
        request = page_request(
            first=first,
            after=after,
            last=last,
            before=before,
            sort_key=sort_key.name,
            column=column,
            reverse=reverse,
        )
        risk = RiskFilter(frozenset(risk_bands or ()), frozenset(signs or ()))
        context = info.context
        page = await context.run(list_customers, request, sort=sort_key, search=query, risk=risk)
        connection = to_connection(
            page,
            sort_key=sort_key.name,
            column=column,
            node=Customer.from_row,
            count=lambda: context.run(count_customers, search=query, risk=risk),
        )
        await prefetch_children(info, [edge.node for edge in connection.edges])
        return connection

    @field("A customer of the shop; null for an unknown ID.")
    async def customer(self, info: Info, id: strawberry.ID) -> Customer | None:
        row = await info.context.loaders.customer.load(decode_id_of(id, "Customer"))
        return None if row is None else Customer.from_row(row)

    @field(
        "Open merge suggestions of the whole shop, oldest identity first: identities whose "
        "email or phone came to match another customer after they were linked."
    )
    async def merge_suggestions(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[OpenMergeSuggestion]:
        request = page_request(
            first=first,
            after=after,
            last=None,
            before=None,
            sort_key="MERGE_SUGGESTIONS",
            column=SUGGESTION_SORT,
        )
        context = info.context
        page = await context.run(list_merge_suggestions, request)
        return to_connection(
            page,
            sort_key="MERGE_SUGGESTIONS",
            column=SUGGESTION_SORT,
            node=OpenMergeSuggestion.from_row,
            count=lambda: context.run(count_merge_suggestions),
        )
