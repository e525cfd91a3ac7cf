"""A faster path through graphql-core for plain attributes.

A page of customers with their orders and lines has thousands of fields that are plain
attributes of the object being completed: leaves (`title`, `orderedAt` …), objects (`total`,
`node`, `pageInfo`) and lists of objects (`edges`). For each, graphql-core builds a resolve-info
object, calls the resolver through strawberry's wrapper and walks its generic completion; that
is most of a large read's time. `PlainFieldExecutor` reads such attributes in place and
completes them directly, and serves a resolver field from its `prefilled` attribute when a
parent has loaded its value already (see `api.fields.field`).

Anything else — resolvers, arguments, abstract types, middleware — and anything unusual about a
value (null where refused, a value a scalar refuses or of the wrong type, an error) goes
through graphql-core's own path, so results and errors are the same; `tests/api/
test_execution.py` compares both executors.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.resolvers import is_default_resolver
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

PLAN = "kizuki-plan"
# A resolver field whose value a parent may have loaded already, in this attribute.
PREFILLED = "kizuki-prefilled"
LEAF, OBJECT, OBJECTS = "leaf", "object", "objects"


class Plan(NamedTuple):
    kind: str
    attribute: str
    non_null: bool
    type: GraphQLScalarType | GraphQLEnumType | GraphQLObjectType
    # The attribute holds a value preloaded for a resolver field; None means "resolve it".
    prefilled: bool = False


def plan_fields(schema: GraphQLSchema) -> int:
    """Mark every plain-attribute field with how to serve it; returns how many."""
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


def _plan(field: GraphQLField) -> Plan | None:
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None or field.args or field.resolve is None:
        return None
    prefilled = (definition.metadata or {}).get(PREFILLED)
    if prefilled is None and not is_default_resolver(field.resolve):
        return None
    name: str = prefilled or definition.python_name
    is_prefilled = prefilled is not None
    target = field.type
    non_null = isinstance(target, GraphQLNonNull)
    if isinstance(target, GraphQLNonNull):
        target = target.of_type
    if isinstance(target, GraphQLScalarType | GraphQLEnumType):
        return Plan(LEAF, name, non_null, target, is_prefilled)
    if (plain := _plain_object(target)) is not None:
        return Plan(OBJECT, name, non_null, plain, is_prefilled)
    if (
        non_null
        and isinstance(target, GraphQLList)
        and isinstance(target.of_type, GraphQLNonNull)
        and (plain := _plain_object(target.of_type.of_type)) is not None
    ):
        return Plan(OBJECTS, name, True, plain, is_prefilled)
    return None


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

# (response name, field details, plan or None, fast serializer of a leaf or None)
Step = tuple[str, FieldDetailsList, Plan | None, Callable[[Any], Any] | None]


def _steps(parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> list[Step]:
    steps: list[Step] = []
    for response_name, field_details_list in grouped_field_set.items():
        node = field_details_list[0].node
        field = parent_type.fields.get(node.name.value)
        plan = None if field is None or node.arguments else field.extensions.get(PLAN)
        serializer = None
        if plan is not None and plan.kind == LEAF:
            serializer = _PASS_THROUGH.get(plan.type.name, plan.type.coerce_output_value)
        steps.append((response_name, field_details_list, plan, serializer))
    return steps


class PlainFieldExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per selection (graphql-core keeps each grouped field set alive for the operation).
        self._plans: dict[int, tuple[GroupedFieldSet, list[Step]]] = {}

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        # graphql-core's loop, with planned fields served in place.
        manager = self.middleware_manager
        if manager is not None and manager.middlewares:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        key = id(grouped_field_set)
        known = self._plans.get(key)
        if known is None or known[0] is not grouped_field_set:
            known = self._plans[key] = (grouped_field_set, _steps(parent_type, grouped_field_set))
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, plan, serializer in known[1]:
                result: Any = Undefined
                if serializer is not None:
                    assert plan is not None
                    try:
                        value = getattr(source_value, plan.attribute)
                    except Exception:
                        value = Undefined
                    if value is None:
                        if not plan.non_null:
                            results[response_name] = None
                            continue
                    elif value is not Undefined:
                        try:
                            result = serializer(value)
                        except Exception:
                            result = None
                        if result is not None:
                            results[response_name] = result
                            continue
                        result = Undefined
                elif plan is not None:
                    result = self._serve(
                        plan, source_value, field_details_list, path, response_name, parent_type
                    )
                if result is Undefined:
                    result = self.execute_field(
                        parent_type,
                        source_value,
                        field_details_list,
                        Path(path, response_name, parent_type.name),
                        position_context,
                    )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[name] for name in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                name = awaitable_fields[0]
                results[name] = await results[name]
            else:
                awaited = await gather_with_cancel(*(results[name] for name in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def _serve(
        self,
        plan: Plan,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path | None,
        response_name: str,
        parent_type: GraphQLObjectType,
    ) -> Any:
        """The field's completed value, or `Undefined` to leave it to graphql-core."""
        kind, name, non_null, type_, prefilled = plan
        try:
            value = getattr(source, name)
        except Exception:
            return Undefined
        if value is None:
            # Null where refused, or a prefilled field not filled: graphql-core decides.
            return Undefined if non_null or prefilled else None
        if kind == LEAF:
            try:
                coerced = type_.coerce_output_value(value)  # type: ignore[union-attr]
            except Exception:
                return Undefined
            return Undefined if coerced is None else coerced
        assert isinstance(type_, GraphQLObjectType)
        field_path = Path(path, response_name, parent_type.name)
        if kind == OBJECT:
            if not _is_type_of(type_, value):
                return Undefined
            return self._object(type_, field_details_list, field_path, value, non_null)
        if not isinstance(value, list | tuple) or any(
            item is None or not _is_type_of(type_, item) for item in value
        ):
            return Undefined
        items: list[Any] = []
        try:
            for index, item in enumerate(value):
                items.append(
                    self.collect_and_execute_subfields(
                        type_, field_details_list, Path(field_path, index, None), item, None
                    )
                )
        except Exception:
            # Non-null items in a non-null list: the error travels up, as in graphql-core,
            # and items already started are left to finish (and fail) in the background.
            self.settle_in_background([item for item in items if self.is_awaitable(item)])
            raise
        if not any(self.is_awaitable(item) for item in items):
            return items
        return self._gather_items(items)

    async def _gather_items(self, items: list[Any]) -> list[Any]:
        pending = [item for item in items if self.is_awaitable(item)]
        done = iter(await gather_with_cancel(*pending))
        return [next(done) if self.is_awaitable(item) else item for item in items]

    def _object(
        self,
        type_: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        path: Path,
        value: Any,
        non_null: bool,
    ) -> Any:
        """The object's subfields; an error in a nullable one is caught here, as graphql-core
        catches it at the field (a non-null one's travels up to the parent's field)."""
        return_type: GraphQLOutputType = GraphQLNonNull(type_) if non_null else type_
        try:
            completed = self.collect_and_execute_subfields(
                type_, field_details_list, path, value, None
            )
        except Exception as error:
            self.handle_field_error(error, return_type, field_details_list, path)
            return None
        if not self.is_awaitable(completed):
            return completed

        async def await_completed() -> Any:
            try:
                return await completed
            except Exception as error:
                self.handle_field_error(error, return_type, field_details_list, path)
                return None

        return await_completed()


def _is_type_of(type_: GraphQLObjectType, value: Any) -> bool:
    # Strawberry's `is_type_of` only checks the value's class; it never reads the info.
    return type_.is_type_of is None or bool(type_.is_type_of(value, None))  # type: ignore[arg-type]
