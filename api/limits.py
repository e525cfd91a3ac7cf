"""What a document may ask for, checked before anything executes.

- tokens: `max_query_tokens`, enforced by the parser;
- depth: `max_query_depth` levels of nested fields (introspection, admin-only, not counted);
- aliases: `max_aliases` per operation;
- cost: every selected field costs 1, and a connection multiplies the cost of what it selects
  by its page size (`first` or `last`, 1 to 100, required), as `nodes(ids:)` does by the
  number of IDs; the total may not exceed `max_query_cost`.

Parsing and the variable-independent rules are cached per query text and role. The cost
depends on variables (`first: $n`), so it is computed per request, still before execution.
"""

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    ValueNode,
    VariableNode,
    get_named_type,
    parse,
    specified_rules,
    validate,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from api.errors import QUERY_TOO_COMPLEX
from api.permissions import ROLE_RULES
from domain.errors import ErrorCode
from domain.pagination import MAX_PAGE_SIZE
from domain.settings import Settings
from domain.shop.models import Role

CACHE_SIZE = 512
Selectable = OperationDefinitionNode | FragmentDefinitionNode | FieldNode | InlineFragmentNode


def _fields(
    owner: Selectable, fragments: Mapping[str, FragmentDefinitionNode], seen: frozenset[str]
) -> Iterator[tuple[FieldNode, frozenset[str]]]:
    """The fields selected directly under `owner`, through fragments (each once per path)."""
    selection_set: SelectionSetNode | None = owner.selection_set
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection, seen
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                yield from _fields(fragment, fragments, seen | {name})


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def _depth(
    owner: Selectable, fragments: Mapping[str, FragmentDefinitionNode], seen: frozenset[str]
) -> int:
    deepest = 0
    for field, path in _fields(owner, fragments, seen):
        if field.name.value.startswith("__"):
            continue
        deepest = max(deepest, 1 + _depth(field, fragments, path))
    return deepest


def _aliases(
    owner: Selectable, fragments: Mapping[str, FragmentDefinitionNode], seen: frozenset[str]
) -> int:
    return sum(
        (1 if field.alias else 0) + _aliases(field, fragments, path)
        for field, path in _fields(owner, fragments, seen)
    )


def _too_complex(message: str, node: OperationDefinitionNode) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": QUERY_TOO_COMPLEX})


def depth_rule(max_depth: int) -> type[ValidationRule]:
    class DepthRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
            depth = _depth(node, _fragments(self.context.document), frozenset())
            if depth > max_depth:
                self.report_error(
                    _too_complex(
                        f"the query is {depth} levels deep; the limit is {max_depth}", node
                    )
                )

    return DepthRule


def alias_rule(max_aliases: int) -> type[ValidationRule]:
    class AliasRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
            count = _aliases(node, _fragments(self.context.document), frozenset())
            if count > max_aliases:
                self.report_error(
                    _too_complex(
                        f"the query uses {count} aliases; the limit is {max_aliases}", node
                    )
                )

    return AliasRule


class CostError(Exception):
    def __init__(self, message: str, code: str, node: FieldNode | OperationDefinitionNode) -> None:
        super().__init__(message)
        self.error = GraphQLError(message, node, extensions={"code": code})


@dataclass(frozen=True)
class CostModel:
    """Which fields multiply the cost of their selection, and by which argument."""

    schema: GraphQLSchema
    # (parent type, field) of every Relay connection field.
    connections: frozenset[tuple[str, str]]
    # (parent type, field, list argument) of fields that fetch one object per list item.
    lists: frozenset[tuple[str, str, str]]

    @classmethod
    def of(cls, schema: GraphQLSchema) -> "CostModel":
        connections: set[tuple[str, str]] = set()
        for type_ in schema.type_map.values():
            if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
                for name, field in type_.fields.items():
                    target = get_named_type(field.type)
                    if isinstance(target, GraphQLObjectType) and "pageInfo" in target.fields:
                        connections.add((type_.name, name))
        query = schema.query_type.name if schema.query_type else "Query"
        return cls(schema, frozenset(connections), frozenset({(query, "nodes", "ids")}))

    def cost(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, object],
    ) -> int:
        """The operation's cost; raises `CostError` for a missing or out-of-range page size."""
        values = dict(variables)
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in values and definition.default_value is not None:
                values[name] = _literal(definition.default_value, {})
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        return self._selection(operation, root, _fragments(document), values, frozenset())

    def _selection(
        self,
        owner: Selectable,
        parent: GraphQLNamedType,
        fragments: Mapping[str, FragmentDefinitionNode],
        values: Mapping[str, object],
        seen: frozenset[str],
    ) -> int:
        total = 0
        for selection in owner.selection_set.selections if owner.selection_set else ():
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, fragments, values, seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self._selection(selection, target or parent, fragments, values, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:
                    target = self.schema.get_type(fragment.type_condition.name.value)
                    total += self._selection(
                        fragment, target or parent, fragments, values, seen | {name}
                    )
        return total

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType,
        fragments: Mapping[str, FragmentDefinitionNode],
        values: Mapping[str, object],
        seen: frozenset[str],
    ) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 1
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 1
        definition = parent.fields.get(name)
        if definition is None:
            return 1
        child = self._selection(node, get_named_type(definition.type), fragments, values, seen)
        arguments = {argument.name.value: argument.value for argument in node.arguments or ()}
        if (parent.name, name) in self.connections:
            return 1 + _page_size(node, arguments, values) * max(child, 1)
        for type_name, field_name, argument in self.lists:
            if (type_name, field_name) == (parent.name, name) and argument in arguments:
                items = _literal(arguments[argument], values)
                count = len(items) if isinstance(items, list) else 1
                return 1 + count * max(child, 1)
        return 1 + child


def _literal(value: ValueNode, variables: Mapping[str, object]) -> object:
    if isinstance(value, VariableNode):
        return variables.get(value.name.value)
    if isinstance(value, IntValueNode):
        return int(value.value)
    if isinstance(value, ListValueNode):
        return [_literal(item, variables) for item in value.values]
    if isinstance(value, NullValueNode):
        return None
    return getattr(value, "value", None)


def _page_size(
    node: FieldNode, arguments: Mapping[str, ValueNode], variables: Mapping[str, object]
) -> int:
    first = _literal(arguments["first"], variables) if "first" in arguments else None
    last = _literal(arguments["last"], variables) if "last" in arguments else None
    name = node.name.value
    code = ErrorCode.INVALID_PAGE_SIZE.value
    if first is not None and last is not None:
        raise CostError(f"{name}: pass either first or last, not both", code, node)
    size = first if first is not None else last
    if size is None:
        raise CostError(f"{name} needs first or last (1 to {MAX_PAGE_SIZE})", code, node)
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_PAGE_SIZE:
        which = "first" if first is not None else "last"
        raise CostError(
            f"{name}: {which} must be between 1 and {MAX_PAGE_SIZE}, not {size!r}", code, node
        )
    return size


class Limits:
    """The parse and validation step of one schema, with its caches (built once per app)."""

    def __init__(self, schema: GraphQLSchema, settings: Settings) -> None:
        self.max_tokens = settings.max_query_tokens
        self.max_cost = settings.max_query_cost
        self.cost_model = CostModel.of(schema)
        common = (
            *specified_rules,
            MaybeNullValidationRule,
            OneOfInputValidationRule,
            depth_rule(settings.max_query_depth),
            alias_rule(settings.max_aliases),
        )
        rules = {role: (*common, *extra) for role, extra in ROLE_RULES.items()}

        @lru_cache(maxsize=CACHE_SIZE)
        def parse_query(query: str) -> DocumentNode:
            return parse(query, max_tokens=self.max_tokens, allow_empty_selection_sets=False)

        @lru_cache(maxsize=CACHE_SIZE)
        def validate_query(query: str, role: Role) -> tuple[GraphQLError, ...]:
            document = parse_query(query)
            found = validate(
                schema,
                document,
                rules[role],
                hide_suggestions=True,
                allow_empty_selection_sets=False,
            )
            return tuple(found)

        self.parse = parse_query
        self.validate = validate_query

    def check_cost(
        self,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, object] | None,
    ) -> GraphQLError | None:
        try:
            cost = self.cost_model.cost(document, operation, variables or {})
        except CostError as error:
            return error.error
        if cost > self.max_cost:
            return _too_complex(f"the query costs {cost}; the limit is {self.max_cost}", operation)
        return None


class OperationLimits(SchemaExtension):
    """Parses and validates through the caches of `Limits`, then checks the cost."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.limits.max_tokens
        if context.query is not None and context.graphql_document is None:
            # A syntax error is left to strawberry's own parse, which reports it the usual way.
            with contextlib.suppress(GraphQLError):
                context.graphql_document = self.limits.parse(context.query)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        role: Role = context.context.role
        document = context.graphql_document
        if context.query is None or document is None:
            yield
            return
        errors = list(self.limits.validate(context.query, role))
        if not errors:
            operation = _operation(document, context.operation_name)
            if operation is not None:
                error = self.limits.check_cost(document, operation, context.variables)
                if error is not None:
                    errors.append(error)
        context.pre_execution_errors = errors
        yield


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for operation in operations:
        if name is None or (operation.name is not None and operation.name.value == name):
            return operation
    return None
