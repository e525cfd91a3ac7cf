"""Custom scalars: `BigInt` for amounts that outgrow GraphQL's 32-bit `Int`."""

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

BigInt = NewType("BigInt", int)

# JavaScript's Number.MAX_SAFE_INTEGER: past it a JSON number loses digits in browsers.
MAX_SAFE_INTEGER = 2**53 - 1


def _serialize(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"BigInt cannot represent {value!r}")
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError(f"BigInt cannot represent {value}: beyond 53 bits")
    return value


def _parse(value: object) -> BigInt:
    return BigInt(_serialize(value))


BIG_INT = strawberry.scalar(
    name="BigInt",
    description=(
        "A whole number of up to 53 bits, sent as a JSON number (exact in JavaScript). "
        "Money amounts use it because a shop's totals can exceed the 32 bits of Int."
    ),
    serialize=_serialize,
    parse_value=_parse,
)

SCALARS: dict[object, ScalarDefinition] = {BigInt: BIG_INT}
