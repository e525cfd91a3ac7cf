"""What each role may do. Checked before execution where the document shows it, else in the
resolver that knows (which node type an ID names, which event topics are asked for).

- ADMIN: everything, including mutations, introspection and GraphiQL.
- ANALYST: every query and subscription; no mutation, no introspection.
- PARTNER: integration work: the shop, its connections and sync/ping events; no customer or
  order data, no mutation, no introspection.
"""

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, ValidationRule

from api.errors import FORBIDDEN, Forbidden
from domain.events import Topic
from domain.shop.models import Role

ADMIN_ONLY_QUERIES = frozenset({"apiKeys"})
PARTNER_DENIED_QUERIES = frozenset(
    {"customers", "customer", "orders", "riskDistribution", "mergeSuggestions"}
)
PARTNER_NODE_TYPES = frozenset({"Shop", "StoreConnection"})
ADMIN_NODE_TYPES = frozenset({"ApiKey"})
PARTNER_TOPICS = frozenset({Topic.SYNC_PROGRESS, Topic.PING})


def _forbidden(message: str, node: FieldNode | OperationDefinitionNode) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": FORBIDDEN})


class NotAdminRule(ValidationRule):
    """For keys that are not admin: no mutations, no introspection, no key management."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        if node.operation == OperationType.MUTATION:
            self.report_error(_forbidden("mutations need an admin API key", node))

    def enter_field(self, node: FieldNode, *_: object) -> None:
        name = node.name.value
        if name in ("__schema", "__type"):
            self.report_error(_forbidden("introspection needs an admin API key", node))
        elif name in ADMIN_ONLY_QUERIES and self._on_query():
            self.report_error(_forbidden(f"{name} needs an admin API key", node))

    def _on_query(self) -> bool:
        parent = self.context.get_parent_type()
        return parent is not None and parent is self.context.schema.query_type


class PartnerRule(ValidationRule):
    """Partner keys read no customer or order listing."""

    def enter_field(self, node: FieldNode, *_: object) -> None:
        name = node.name.value
        parent = self.context.get_parent_type()
        if name in PARTNER_DENIED_QUERIES and parent is self.context.schema.query_type:
            self.report_error(_forbidden(f"{name} is not available to partner API keys", node))


ROLE_RULES: dict[Role, tuple[type[ValidationRule], ...]] = {
    Role.ADMIN: (),
    Role.ANALYST: (NotAdminRule,),
    Role.PARTNER: (NotAdminRule, PartnerRule),
}


def require_node_access(role: Role, type_name: str) -> None:
    """Refuse a node type the role may not read, whether or not that node exists."""
    if type_name in ADMIN_NODE_TYPES and role is not Role.ADMIN:
        raise Forbidden(f"{type_name} nodes need an admin API key")
    if role is Role.PARTNER and type_name not in PARTNER_NODE_TYPES:
        raise Forbidden(f"{type_name} nodes are not available to partner API keys")


def allowed_topics(role: Role) -> frozenset[Topic]:
    return PARTNER_TOPICS if role is Role.PARTNER else frozenset(Topic)
