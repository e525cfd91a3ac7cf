"""`PlainFieldExecutor` answers exactly as graphql-core's own executor does, errors included."""

from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.execution import PlainFieldExecutor
from api.fields import field
from api.plans import plan_fields


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Owner(Named):
    since: int


@strawberry.type
class Stranger:
    name: str


@strawberry.type
class Price:
    amount: int
    label: str

    @strawberry.field
    def doubled(self) -> int:
        return self.amount * 2


@strawberry.type
class Tag:
    text: str


@strawberry.type
class Item:
    title: str
    note: str | None
    at: datetime
    price: Price
    maybe_price: Price | None
    prices: list[Price]
    owner: Owner
    tag_texts: strawberry.Private[list[str]]
    prefilled_tags: strawberry.Private[list[Tag] | None] = None
    prefilled_matching: strawberry.Private[dict[str, list[Tag]] | None] = None

    @strawberry.field
    async def later(self) -> str:
        return self.title.upper()

    @field("Served from `prefilled_tags` when a parent filled it.", prefilled="prefilled_tags")
    def tags(self) -> list[Tag]:
        return [Tag(text=text) for text in self.tag_texts]

    @field("Served by response name from `prefilled_matching`.", prefilled="prefilled_matching")
    def matching(self, prefix: str) -> list[Tag]:
        return [Tag(text=text) for text in self.tag_texts if text.startswith(prefix)]

    @strawberry.field
    def shout(self) -> str:
        return self.title.upper()


AT = datetime(2024, 1, 1, tzinfo=UTC)
ANY: Any = None


def item(**changes: Any) -> Item:
    values: dict[str, Any] = {
        "title": "t",
        "note": None,
        "at": AT,
        "price": Price(amount=1, label="a"),
        "maybe_price": None,
        "prices": [],
        "owner": Owner(name="o", since=2020),
        "tag_texts": ["x", "y"],
    }
    return Item(**(values | changes))


def items() -> list[Item]:
    filled = item(title="filled")
    filled.prefilled_tags = filled.tags()
    # What `matching` would answer for the aliases `x` and `all` of the queries below.
    filled.prefilled_matching = {"x": filled.matching("x"), "all": filled.matching("")}
    half_filled = item(title="half")
    half_filled.prefilled_matching = {"x": half_filled.matching("x")}
    return [
        item(),
        filled,
        half_filled,
        item(title=ANY),
        item(price=ANY),
        item(at="not a date"),
        item(prices=[ANY]),
        item(prices=[Price(amount=6, label="e"), Price(amount=7, label=ANY)]),
        item(maybe_price=Price(amount=8, label=ANY)),
        item(maybe_price=Price(amount=9, label="ok")),
        item(owner=Stranger(name="s")),
        item(owner=ANY),
        item(note="n", prices=[Price(amount=1, label="b")] * 3),
    ]


@strawberry.type
class Query:
    @strawberry.field
    def item(self, index: int) -> Item | None:
        return items()[index]

    @strawberry.field
    def all(self) -> list[Item | None]:
        return list(items())


def schema(executor: type[StrawberryGraphQLCoreExecutionContext]) -> strawberry.Schema:
    built = strawberry.Schema(query=Query, execution_context_class=executor)
    plan_fields(built._schema)
    return built


EVERYTHING = (
    "title note at later shout price { amount label doubled } maybePrice { amount label } "
    "prices { __typename amount label } owner { name since __typename } tags { text } "
    'x: matching(prefix: "x") { text } all: matching(prefix: "") { text } '
    'y: matching(prefix: "y") { text }'
)
QUERIES = [f"{{ item(index: {index}) {{ {EVERYTHING} }} }}" for index in range(len(items()))] + [
    f"{{ all {{ {EVERYTHING} }} }}",
    "{ all { note alias: title price { amount } owner { ... on Named { name } } } }",
    "{ item(index: 0) { __typename title @include(if: false) price { __typename } } }",
]


def outcome(result: Any) -> tuple[Any, list[tuple[str, Any]]]:
    errors = [(error.message, error.path) for error in result.errors or []]
    return result.data, sorted(errors, key=repr)


@pytest.mark.parametrize("query", QUERIES)
async def test_plain_fields_are_served_as_graphql_core_serves_them(query: str) -> None:
    expected = await schema(StrawberryGraphQLCoreExecutionContext).execute(query)
    actual = await schema(PlainFieldExecutor).execute(query)

    assert outcome(actual) == outcome(expected)


def test_plans_cover_attribute_computed_and_prefilled_fields() -> None:
    built = strawberry.Schema(query=Query)

    # Every field of Owner (2), Price (3, `doubled` computed), Tag (1) and Item (10, `shout`
    # computed, `tags` and `matching` prefilled) but Item's async resolver `later`; none of
    # Query's, which take an argument.
    assert plan_fields(built._schema) == 16


async def test_prefilled_values_are_served_by_response_name_without_the_resolver() -> None:
    filled = item(tag_texts=["xa", "ya"])
    # Not what the resolver would answer: shows which values were served from the mapping.
    filled.prefilled_tags = [Tag(text="preloaded")]
    filled.prefilled_matching = {"x": [Tag(text="preloaded x")]}

    @strawberry.type
    class One:
        @strawberry.field
        def item(self) -> Item:
            return filled

    built = strawberry.Schema(query=One, execution_context_class=PlainFieldExecutor)
    plan_fields(built._schema)
    result = await built.execute(
        '{ item { tags { text } x: matching(prefix: "x") { text } '
        'y: matching(prefix: "y") { text } } }'
    )

    assert result.errors is None
    assert result.data == {
        "item": {
            "tags": [{"text": "preloaded"}],
            "x": [{"text": "preloaded x"}],
            "y": [{"text": "ya"}],
        }
    }
