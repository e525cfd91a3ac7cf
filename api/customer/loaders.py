import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from api.batching import by_key, grouped
from domain.customer.evidence import (
    IdentityEvidence,
    MergeRow,
    evidence_of_customers,
    merges_of_customers,
)
from domain.customer.service import (
    CustomerRow,
    IdentityRow,
    get_customers,
    get_identities,
    identities_by_customer,
)

if TYPE_CHECKING:
    from api.context import Context


def customers(context: "Context") -> DataLoader[uuid.UUID, CustomerRow | None]:
    return by_key(context, get_customers)


def identities(context: "Context") -> DataLoader[uuid.UUID, IdentityRow | None]:
    return by_key(context, get_identities)


def identities_of_customer(context: "Context") -> DataLoader[uuid.UUID, list[IdentityRow]]:
    return grouped(context, identities_by_customer)


def merges_of_customer(context: "Context") -> DataLoader[uuid.UUID, list[MergeRow]]:
    return grouped(context, merges_of_customers)


def evidence_of_customer(context: "Context") -> DataLoader[uuid.UUID, list[IdentityEvidence]]:
    return grouped(context, evidence_of_customers)
