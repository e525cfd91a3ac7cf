"""`customers` by risk: sorted by the current P(no purchase), filtered by band and shown sign."""

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import col, select

from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.risk.models import RiskScore
from domain.risk.reasons import shown_mask
from tests.api.conftest import GraphQLClient, StatementLog
from tests.api.test_batching import add_customers
from tests.api.test_risk import AS_OF
from tests.api.world import ShopWorld, build_shop

PAGE = """
query($first: Int, $after: String, $last: Int, $before: String, $reverse: Boolean!,
      $bands: [RiskBand!], $signs: [RiskSign!], $q: String) {
  customers(first: $first, after: $after, last: $last, before: $before, sortKey: RISK,
            reverse: $reverse, riskBands: $bands, signs: $signs, query: $q) {
    totalCount
    edges { cursor node { id displayName risk { probability band } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


def reason(sign: str, strength: float) -> dict[str, Any]:
    return {"sign": sign, "strength": strength, "contribution": 0.1, "evidence": {}}


@dataclass(frozen=True)
class Sample:
    name: str
    # None with a band: a stored "unscored" row; no band at all: never scored.
    probability: float | None
    band: str | None
    reasons: tuple[tuple[str, float], ...] = ()


SAMPLES = [
    Sample("amber", 0.95, "critical", (("interval", 0.9), ("subscription", 0.7))),
    Sample("beryl", 0.30, "low", (("basket", 0.6), ("interval", 0.1))),
    Sample("coral", 0.80, "high", (("interval", 0.5),)),
    Sample("dune", None, None),
    Sample("ember", 0.80, "high", (("basket", 0.2), ("subscription", 0.49))),
    Sample("flint", None, "unscored"),
    Sample("garnet", 0.60, "medium", (("subscription", 0.8), ("interval", 0.3))),
    Sample("hazel", 0.80, "high", (("interval", 0.2),)),
    Sample("iris", 0.05, "low", ()),
]


@pytest.fixture
async def scored(session: AsyncSession) -> tuple[ShopWorld, dict[str, Customer]]:
    world = await build_shop(session, "ranked", customers=0)
    customers: dict[str, Customer] = {}
    for sample in SAMPLES:
        customer = Customer(shop_id=world.shop.id, display_name=sample.name)
        session.add(customer)
        customers[sample.name] = customer
        if sample.band is not None:
            session.add(
                RiskScore(
                    shop_id=world.shop.id,
                    customer_id=customer.id,
                    probability=sample.probability,
                    band=sample.band,
                    reasons=(
                        listed := [reason(sign, strength) for sign, strength in sample.reasons]
                    ),
                    shown_signs=shown_mask(listed),
                    as_of=AS_OF,
                )
            )
    # Another shop's scores must not change this shop's listing.
    other = await build_shop(session, "foreign", customers=2)
    for customer in other.customers:
        session.add(
            RiskScore(
                shop_id=other.shop.id,
                customer_id=customer.id,
                probability=0.99,
                band="critical",
                reasons=(listed := [reason("interval", 1.0)]),
                shown_signs=shown_mask(listed),
                as_of=AS_OF,
            )
        )
    await session.commit()
    return world, customers


def expected(customers: dict[str, Customer], reverse: bool) -> list[str]:
    """By probability then id, customers without one last in both directions."""
    probability = {sample.name: sample.probability for sample in SAMPLES}
    present = [c for c in customers.values() if probability[c.display_name] is not None]
    missing = [c for c in customers.values() if probability[c.display_name] is None]
    present.sort(key=lambda c: (probability[c.display_name], c.id), reverse=reverse)
    missing.sort(key=lambda c: c.id, reverse=reverse)
    return [c.display_name for c in present + missing]


async def walk(
    client: GraphQLClient,
    key: str,
    reverse: bool,
    *,
    backward: bool,
    size: int,
    **filters: Any,
) -> list[str]:
    """Every customer's name, page by page, following cursors forward or backward."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        variables: dict[str, Any] = {"reverse": reverse, **filters}
        if backward:
            variables |= {"last": size, "before": cursor}
        else:
            variables |= {"first": size, "after": cursor}
        page = (await client.data(PAGE, key=key, variables=variables))["customers"]
        names = [edge["node"]["displayName"] for edge in page["edges"]]
        info = page["pageInfo"]
        if backward:
            seen = names + seen
            if not info["hasPreviousPage"]:
                return seen
            cursor = info["startCursor"]
        else:
            seen += names
            if not info["hasNextPage"]:
                return seen
            cursor = info["endCursor"]
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("reverse", [False, True])
async def test_pages_follow_the_risk_forward_and_backward(
    client: GraphQLClient,
    scored: tuple[ShopWorld, dict[str, Customer]],
    reverse: bool,
    size: int,
) -> None:
    world, customers = scored
    order = expected(customers, reverse)

    forward = await walk(client, world.admin, reverse, backward=False, size=size)
    backward = await walk(client, world.admin, reverse, backward=True, size=size)

    assert forward == order
    assert backward == order
    # Unscored customers close the listing whichever way it runs.
    assert set(order[-2:]) == {"dune", "flint"}


@pytest.mark.parametrize(
    ("filters", "names"),
    [
        ({"bands": ["HIGH"]}, ["coral", "ember", "hazel"]),
        ({"bands": ["CRITICAL", "LOW"]}, ["amber", "beryl", "iris"]),
        ({"bands": ["UNSCORED"]}, ["flint"]),
        # Shown: among the reasons with strength 0.5 or more.
        ({"signs": ["INTERVAL"]}, ["amber", "coral"]),
        ({"signs": ["SUBSCRIPTION"]}, ["amber", "garnet"]),
        ({"signs": ["BASKET", "SUBSCRIPTION"]}, ["amber", "beryl", "garnet"]),
        ({"bands": ["HIGH", "CRITICAL"], "signs": ["INTERVAL"]}, ["amber", "coral"]),
        ({"bands": ["HIGH"], "signs": ["INTERVAL"], "q": "COR"}, ["coral"]),
        ({"bands": ["MEDIUM"], "signs": ["BASKET"]}, []),
        ({"bands": [], "signs": []}, [s.name for s in SAMPLES]),
    ],
)
async def test_band_and_sign_filters_combine_with_search(
    client: GraphQLClient,
    scored: tuple[ShopWorld, dict[str, Customer]],
    filters: dict[str, Any],
    names: list[str],
) -> None:
    world, _ = scored
    variables = {"first": 50, "reverse": True, **filters}

    page = (await client.data(PAGE, key=world.admin, variables=variables))["customers"]

    assert sorted(edge["node"]["displayName"] for edge in page["edges"]) == sorted(names)
    assert page["totalCount"] == len(names)


async def test_filtered_pages_follow_the_risk_across_cursors(
    client: GraphQLClient, scored: tuple[ShopWorld, dict[str, Customer]]
) -> None:
    world, customers = scored
    wanted = {"amber", "coral", "ember", "hazel"}
    order = [name for name in expected(customers, True) if name in wanted]

    forward = await walk(
        client, world.admin, True, backward=False, size=1, bands=["HIGH", "CRITICAL"]
    )
    backward = await walk(
        client, world.admin, True, backward=True, size=3, bands=["HIGH", "CRITICAL"]
    )

    assert forward == backward == order
    assert order[0] == "amber"


async def test_other_sorts_take_risk_filters_too(
    client: GraphQLClient, scored: tuple[ShopWorld, dict[str, Customer]]
) -> None:
    world, _ = scored
    query = """query($bands: [RiskBand!]) {
      customers(first: 10, sortKey: NAME, riskBands: $bands) {
        totalCount edges { node { displayName } } } }"""

    data = await client.data(query, key=world.admin, variables={"bands": ["HIGH"]})

    names = [edge["node"]["displayName"] for edge in data["customers"]["edges"]]
    assert names == ["coral", "ember", "hazel"]
    assert data["customers"]["totalCount"] == 3


async def test_a_risk_cursor_must_hold_a_probability(
    client: GraphQLClient, scored: tuple[ShopWorld, dict[str, Customer]]
) -> None:
    world, _ = scored
    name_page = await client.data(
        "{ customers(first: 1, sortKey: NAME) { pageInfo { endCursor } } }", key=world.admin
    )
    forged = encode_cursor_with("RISK", "amber")

    other_sort = await client.run(
        PAGE,
        key=world.admin,
        variables={
            "first": 2,
            "after": name_page["customers"]["pageInfo"]["endCursor"],
            "reverse": False,
        },
    )
    wrong_value = await client.run(
        PAGE, key=world.admin, variables={"first": 2, "after": forged, "reverse": False}
    )

    assert other_sort["errors"][0]["message"] == "this cursor was made for another sort order"
    assert wrong_value["errors"][0]["extensions"] == {"code": "INVALID_INPUT"}


def encode_cursor_with(sort_key: str, value: object) -> str:
    raw = json.dumps([sort_key, value, uuid.uuid4().hex], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


LISTING = """
query($n: Int!, $after: String) {
  customers(first: $n, after: $after, sortKey: RISK, reverse: true, riskBands: [LOW, HIGH],
            signs: [INTERVAL]) {
    totalCount
    edges { cursor node { id risk { probability band reasons { sign strength summary } } } }
  }
}"""


async def test_a_hundred_customers_by_risk_take_as_many_queries_as_one(
    client: GraphQLClient, session: AsyncSession, sql: StatementLog
) -> None:
    world = await build_shop(session, "bulk-risk", customers=0)
    await add_customers(session, world, 130)
    await session.flush()
    customers = list(
        await session.exec(select(Customer).where(col(Customer.shop_id) == world.shop.id))
    )
    # Ten customers never scored: the listing reads them in a second part, after the scored.
    for index, customer in enumerate(customers[10:]):
        session.add(
            RiskScore(
                shop_id=world.shop.id,
                customer_id=customer.id,
                probability=(0.76 if index % 2 else 0.1) + index / 1000,
                band="high" if index % 2 else "low",
                reasons=(listed := [reason("interval", 0.9), reason("basket", 0.1)]),
                shown_signs=shown_mask(listed),
                as_of=AS_OF,
            )
        )
    await session.commit()

    async def statements(variables: dict[str, Any]) -> tuple[dict[str, Any], int]:
        sql.clear()
        data = await client.data(LISTING, key=world.admin, variables=variables)
        return data["customers"], len(sql.data_statements)

    one, for_one = await statements({"n": 1})
    hundred, for_hundred = await statements({"n": 100})
    tail, for_tail = await statements({"n": 100, "after": hundred["edges"][-1]["cursor"]})

    assert len(one["edges"]) == 1
    edges = hundred["edges"]
    assert len(edges) == 100
    assert hundred["totalCount"] == 120
    probabilities = [edge["node"]["risk"]["probability"] for edge in edges]
    assert probabilities == sorted(probabilities, reverse=True)
    assert len(tail["edges"]) == 20
    # The key lookup, the page, the count, the scores; whatever the page size.
    assert for_hundred == for_one == 4
    # A page that reaches the end of the scored customers also looks for unscored ones.
    assert for_tail == 5
