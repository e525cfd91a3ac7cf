"""Which fields `api.execution.PlainFieldExecutor` serves itself, and how it reads their values.

A field is planned when its value can be read from the object being completed:

- a plain attribute (strawberry's default resolver);
- a prefilled resolver field: the attribute where a parent may have put the value already (see
  `api.fields.field`); None there means "not filled: call the resolver". For a field with
  arguments the attribute maps response names to values: validation gives each response name
  one set of arguments, so the parent can fill each as written;
- a computed field: a synchronous method of the object with neither `info` nor arguments, such
  as a cursor encoded from the object's own data. It only reads its object, so calling it again
  when falling back to graphql-core is harmless.

Resolvers with field extensions (permissions among them) are never planned.
"""

from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, NamedTuple

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from strawberry.resolvers import is_default_resolver
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

PLAN = "kizuki-plan"
# A resolver field whose value a parent may have loaded already, in this attribute.
PREFILLED = "kizuki-prefilled"
LEAF, OBJECT, OBJECTS = "leaf", "object", "objects"

Read = Callable[[Any], Any]


class Plan(NamedTuple):
    kind: str
    non_null: bool
    type: GraphQLScalarType | GraphQLEnumType | GraphQLObjectType
    # How to read the value from the object; a prefilled mapping is read per response name.
    read: Read
    attribute: str = ""
    # The value was preloaded for a resolver field; None means "resolve it".
    prefilled: bool = False
    by_response_name: bool = False


class Step(NamedTuple):
    """One field of a selection, with how to serve it (`plan` None: graphql-core's way)."""

    response_name: str
    field_details_list: FieldDetailsList
    plan: Plan | None
    read: Read | None
    # For leaves: a serializer returning None for anything it does not pass as is.
    serializer: Callable[[Any], Any] | None


def plan_fields(schema: GraphQLSchema) -> int:
    """Mark every field the executor can serve itself with its plan; returns how many."""
    marked = 0
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for field in type_.fields.values():
            plan = _plan(field)
            if plan is not None:
                field.extensions = {**(field.extensions or {}), PLAN: plan}
                marked += 1
    return marked


def _plain_object(type_: object) -> GraphQLObjectType | None:
    return type_ if isinstance(type_, GraphQLObjectType) else None


def _method(definition: StrawberryField) -> Read | None:
    """The resolver as a function of the object alone, when it is one."""
    resolver = definition.base_resolver
    if (
        resolver is None
        or resolver.is_async
        or definition.extensions
        or definition.arguments
        or resolver.self_parameter is None
        # `self` alone: no info, root, parent or argument.
        or len(resolver.signature.parameters) != 1
    ):
        return None
    method = resolver.wrapped_func
    return method if callable(method) else None


def _reader(field: GraphQLField, definition: StrawberryField) -> tuple[Read, str, bool] | None:
    """(how to read, attribute, prefilled) for a field the executor may serve."""
    metadata: Mapping[str, object] = definition.metadata or {}
    prefilled = metadata.get(PREFILLED)
    if isinstance(prefilled, str):
        return attrgetter(prefilled), prefilled, True
    if field.args:
        return None
    if field.resolve is not None and is_default_resolver(field.resolve):
        return attrgetter(definition.python_name), definition.python_name, False
    method = _method(definition)
    return None if method is None else (method, definition.python_name, False)


def _plan(field: GraphQLField) -> Plan | None:
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or field.resolve is None:
        return None
    reader = _reader(field, definition)
    if reader is None:
        return None
    read, attribute, prefilled = reader
    by_response_name = prefilled and bool(field.args)
    target = field.type
    non_null = isinstance(target, GraphQLNonNull)
    if isinstance(target, GraphQLNonNull):
        target = target.of_type
    kind: str | None = None
    named: GraphQLScalarType | GraphQLEnumType | GraphQLObjectType | None = None
    if isinstance(target, GraphQLScalarType | GraphQLEnumType):
        kind, named = LEAF, target
    elif (plain := _plain_object(target)) is not None:
        kind, named = OBJECT, plain
    elif (
        non_null
        and isinstance(target, GraphQLList)
        and isinstance(target.of_type, GraphQLNonNull)
        and (plain := _plain_object(target.of_type.of_type)) is not None
    ):
        kind, named = OBJECTS, plain
    if kind is None or named is None:
        return None
    return Plan(kind, non_null, named, read, attribute, prefilled, by_response_name)


# Serializers that pass the common Python types through unchanged (graphql-core would return
# them unchanged too); anything else gets the scalar's own coercion.
_INT32 = range(-(2**31), 2**31)


def _as_str(value: Any) -> Any:
    return value if type(value) is str else None


def _as_bool(value: Any) -> Any:
    return value if type(value) is bool else None


def _as_int(value: Any) -> Any:
    return value if type(value) is int and value in _INT32 else None


_PASS_THROUGH = {"String": _as_str, "ID": _as_str, "Boolean": _as_bool, "Int": _as_int}
# Scalars whose values of exactly these Python types graphql-core returns unchanged.
EXACT_TYPES: dict[str, type] = {"String": str, "ID": str, "Boolean": bool}


def _by_response_name(attribute: str, response_name: str) -> Read:
    def read(source: Any) -> Any:
        filled: Mapping[str, Any] | None = getattr(source, attribute)
        return None if filled is None else filled.get(response_name)

    return read


def steps(parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> list[Step]:
    """How to serve each field of a selection on `parent_type`."""
    found: list[Step] = []
    for response_name, field_details_list in grouped_field_set.items():
        node = field_details_list[0].node
        field = parent_type.fields.get(node.name.value)
        plan: Plan | None = None if field is None else field.extensions.get(PLAN)
        if plan is not None and node.arguments and not plan.by_response_name:
            plan = None
        read: Read | None = None
        serializer = None
        if plan is not None:
            read = plan.read
            if plan.by_response_name:
                read = _by_response_name(plan.attribute, response_name)
            if isinstance(plan.type, GraphQLScalarType | GraphQLEnumType):
                serializer = _PASS_THROUGH.get(plan.type.name, plan.type.coerce_output_value)
        found.append(Step(response_name, field_details_list, plan, read, serializer))
    return found
