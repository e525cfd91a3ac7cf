"""What a resolver's selection asks for below it, to load children with their parents.

`@skip`/`@include` are not evaluated: at worst something is loaded and not shown.
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import strawberry
from graphql import (
    BooleanValueNode,
    EnumValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    StringValueNode,
    ValueNode,
    VariableNode,
)

Fragments = Mapping[str, FragmentDefinitionNode]


def fields_at(info: strawberry.Info[Any, Any], *path: str) -> list[FieldNode]:
    """The field nodes at `path` below the field being resolved (through fragments)."""
    raw = info._raw_info
    return _at(raw.field_nodes, path, raw.fragments)


def selects(info: strawberry.Info[Any, Any], *path: str) -> bool:
    """Whether the field being resolved selects `path` (field names, through fragments)."""
    raw = info._raw_info
    # Sibling fields share their AST node: answer once per node and path per operation.
    memo: dict[tuple[int, tuple[str, ...]], bool] = info.context.lookahead
    key = (id(raw.field_nodes[0]), path)
    found = memo.get(key)
    if found is None:
        found = memo[key] = bool(_at(raw.field_nodes, path, raw.fragments))
    return found


def node_selects(node: FieldNode, fragments: Fragments, *path: str) -> bool:
    return bool(_at((node,), path, fragments))


def _at(nodes: Iterable[FieldNode], path: tuple[str, ...], fragments: Fragments) -> list[FieldNode]:
    found = list(nodes)
    for name in path:
        found = [
            child
            for node in found
            for child in _children(node, fragments, frozenset())
            if child.name.value == name
        ]
        if not found:
            break
    return found


def _children(
    owner: FieldNode | InlineFragmentNode | FragmentDefinitionNode,
    fragments: Fragments,
    seen: frozenset[str],
) -> Iterator[FieldNode]:
    for selection in owner.selection_set.selections if owner.selection_set else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _children(selection, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                yield from _children(fragment, fragments, seen | {name})


def arguments_of(node: FieldNode, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments written on `node`, variables filled in; enum values by name."""
    written = node.arguments or ()
    return {argument.name.value: _value(argument.value, variables) for argument in written}


def _value(value: ValueNode, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, VariableNode):
        return variables.get(value.name.value)
    if isinstance(value, IntValueNode):
        return int(value.value)
    if isinstance(value, StringValueNode | EnumValueNode | BooleanValueNode):
        return value.value
    if isinstance(value, ListValueNode):
        return [_value(item, variables) for item in value.values]
    return None
