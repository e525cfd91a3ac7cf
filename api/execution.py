"""A faster path through graphql-core for fields whose values are already there.

A page of customers with their orders and lines has thousands of fields that are attributes of
the object being completed: leaves (`title`, `orderedAt` …), objects (`total`, `node`,
`pageInfo`) and lists of objects (`edges`). For each, graphql-core builds a resolve-info
object, calls the resolver through strawberry's wrapper and walks its generic completion; that
is most of a large read's time. `PlainFieldExecutor` serves the fields `api.plans` planned
itself, in two ways:

- a selection made only of planned fields (and `__typename`), all the way down, is completed in
  one pass over its objects, with no paths, awaitables or resolve-info objects;
- otherwise each planned field is read and completed in place, and the rest goes to
  graphql-core.

Anything else — resolvers, abstract types, middleware, `@defer` — and anything unusual about a
value (null where refused or where a resolver may still fill it, a value a scalar refuses or
of the wrong type, an error) goes through graphql-core's own path from the object it was found
in, so results and errors are the same; `tests/api/test_execution.py` compares both executors.
"""

from typing import Any, NamedTuple

from graphql import GraphQLNonNull, GraphQLObjectType, GraphQLOutputType
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.plans import EXACT_TYPES, LEAF, OBJECT, Plan, Read, Step, steps

# A leaf served as it is when of exactly the Python type in `Served.inner`.
EXACT = "exact"


class Served(NamedTuple):
    """One field of a selection completed in one pass (see `_complete`)."""

    response_name: str
    read: Read
    kind: str
    # None is not a value here: the field is non-null, or a resolver may still fill it.
    strict: bool
    # The serializer of a leaf, the Python type of an exact leaf, or the selection of an
    # object or list.
    inner: Any
    is_type_of: Any


Selection = tuple[Served, ...]


class Unusual(Exception):
    """A value the one-pass completion leaves to graphql-core."""


def _complete(selection: Selection, source: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for response_name, read, kind, strict, inner, is_type_of in selection:
        value = read(source)
        if value is None:
            if strict:
                raise Unusual
            result[response_name] = None
        elif kind == EXACT:
            if type(value) is not inner:
                raise Unusual
            result[response_name] = value
        elif kind == LEAF:
            served = inner(value)
            if served is None:
                raise Unusual
            result[response_name] = served
        elif kind == OBJECT:
            if is_type_of is not None and not is_type_of(value, None):
                raise Unusual
            result[response_name] = _complete(inner, value)
        else:
            result[response_name] = _complete_list(inner, is_type_of, value)
    return result


def _typename(name: str) -> Read:
    def read(_: Any) -> str:
        return name

    return read


def _complete_list(selection: Selection, is_type_of: Any, values: Any) -> list[dict[str, Any]]:
    if not isinstance(values, list | tuple):
        raise Unusual
    items: list[dict[str, Any]] = []
    for value in values:
        if value is None or (is_type_of is not None and not is_type_of(value, None)):
            raise Unusual
        items.append(_complete(selection, value))
    return items


class PlainFieldExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per selection (graphql-core keeps each grouped field set and field list alive for
        # the operation, so their ids are not reused while these are).
        self._steps: dict[int, tuple[GroupedFieldSet, list[Step]]] = {}
        self._selections: dict[
            tuple[GraphQLObjectType, int], tuple[FieldDetailsList, Selection | None]
        ] = {}

    def _steps_of(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> list[Step]:
        key = id(grouped_field_set)
        known = self._steps.get(key)
        if known is None or known[0] is not grouped_field_set:
            known = self._steps[key] = (grouped_field_set, steps(parent_type, grouped_field_set))
        return known[1]

    def _selection(
        self, type_: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> Selection | None:
        """The selection below a field when one pass can complete it, else None."""
        key = (type_, id(field_details_list))
        known = self._selections.get(key)
        if known is None or known[0] is not field_details_list:
            known = (field_details_list, self._one_pass(type_, field_details_list))
            self._selections[key] = known
        return known[1]

    def _one_pass(
        self, type_: GraphQLObjectType, field_details_list: FieldDetailsList
    ) -> Selection | None:
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(type_, field_details_list)
        if new_defer_usages:
            return None
        served: list[Served] = []
        for response_name, details, plan, read, serializer in self._steps_of(
            type_, grouped_field_set
        ):
            if plan is None or read is None:
                if details[0].node.name.value != "__typename":
                    return None
                served.append(Served(response_name, _typename(type_.name), EXACT, True, str, None))
                continue
            strict = plan.non_null or plan.prefilled
            if plan.kind == LEAF:
                exact = EXACT_TYPES.get(plan.type.name)
                if exact is not None:
                    served.append(Served(response_name, read, EXACT, strict, exact, None))
                else:
                    served.append(Served(response_name, read, LEAF, strict, serializer, None))
                continue
            assert isinstance(plan.type, GraphQLObjectType)
            below = self._selection(plan.type, details)
            if below is None:
                return None
            served.append(
                Served(response_name, read, plan.kind, strict, below, plan.type.is_type_of)
            )
        return tuple(served)

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
        if (manager is not None and manager.middlewares) or position_context is not None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for step in self._steps_of(parent_type, grouped_field_set):
                response_name, field_details_list, plan, read, serializer = step
                result: Any = Undefined
                if serializer is not None:
                    assert read is not None
                    try:
                        value = read(source_value)
                    except Exception:
                        value = Undefined
                    if value is None:
                        if not (plan is not None and (plan.non_null or plan.prefilled)):
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
                    result = self._serve(step, plan, source_value, path, parent_type)
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
        step: Step,
        plan: Plan,
        source: Any,
        path: Path | None,
        parent_type: GraphQLObjectType,
    ) -> Any:
        """An object or list field's completed value, or `Undefined` to leave it to graphql-core."""
        response_name, field_details_list, _, read, _ = step
        assert read is not None
        try:
            value = read(source)
        except Exception:
            return Undefined
        if value is None:
            # Null where refused, or a prefilled field not filled: graphql-core decides.
            return Undefined if plan.non_null or plan.prefilled else None
        type_ = plan.type
        assert isinstance(type_, GraphQLObjectType)
        selection = self._selection(type_, field_details_list)
        if selection is not None:
            try:
                if plan.kind == OBJECT:
                    if type_.is_type_of is None or type_.is_type_of(value, None):  # type: ignore[arg-type]
                        return _complete(selection, value)
                else:
                    return _complete_list(selection, type_.is_type_of, value)
            except Exception:
                # Anything unusual below: graphql-core's path answers it, errors and all.
                pass
        field_path = Path(path, response_name, parent_type.name)
        if plan.kind == OBJECT:
            if not _is_type_of(type_, value):
                return Undefined
            return self._object(type_, field_details_list, field_path, value, plan.non_null)
        return self._list(type_, field_details_list, field_path, value)

    def _list(
        self,
        type_: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        field_path: Path,
        value: Any,
    ) -> Any:
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
