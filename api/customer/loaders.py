import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from api.batching import by_key, grouped
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
