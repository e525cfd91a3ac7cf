from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette

from domain.settings import Settings
from tests.api.conftest import GraphQLClient, StatementLog, serving
from tests.api.world import ShopWorld


def only_error(result: dict[str, Any]) -> dict[str, Any]:
    assert result.get("data") is None, result
    assert len(result["errors"]) == 1, result
    error: dict[str, Any] = result["errors"][0]
    return error


async def refused(
    client: GraphQLClient,
    sql: StatementLog,
    key: str,
    query: str,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The one error of a refused document, after checking no SQL ran but the key lookup."""
    sql.clear()
    result = await client.run(query, key=key, variables=variables)
    assert sql.beyond_authentication == []
    return only_error(result)


def nested(depth: int) -> str:
    # customers > edges > node > orders > edges > node > customer > orders > …
    inner = "id"
    for _ in range(depth):
        inner = f"orders(first: 1) {{ edges {{ node {{ customer {{ {inner} }} }} }} }}"
    return f"{{ customers(first: 1) {{ edges {{ node {{ {inner} }} }} }} }}"


async def test_depth_over_the_limit_is_refused_before_sql(
    client: GraphQLClient, shop_a: ShopWorld, sql: StatementLog, settings: Settings
) -> None:
    error = await refused(client, sql, shop_a.admin, nested(3))

    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert f"the limit is {settings.max_query_depth}" in error["message"]


async def test_depth_within_the_limit_runs(client: GraphQLClient, shop_a: ShopWorld) -> None:
    await client.data(nested(1), key=shop_a.admin)


async def test_depth_counts_through_fragments(
    client: GraphQLClient, shop_a: ShopWorld, sql: StatementLog
) -> None:
    step = "orders(first: 1) { edges { node { customer { "
    fragment = "fragment Deep on Customer { " + step * 3 + "id" + " }" * 13
    query = fragment + " { customers(first: 1) { edges { node { ...Deep } } } }"
    error = await refused(client, sql, shop_a.admin, query)

    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_too_many_tokens_are_refused_before_sql(
    client: GraphQLClient, shop_a: ShopWorld, sql: StatementLog, settings: Settings
) -> None:
    fields = " ".join(["__typename"] * settings.max_query_tokens)
    error = await refused(client, sql, shop_a.admin, f"{{ shop {{ {fields} }} }}")

    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert "tokens" in error["message"]


async def test_too_many_aliases_are_refused_before_sql(
    client: GraphQLClient, shop_a: ShopWorld, sql: StatementLog, settings: Settings
) -> None:
    aliases = " ".join(f"a{n}: shop {{ name }}" for n in range(settings.max_aliases + 1))
    error = await refused(client, sql, shop_a.admin, f"{{ {aliases} }}")

    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert f"{settings.max_aliases + 1} aliases" in error["message"]


async def test_aliases_up_to_the_limit_run(
    client: GraphQLClient, shop_a: ShopWorld, settings: Settings
) -> None:
    aliases = " ".join(f"a{n}: shop {{ name }}" for n in range(settings.max_aliases))

    data = await client.data(f"{{ {aliases} }}", key=shop_a.admin)

    assert len(data) == settings.max_aliases


async def test_cost_over_the_limit_is_refused_before_sql(
    make_app: Callable[[Settings], Starlette],
    settings: Settings,
    shop_a: ShopWorld,
    sql: StatementLog,
) -> None:
    # 1 + 100 * (edges + node + id + 1 + 100 * (edges + node + id)): well over 10 000.
    strict = settings.model_copy(update={"max_query_cost": 10_000})
    query = (
        "{ customers(first: 100) { edges { node { id "
        "orders(first: 100) { edges { node { id } } } } } } }"
    )
    async with serving(make_app(strict)) as client:
        error = await refused(client, sql, shop_a.admin, query)
        cheaper = await client.data(query.replace("first: 100", "first: 10"), key=shop_a.admin)

    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["message"].endswith("the limit is 10000")
    assert cheaper["customers"]["edges"]


async def test_cost_uses_variable_page_sizes(
    make_app: Callable[[Settings], Starlette],
    settings: Settings,
    shop_a: ShopWorld,
    sql: StatementLog,
) -> None:
    strict = settings.model_copy(update={"max_query_cost": 10_000})
    query = (
        "query($n: Int, $m: Int = 100) { customers(first: $n) { edges { node { "
        "orders(first: $m) { edges { node { id } } } } } } }"
    )
    async with serving(make_app(strict)) as client:
        error = await refused(client, sql, shop_a.admin, query, {"n": 100})
        await client.data(query, key=shop_a.admin, variables={"n": 2, "m": 2})

    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("", "customers needs first or last (1 to 100)"),
        ("first: 101", "customers: first must be between 1 and 100, not 101"),
        ("first: 0", "customers: first must be between 1 and 100, not 0"),
        ("last: -1", "customers: last must be between 1 and 100, not -1"),
        ("first: 1, last: 1", "customers: pass either first or last, not both"),
    ],
)
async def test_page_sizes_are_checked_before_sql(
    client: GraphQLClient, shop_a: ShopWorld, sql: StatementLog, arguments: str, message: str
) -> None:
    query = (
        f"{{ customers{f'({arguments})' if arguments else ''} {{ edges {{ node {{ id }} }} }} }}"
    )
    error = await refused(client, sql, shop_a.admin, query)

    assert error == {
        "message": message,
        "locations": [{"line": 1, "column": 3}],
        "extensions": {"code": "INVALID_PAGE_SIZE"},
    }


async def test_nested_page_sizes_are_checked_before_sql(
    client: GraphQLClient, shop_a: ShopWorld, sql: StatementLog
) -> None:
    query = (
        "query($m: Int) { customers(first: 5) { edges { node { "
        "orders(first: $m) { edges { node { id } } } } } } }"
    )
    missing = await refused(client, sql, shop_a.admin, query, {})
    too_big = await refused(client, sql, shop_a.admin, query, {"m": 500})

    assert missing["message"] == "orders needs first or last (1 to 100)"
    assert too_big["message"] == "orders: first must be between 1 and 100, not 500"


async def test_nodes_take_at_most_a_hundred_ids(
    client: GraphQLClient, shop_a: ShopWorld, sql: StatementLog
) -> None:
    ids = shop_a.global_ids()["Customer"][:1] * 101
    sql.clear()
    result = await client.run(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", key=shop_a.admin, variables={"ids": ids}
    )

    assert result["data"] is None
    assert [e["extensions"]["code"] for e in result["errors"]] == ["INVALID_INPUT"]
    assert sql.beyond_authentication == []


@pytest.mark.parametrize(
    "query",
    [
        "{ shop { nme } }",
        "{ customers(frist: 1) { edges { node { id } } } }",
        "{ customers(first: 1, sortKey: CREATD_AT) { edges { node { id } } } }",
        "{ shopp { name } }",
    ],
)
async def test_errors_never_suggest_names(
    client: GraphQLClient, shop_a: ShopWorld, query: str
) -> None:
    result = await client.run(query, key=shop_a.admin)

    assert result["errors"]
    assert all("Did you mean" not in error["message"] for error in result["errors"])
    assert all(
        error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" for error in result["errors"]
    )


async def test_bad_variable_values_suggest_nothing(
    client: GraphQLClient, shop_a: ShopWorld
) -> None:
    result = await client.run(
        "query($s: CustomerSortKey!) { customers(first: 1, sortKey: $s) { totalCount } }",
        key=shop_a.admin,
        variables={"s": "CREATD_AT"},
    )

    assert result["errors"]
    assert "Did you mean" not in str(result)
