"""How the fake shop reads a request: opaque cursors, the search syntax, field selections.

Search handles `updated_at` / `created_at` with `>`, `>=`, `<`, `<=` (or equality) joined by
`AND`; other terms are ignored. Selections honour aliases, and nested connections honour
`first` and `after`.
"""

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from tests.fakes.shopify.graphql import Field, GraphQLSyntaxError
from tests.fakes.shopify.store import JSON

_TERM = re.compile(r"(\w+):(>=|<=|>|<)?'?([^'\s]*)'?")


def cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode()


def uncursor(cursor: str) -> list[Any]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, orjson.JSONDecodeError) as error:
        raise GraphQLSyntaxError(f"Invalid cursor {cursor!r}") from error
    if not isinstance(value, list):
        raise GraphQLSyntaxError(f"Invalid cursor {cursor!r}")
    return value


def when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise GraphQLSyntaxError(f"Invalid date {text!r} in search query") from error
    if moment.tzinfo is None:
        raise GraphQLSyntaxError(f"date {text!r} without offset")
    return moment


@dataclass
class Search:
    """Parsed `updated_at:>='…' AND created_at:<…` terms; other terms are ignored."""

    bounds: dict[str, list[tuple[str, float]]]

    @classmethod
    def of(cls, query: str | None) -> "Search":
        bounds: dict[str, list[tuple[str, float]]] = {"updated_at": [], "created_at": []}
        for term in re.split(r"\s+AND\s+|\s+", (query or "").strip()):
            match = _TERM.fullmatch(term)
            if match is None or match.group(1) not in bounds:
                continue
            name, op, value = match.groups()
            bounds[name].append((op or "=", when(value).timestamp()))
        return cls(bounds)

    def accepts(self, name: str, value: float) -> bool:
        for op, bound in self.bounds[name]:
            ok = {
                ">=": value >= bound,
                ">": value > bound,
                "<=": value <= bound,
                "<": value < bound,
                "=": int(value) == int(bound),
            }[op]
            if not ok:
                return False
        return True

    def upper(self, name: str) -> float | None:
        uppers = [bound for op, bound in self.bounds[name] if op in ("<", "<=")]
        return min(uppers) if uppers else None

    def lower_key(self, name: str) -> tuple[float, int] | None:
        keys = [
            (bound, -1) if op == ">=" else (bound, 1 << 62)
            for op, bound in self.bounds[name]
            if op in (">=", ">")
        ]
        return max(keys) if keys else None


def _slice(value: JSON, selection: Field) -> JSON:
    """A nested connection cut to the field's `first`, after its `after` cursor."""
    start = int(uncursor(selection.args["after"])[0]) if selection.args.get("after") else 0
    first = int(selection.args["first"] or 0)
    nodes = value["nodes"][start : start + first]
    return {
        **value,
        "nodes": nodes,
        "pageInfo": {
            "hasNextPage": start + first < len(value["nodes"]),
            "endCursor": cursor(start + len(nodes)) if nodes else None,
        },
    }


def projector(selection: Field, *, paged: bool) -> Callable[[Any], Any]:
    """A function giving the selected part of a value; nested connections honour `first`
    and `after` (a root connection is paged by its resolver)."""
    children = selection.selections or []
    leaves = [(child.key, child.name) for child in children if child.selections is None]
    nested = [
        (child.key, child.name, projector(child, paged=False))
        for child in children
        if child.selections is not None
    ]
    slices = not paged and "first" in selection.args

    def project(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list):
            return [project(item) for item in value]
        if slices and "nodes" in value:
            value = _slice(value, selection)
        result = {key: value.get(name) for key, name in leaves}
        for key, name, inner in nested:
            result[key] = inner(value.get(name))
        return result

    return project


def project(value: Any, selection: Field, *, paged: bool = False) -> Any:
    if selection.selections is None:
        return value
    return projector(selection, paged=paged)(value)
