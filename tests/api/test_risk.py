"""Stored risk scores through GraphQL: values, isolation, batching and roles."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from api.relay import encode_id
from domain.customer.models import Customer
from domain.db import AsyncSession
from domain.risk.models import RiskScore, RiskScoreHistory
from domain.risk.reasons import shown_mask
from domain.shop.models import Role
from tests.api.conftest import GraphQLClient, StatementLog
from tests.api.test_batching import add_customers
from tests.api.world import ShopWorld, build_shop

AS_OF = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)

INTERVAL = {
    "sign": "interval",
    "strength": 0.8123,
    "contribution": 0.4,
    "evidence": {"days_since_last": 68, "usual_interval": 31, "orders": 4},
}
BASKET_FIRST_TIMER = {
    "sign": "basket",
    "strength": 0.25,
    "contribution": 0.1,
    "evidence": {
        "first_amount": 1200,
        "typical_first_amount": 4800,
        "first_quantity": 1,
        "typical_first_quantity": 2,
    },
}

RISK = """
query($id: ID!) {
  customer(id: $id) {
    risk {
      probability expectedPurchases expectedSpend { amount currency formatted }
      band horizonDays asOf
      reasons { sign strength evidence summary }
    }
    riskHistory(first: 2) { asOf probability band }
  }
}"""

LISTING = """
query($n: Int!) {
  customers(first: $n) {
    edges { node {
      displayName
      risk { probability band asOf reasons { sign strength evidence summary } }
      riskHistory { asOf probability band }
    } }
  }
}"""


def score(
    world: ShopWorld, customer: Customer, probability: float | None, band: str, **fields: Any
) -> RiskScore:
    return RiskScore(
        shop_id=world.shop.id,
        customer_id=customer.id,
        probability=probability,
        expected_purchases=fields.pop("expected_purchases", 0.4),
        expected_spend=fields.pop("expected_spend", 3280),
        band=band,
        reasons=(reasons := fields.pop("reasons", [INTERVAL])),
        shown_signs=shown_mask(reasons),
        horizon_days=90,
        as_of=AS_OF,
        model_version="test",
        **fields,
    )


def history(
    world: ShopWorld, customer: Customer, days_ago: int, probability: float
) -> RiskScoreHistory:
    return RiskScoreHistory(
        shop_id=world.shop.id,
        customer_id=customer.id,
        probability=probability,
        expected_purchases=1.0 - probability,
        band="high" if probability >= 0.75 else "low",
        as_of=AS_OF - timedelta(days=days_ago),
    )


def customer_id(customer: Customer) -> str:
    return encode_id("Customer", customer.id)


async def test_a_stored_score_round_trips(
    client: GraphQLClient, session: AsyncSession, shop_a: ShopWorld
) -> None:
    customer = shop_a.customers[0]
    session.add(score(shop_a, customer, 0.8125, "high", reasons=[INTERVAL, BASKET_FIRST_TIMER]))
    for days_ago, probability in ((0, 0.8125), (7, 0.6), (14, 0.3)):
        session.add(history(shop_a, customer, days_ago, probability))
    await session.commit()

    data = await client.data(RISK, key=shop_a.admin, variables={"id": customer_id(customer)})

    assert data["customer"]["risk"] == {
        "probability": 0.8125,
        "expectedPurchases": 0.4,
        "expectedSpend": {"amount": 3280, "currency": "JPY", "formatted": "¥3,280"},
        "band": "HIGH",
        "horizonDays": 90,
        "asOf": "2024-06-01T00:00:00+00:00",
        "reasons": [
            {
                "sign": "INTERVAL",
                "strength": 0.8123,
                "evidence": {"days_since_last": 68, "usual_interval": 31, "orders": 4},
                "summary": "68 days since last order; usually 31",
            },
            {
                "sign": "BASKET",
                "strength": 0.25,
                "evidence": {
                    "first_amount": 1200,
                    "typical_first_amount": 4800,
                    "first_quantity": 1,
                    "typical_first_quantity": 2,
                },
                "summary": "first order 1,200 (1 items); typical first order 4,800 (2 items)",
            },
        ],
    }
    # Newest first, cut at `first`.
    assert data["customer"]["riskHistory"] == [
        {"asOf": "2024-06-01T00:00:00+00:00", "probability": 0.8125, "band": "HIGH"},
        {"asOf": "2024-05-25T00:00:00+00:00", "probability": 0.6, "band": "LOW"},
    ]


async def test_an_unscored_customer_has_no_risk(client: GraphQLClient, shop_a: ShopWorld) -> None:
    data = await client.data(
        RISK, key=shop_a.admin, variables={"id": customer_id(shop_a.customers[1])}
    )

    assert data["customer"] == {"risk": None, "riskHistory": []}


async def test_shops_never_see_each_others_scores(
    client: GraphQLClient, session: AsyncSession, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    session.add(score(shop_a, shop_a.customers[0], 0.2, "low"))
    session.add(history(shop_a, shop_a.customers[0], 0, 0.2))
    session.add(score(shop_b, shop_b.customers[0], 0.95, "critical"))
    session.add(score(shop_b, shop_b.customers[1], 0.95, "critical"))
    session.add(history(shop_b, shop_b.customers[0], 0, 0.95))
    await session.commit()

    listing = await client.data(LISTING, key=shop_a.admin, variables={"n": 10})
    foreign = await client.data(
        RISK, key=shop_a.admin, variables={"id": customer_id(shop_b.customers[0])}
    )
    distribution = await client.data(
        "{ riskDistribution { count bands { band count } } }", key=shop_a.admin
    )

    risks = [edge["node"]["risk"] for edge in listing["customers"]["edges"]]
    assert [risk["probability"] for risk in risks if risk is not None] == [0.2]
    histories = [edge["node"]["riskHistory"] for edge in listing["customers"]["edges"]]
    assert sorted(len(points) for points in histories) == [0, 0, 1]
    assert foreign == {"customer": None}
    assert distribution["riskDistribution"] == {
        "count": 1,
        "bands": [
            {"band": "LOW", "count": 1},
            {"band": "MEDIUM", "count": 0},
            {"band": "HIGH", "count": 0},
            {"band": "CRITICAL", "count": 0},
            {"band": "UNSCORED", "count": 0},
        ],
    }


async def test_a_hundred_scored_customers_take_as_many_queries_as_one(
    client: GraphQLClient, session: AsyncSession, sql: StatementLog
) -> None:
    world = await build_shop(session, "risky", customers=0)
    await add_customers(session, world, 100)
    customers = list(await session.exec(_customers_of(world)))
    for index, customer in enumerate(customers):
        session.add(score(world, customer, index / 100, "low"))
        session.add(history(world, customer, 0, index / 100))
        session.add(history(world, customer, 1, index / 100))
    await session.commit()

    sql.clear()
    one = await client.data(LISTING, key=world.admin, variables={"n": 1})
    queries_for_one = list(sql.data_statements)
    sql.clear()
    hundred = await client.data(LISTING, key=world.admin, variables={"n": 100})
    queries_for_hundred = list(sql.data_statements)

    assert len(one["customers"]["edges"]) == 1
    edges = hundred["customers"]["edges"]
    assert all(edge["node"]["risk"]["band"] == "LOW" for edge in edges)
    assert all(len(edge["node"]["riskHistory"]) == 2 for edge in edges)
    # The key lookup, customers, scores, history.
    assert len(queries_for_hundred) == len(queries_for_one) == 4


async def test_analysts_read_scores_and_partners_do_not(
    client: GraphQLClient, session: AsyncSession, shop_a: ShopWorld, sql: StatementLog
) -> None:
    session.add(score(shop_a, shop_a.customers[0], 0.55, "medium"))
    await session.commit()
    query = (
        "{ riskDistribution { bands { band count } } "
        "customers(first: 5) { edges { node { risk { band } } } } }"
    )

    analyst = await client.data(query, key=shop_a.keys[Role.ANALYST])
    sql.clear()
    partner = await client.run(query, key=shop_a.keys[Role.PARTNER])

    assert {"band": "MEDIUM", "count": 1} in analyst["riskDistribution"]["bands"]
    bands = [edge["node"]["risk"] for edge in analyst["customers"]["edges"]]
    assert bands.count({"band": "MEDIUM"}) == 1
    assert partner.get("data") is None
    assert {error["extensions"]["code"] for error in partner["errors"]} == {"FORBIDDEN"}
    assert len(partner["errors"]) == 2
    assert sql.beyond_authentication == []


async def test_risk_history_refuses_a_negative_length(
    client: GraphQLClient, shop_a: ShopWorld
) -> None:
    result = await client.run(
        "query($id: ID!) { customer(id: $id) { riskHistory(first: -1) { band } } }",
        key=shop_a.admin,
        variables={"id": customer_id(shop_a.customers[0])},
    )

    assert result["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert result["errors"][0]["path"] == ["customer", "riskHistory"]


def _customers_of(world: ShopWorld) -> Any:
    return select(Customer).where(col(Customer.shop_id) == world.shop.id)


async def test_a_stored_unscored_row_reads_as_unscored_with_subscription_summaries(
    client: GraphQLClient, session: AsyncSession, shop_a: ShopWorld
) -> None:
    subscription = {
        "sign": "subscription",
        "strength": 0.6,
        "contribution": 0.2,
        "evidence": {
            "skips": 2,
            "postponements": 0,
            "pauses": 1,
            "cancelled": 1,
            "days_since_subscription_sign": 12,
        },
    }
    unknown = {"sign": "weather", "strength": 0.1, "contribution": 0.0, "evidence": {}}
    unscored = score(shop_a, shop_a.customers[0], 0.0, "unscored", reasons=[])
    unscored.probability = unscored.expected_purchases = unscored.expected_spend = None
    session.add(unscored)
    session.add(score(shop_a, shop_a.customers[1], 0.3, "low", reasons=[subscription, unknown]))
    await session.commit()

    first = await client.data(
        RISK, key=shop_a.admin, variables={"id": customer_id(shop_a.customers[0])}
    )
    second = await client.data(
        RISK, key=shop_a.admin, variables={"id": customer_id(shop_a.customers[1])}
    )

    risk = first["customer"]["risk"]
    assert risk["band"] == "UNSCORED"
    assert (risk["probability"], risk["expectedPurchases"], risk["expectedSpend"]) == (
        None,
        None,
        None,
    )
    assert risk["reasons"] == []
    # The sign this reader does not know is left out.
    assert second["customer"]["risk"]["reasons"] == [
        {
            "sign": "SUBSCRIPTION",
            "strength": 0.6,
            "evidence": subscription["evidence"],
            "summary": "2 skips, 1 pauses in the last 90 days; cancelled",
        }
    ]


HISTOGRAM = """
query($buckets: Int!) {
  riskDistribution(buckets: $buckets) {
    count
    signs { sign count bands { band count } }
    histogram { from to count bands { band count } signs { sign count } }
  }
}"""


async def test_the_distribution_charts_signs_and_a_histogram(
    client: GraphQLClient, session: AsyncSession, shop_a: ShopWorld
) -> None:
    first, second, third = shop_a.customers[:3]
    session.add(score(shop_a, first, 0.95, "critical"))
    session.add(score(shop_a, second, 0.2, "low"))
    session.add(score(shop_a, third, None, "unscored", reasons=[]))
    await session.commit()

    data = await client.data(HISTOGRAM, key=shop_a.admin, variables={"buckets": 2})
    refused = await client.run(HISTOGRAM, key=shop_a.admin, variables={"buckets": 0})

    distribution = data["riskDistribution"]
    assert distribution["count"] == 3
    interval = distribution["signs"][0]
    assert interval["sign"] == "INTERVAL"
    # `score` gives a row an interval reason of strength 0.81 unless told otherwise.
    assert interval["count"] == 2
    assert {"band": "CRITICAL", "count": 1} in interval["bands"]
    low, high = distribution["histogram"]
    assert (low["from"], low["to"], low["count"]) == (0.0, 0.5, 1)
    assert (high["from"], high["to"], high["count"]) == (0.5, 1.0, 1)
    assert {"band": "LOW", "count": 1} in low["bands"]
    assert {"sign": "INTERVAL", "count": 1} in high["signs"]
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert refused["errors"][0]["path"] == ["riskDistribution"]
