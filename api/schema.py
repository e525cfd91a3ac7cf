"""The one place the schema is assembled. `python -m api.schema > schema.graphql` exports it."""

import sys
from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from api.connection.mutations import ConnectionMutation
from api.connection.queries import ConnectionQuery
from api.connection.subscriptions import ConnectionSubscription
from api.customer.mutations import CustomerMutation
from api.customer.queries import CustomerQuery
from api.errors import DomainErrorHandler, ErrorCodes, MaskUnexpectedErrors, log_unexpected
from api.event.subscriptions import EventSubscription
from api.execution import PlainFieldExecutor
from api.limits import Limits, OperationLimits
from api.node import NodeQuery
from api.order.queries import OrderQuery
from api.plans import plan_fields
from api.risk.queries import RiskQuery
from api.risk.subscriptions import RiskSubscription
from api.scalars import SCALARS
from api.shop.mutations import ShopMutation
from api.shop.queries import ShopQuery
from api.unit_of_work import UnitOfWork
from domain.pagination import MAX_PAGE_SIZE
from domain.settings import Settings

Query = merge_types(
    "Query", (ShopQuery, ConnectionQuery, CustomerQuery, OrderQuery, RiskQuery, NodeQuery)
)
Mutation = merge_types(
    "Mutation",
    (
        ShopMutation,
        ConnectionMutation,
        CustomerMutation,
    ),
)
# Not "Subscription": that name is the recurring order (定期購入) type.
SubscriptionRoot = merge_types(
    "SubscriptionRoot", (EventSubscription, ConnectionSubscription, RiskSubscription)
)


class KizukiSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Refused requests are the client's business; only bugs and outages are logged.
        context = execution_context.context if execution_context is not None else None
        log_unexpected(errors, getattr(context, "request_id", None))


def _config() -> StrawberryConfig:
    return StrawberryConfig(
        disable_field_suggestions=True,
        relay_max_results=MAX_PAGE_SIZE,
        scalar_map=SCALARS,
    )


def _assemble(extensions: Sequence[Callable[[], SchemaExtension]] = ()) -> KizukiSchema:
    schema = KizukiSchema(
        query=Query,
        mutation=Mutation,
        subscription=SubscriptionRoot,
        extensions=list(extensions),
        execution_context_class=PlainFieldExecutor,
        config=_config(),
        exception_handlers=[DomainErrorHandler()],
    )
    plan_fields(schema._schema)
    return schema


def build_schema(settings: Settings) -> KizukiSchema:
    """The executable schema: unit of work, limits, error codes, and masking in production."""

    def operation_limits() -> SchemaExtension:
        # `limits` needs the built schema; extensions are only made per operation, later.
        return OperationLimits(limits)

    extensions: list[Callable[[], SchemaExtension]] = []
    if not settings.is_development:
        extensions.append(MaskUnexpectedErrors)
    extensions += [ErrorCodes, UnitOfWork, operation_limits]
    schema = _assemble(extensions)
    limits = Limits(schema._schema, settings)
    return schema


def export_sdl() -> str:
    """The schema in SDL, as committed in `schema.graphql`."""
    return _assemble().as_str() + "\n"


if __name__ == "__main__":
    sys.stdout.write(export_sdl())
