import uuid
from datetime import UTC, datetime
from typing import Annotated

import strawberry

from api.context import Info
from api.customer.types import Customer, CustomerMerge
from api.errors import UserError
from api.fields import mutation
from api.relay import decode_id_of
from domain.customer.evidence import get_merge
from domain.customer.merging import merge_customers, unmerge_customer
from domain.customer.service import get_customers


@strawberry.input
class MergeCustomersInput:
    survivor_id: strawberry.ID = strawberry.field(description="The customer that stays.")
    absorbed_id: strawberry.ID = strawberry.field(
        description="The customer that goes into the survivor: its ID stops resolving."
    )


@strawberry.type
class MergeCustomersPayload:
    merge: CustomerMerge
    survivor: Customer


@strawberry.input
class UnmergeCustomerInput:
    merge_id: strawberry.ID = strawberry.field(description="A `CustomerMerge` ID.")


@strawberry.type
class UnmergeCustomerPayload:
    merge: CustomerMerge
    survivor: Customer
    restored: Customer = strawberry.field(description="The absorbed customer, back as it was.")


MergeCustomersResult = Annotated[
    MergeCustomersPayload | UserError, strawberry.union("MergeCustomersResult")
]
UnmergeCustomerResult = Annotated[
    UnmergeCustomerPayload | UserError, strawberry.union("UnmergeCustomerResult")
]


async def _customers(info: Info, *ids: uuid.UUID) -> list[Customer]:
    rows = await info.context.run(get_customers, ids)
    return [Customer.from_row(rows[key]) for key in ids]


@strawberry.type
class CustomerMutation:
    @mutation(
        "Merge two customers of the shop into one: the absorbed customer's identities, orders, "
        "subscriptions, consents and tasks move to the survivor. Undo with `unmergeCustomer`."
    )
    async def merge_customers(self, info: Info, input: MergeCustomersInput) -> MergeCustomersResult:
        context = info.context
        survivor_id = decode_id_of(input.survivor_id, "Customer", field="survivor_id")
        merge = await context.run(
            merge_customers,
            survivor_id,
            decode_id_of(input.absorbed_id, "Customer", field="absorbed_id"),
            actor=context.principal.actor,
            now=datetime.now(UTC),
            jobs=context.jobs,
        )
        row = await context.run(get_merge, merge.id)
        [survivor] = await _customers(info, survivor_id)
        return MergeCustomersPayload(merge=CustomerMerge.from_row(row), survivor=survivor)

    @mutation(
        "Undo a merge exactly: the absorbed customer comes back under its own ID with its "
        "identities and everything bought through them, also what arrived while merged."
    )
    async def unmerge_customer(
        self, info: Info, input: UnmergeCustomerInput
    ) -> UnmergeCustomerResult:
        context = info.context
        merge = await context.run(
            unmerge_customer,
            decode_id_of(input.merge_id, "CustomerMerge", field="merge_id"),
            actor=context.principal.actor,
            now=datetime.now(UTC),
            jobs=context.jobs,
        )
        row = await context.run(get_merge, merge.id)
        survivor, restored = await _customers(info, merge.survivor_id, merge.absorbed_id)
        return UnmergeCustomerPayload(
            merge=CustomerMerge.from_row(row), survivor=survivor, restored=restored
        )
