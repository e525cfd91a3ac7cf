"""DataLoader builders: one query per batch of keys, whatever the number of parents."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, TypeGuard, TypeVar

from strawberry.dataloader import DataLoader

from domain.db import AsyncSession
from domain.ids import ShopId

if TYPE_CHECKING:
    from api.context import Context

V = TypeVar("V")
T = TypeVar("T")

Fetch = Callable[[AsyncSession, ShopId, Collection[uuid.UUID]], Awaitable[Mapping[uuid.UUID, V]]]


def by_key(context: "Context", fetch: Fetch[V]) -> DataLoader[uuid.UUID, V | None]:
    """Loads rows by their own id; an id the shop does not have loads as None."""

    async def load(keys: list[uuid.UUID]) -> list[V | None]:
        found = await context.run(fetch, keys)
        return [found.get(key) for key in keys]

    return DataLoader(load_fn=load)


def grouped(context: "Context", fetch: Fetch[list[V]]) -> DataLoader[uuid.UUID, list[V]]:
    """Loads the children of each parent id (`[]` for none)."""

    async def load(keys: list[uuid.UUID]) -> list[list[V]]:
        found = await context.run(fetch, keys)
        return [found.get(key, []) for key in keys]

    return DataLoader(load_fn=load)


def loaded(pending: Awaitable[V]) -> TypeGuard["asyncio.Future[V]"]:
    """Whether a DataLoader result is already there (its batch was preloaded)."""
    return isinstance(pending, asyncio.Future) and pending.done() and pending.exception() is None


def now_or_later(pending: Awaitable[V], convert: Callable[[V], T]) -> T | Awaitable[T]:
    """`convert` of a DataLoader result: at once when already loaded, else once it is.

    A parent that preloads its children's batch (`load_many`) lets every child resolve
    synchronously, sparing GraphQL an await per child.
    """
    if loaded(pending):
        return convert(pending.result())

    async def later() -> T:
        return convert(await pending)

    return later()
