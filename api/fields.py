"""Typed forms of strawberry's field decorators that take a description.

`strawberry.field(description=...)` is typed as returning `Any`, which would leave every
described resolver untyped under mypy's strict mode.
"""

from collections.abc import Callable
from typing import Any, TypeVar, cast

import strawberry

from api.plans import PREFILLED

F = TypeVar("F", bound=Callable[..., Any])


def field(
    description: str, *, graphql_type: object = None, prefilled: str | None = None
) -> Callable[[F], F]:
    """`graphql_type` declares the GraphQL type when the Python one is wider (an awaitable).

    `prefilled` names the attribute where a parent may have put the field's value already;
    the executor then serves it without calling the resolver (see `api.execution`).
    """
    metadata = {PREFILLED: prefilled} if prefilled else None
    return cast(
        Callable[[F], F],
        strawberry.field(description=description, graphql_type=graphql_type, metadata=metadata),
    )


def mutation(description: str) -> Callable[[F], F]:
    return cast(Callable[[F], F], strawberry.mutation(description=description))


def subscription(description: str) -> Callable[[F], F]:
    return cast(Callable[[F], F], strawberry.subscription(description=description))
