"""`node(id)` and `nodes(ids)`: any object by its global ID.

A foreign shop's ID answers exactly as an unknown one does (null): lookups are scoped to the
caller's shop, so there is no way to learn whether another shop's object exists.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import strawberry

from api.connection.types import StoreConnection
from api.context import Context, Info
from api.customer.types import Customer, CustomerIdentity
from api.fields import field
from api.order.types import Order
from api.permissions import require_node_access
from api.relay import Node, decode_id
from api.shop.types import ApiKey, Shop
from api.subscription.types import Subscription
from domain.errors import InvalidInput
from domain.shop.service import get_api_key, require_shop

MAX_NODES = 100


async def _shop(context: Context, key: uuid.UUID) -> Node | None:
    if key != context.shop_id:
        return None
    return Shop.from_model(await context.run(require_shop))


async def _api_key(context: Context, key: uuid.UUID) -> Node | None:
    api_key = await context.run(get_api_key, key)
    return None if api_key is None else ApiKey.from_model(api_key)


async def _connection(context: Context, key: uuid.UUID) -> Node | None:
    row = await context.loaders.connection.load(key)
    return None if row is None else StoreConnection.from_row(row)


async def _customer(context: Context, key: uuid.UUID) -> Node | None:
    row = await context.loaders.customer.load(key)
    return None if row is None else Customer.from_row(row)


async def _identity(context: Context, key: uuid.UUID) -> Node | None:
    row = await context.loaders.identity.load(key)
    return None if row is None else CustomerIdentity.from_row(row)


async def _order(context: Context, key: uuid.UUID) -> Node | None:
    row = await context.loaders.order.load(key)
    return None if row is None else Order.from_row(row)


async def _subscription(context: Context, key: uuid.UUID) -> Node | None:
    row = await context.loaders.subscription.load(key)
    return None if row is None else Subscription.from_row(row)


NODE_TYPES: dict[str, Callable[[Context, uuid.UUID], Awaitable[Node | None]]] = {
    "Shop": _shop,
    "ApiKey": _api_key,
    "StoreConnection": _connection,
    "Customer": _customer,
    "CustomerIdentity": _identity,
    "Order": _order,
    "Subscription": _subscription,
}


async def _nothing() -> None:
    return None


def locate(context: Context, global_id: str, *, field: str = "id") -> Awaitable[Node | None]:
    """The lookup of one node; a malformed ID or a type the role may not read raises now."""
    type_name, key = decode_id(global_id, field=field)
    load = NODE_TYPES.get(type_name)
    if load is None:
        # Well-formed but of no type we serve: as unknown as a missing object.
        return _nothing()
    require_node_access(context.role, type_name)
    return load(context, key)


@strawberry.type
class NodeQuery:
    @field("Any object by its global ID; null when the shop has no such object.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await locate(info.context, id)

    @field(f"Several objects by global ID (at most {MAX_NODES}), in the order asked.")
    async def nodes(self, info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise InvalidInput(f"at most {MAX_NODES} ids, not {len(ids)}", field="ids")
        # Every ID is checked before any lookup starts; the lookups then batch per type.
        lookups = [locate(info.context, value, field="ids") for value in ids]
        return list(await asyncio.gather(*lookups))
