"""Nested lists load in a fixed number of queries, whatever the number of parents."""

from datetime import timedelta

from domain.customer.models import Customer, CustomerIdentity
from domain.db import AsyncSession
from domain.order.models import Order, OrderLine
from tests.api.conftest import GraphQLClient, StatementLog
from tests.api.world import BASE_TIME, ShopWorld, build_shop

SHAPE = """
query($n: Int!) {
  customers(first: $n) {
    edges { node {
      displayName
      identities { platform externalId email }
      orders(first: 5, reverse: true) {
        edges { node { externalId total { formatted } lines { title quantity amount { amount } } } }
      }
    } }
  }
}"""


async def add_customers(session: AsyncSession, world: ShopWorld, count: int) -> None:
    """`count` more customers, each with two identities and seven orders of two lines."""
    shop_id = world.shop.id
    for number in range(count):
        customer = Customer(shop_id=shop_id, display_name=f"bulk {number}", order_count=7)
        session.add(customer)
        for kind in ("a", "b"):
            session.add(
                CustomerIdentity(
                    shop_id=shop_id,
                    customer_id=customer.id,
                    connection_id=world.connection.id,
                    platform="shopify",
                    external_id=f"bulk-{number}-{kind}",
                )
            )
        for index in range(7):
            order = Order(
                shop_id=shop_id,
                connection_id=world.connection.id,
                customer_id=customer.id,
                external_id=f"bulk-{number}-{index}",
                ordered_at=BASE_TIME + timedelta(days=index),
                total_amount=2000,
                item_quantity=2,
            )
            session.add(order)
            for position in (1, 2):
                session.add(
                    OrderLine(
                        shop_id=shop_id,
                        order_id=order.id,
                        position=position,
                        title=f"line {position}",
                        quantity=1,
                        unit_price=1000,
                        amount=1000,
                    )
                )
    await session.commit()


async def test_a_hundred_customers_take_as_many_queries_as_one(
    client: GraphQLClient, session: AsyncSession, sql: StatementLog
) -> None:
    world = await build_shop(session, "bulk", customers=0)
    await add_customers(session, world, 100)

    sql.clear()
    one = await client.data(SHAPE, key=world.admin, variables={"n": 1})
    queries_for_one = list(sql.data_statements)
    sql.clear()
    hundred = await client.data(SHAPE, key=world.admin, variables={"n": 100})
    queries_for_hundred = list(sql.data_statements)

    assert len(one["customers"]["edges"]) == 1
    edges = hundred["customers"]["edges"]
    assert len(edges) == 100
    assert all(len(edge["node"]["identities"]) == 2 for edge in edges)
    assert all(len(edge["node"]["orders"]["edges"]) == 5 for edge in edges)
    newest = edges[0]["node"]["orders"]["edges"][0]["node"]
    assert newest["externalId"].endswith("-6")
    assert [line["title"] for line in newest["lines"]] == ["line 1", "line 2"]
    # The key lookup, customers, identities, orders (one window query), lines.
    assert len(queries_for_hundred) == len(queries_for_one) == 5


async def test_several_page_shapes_batch_per_shape(
    client: GraphQLClient, session: AsyncSession, sql: StatementLog
) -> None:
    world = await build_shop(session, "shapes", customers=0)
    await add_customers(session, world, 20)
    query = """{ customers(first: 20) { edges { node {
      newest: orders(first: 2, reverse: true) { edges { node { externalId } } }
      oldest: orders(first: 2) { edges { node { externalId } } }
      subscriptions { externalId events { kind } }
    } } } }"""

    sql.clear()
    data = await client.data(query, key=world.admin)

    node = data["customers"]["edges"][0]["node"]
    assert [e["node"]["externalId"][-1] for e in node["newest"]["edges"]] == ["6", "5"]
    assert [e["node"]["externalId"][-1] for e in node["oldest"]["edges"]] == ["0", "1"]
    # key, customers, two order windows, subscriptions (events: none to load).
    assert len(sql.data_statements) == 5


async def test_merged_order_selections_share_one_page_and_its_lines(
    client: GraphQLClient, session: AsyncSession, sql: StatementLog
) -> None:
    world = await build_shop(session, "merged", customers=0)
    await add_customers(session, world, 10)
    query = """query($n: Int!) { customers(first: 10) { edges { node { ...Numbers ...Lines } } } }
    fragment Numbers on Customer {
      orders(first: $n, reverse: true) { edges { node { externalId } } }
    }
    fragment Lines on Customer {
      orders(first: $n, reverse: true) { edges { node { lines { position } } } }
    }"""

    sql.clear()
    data = await client.data(query, key=world.admin, variables={"n": 3})

    for edge in data["customers"]["edges"]:
        orders = edge["node"]["orders"]["edges"]
        assert [order["node"]["externalId"][-1] for order in orders] == ["6", "5", "4"]
        assert all(order["node"]["lines"] == [{"position": 1}, {"position": 2}] for order in orders)
    # key, customers, one order window, one batch of lines.
    assert len(sql.data_statements) == 4


MERGES = """
query($n: Int!) {
  customers(first: $n, sortKey: CREATED_AT) {
    edges { node { id merges { id } identityEvidence { identityId mergeId } } }
  }
}"""
MERGE = """
mutation($input: MergeCustomersInput!) {
  mergeCustomers(input: $input) { __typename }
}"""


async def test_merges_and_evidence_of_a_hundred_customers_take_as_many_queries_as_one(
    client: GraphQLClient, session: AsyncSession, sql: StatementLog
) -> None:
    world = await build_shop(session, "merged", customers=0)
    await add_customers(session, world, 110)
    listed = await client.data(MERGES, key=world.admin, variables={"n": 100})
    ids = [edge["node"]["id"] for edge in listed["customers"]["edges"]]
    # Customers 0, 2 and 4 each absorb the one after them, which leaves the list.
    for survivor, absorbed in ((0, 1), (2, 3), (4, 5)):
        merged = await client.data(
            MERGE,
            key=world.admin,
            variables={"input": {"survivorId": ids[survivor], "absorbedId": ids[absorbed]}},
        )
        assert merged["mergeCustomers"]["__typename"] == "MergeCustomersPayload"

    sql.clear()
    await client.data(MERGES, key=world.admin, variables={"n": 1})
    queries_for_one = list(sql.data_statements)
    sql.clear()
    hundred = await client.data(MERGES, key=world.admin, variables={"n": 100})
    queries_for_hundred = list(sql.data_statements)

    nodes = {edge["node"]["id"]: edge["node"] for edge in hundred["customers"]["edges"]}
    assert len(nodes) == 100
    with_merges = [node_id for node_id, node in nodes.items() if node["merges"]]
    assert sorted(with_merges) == sorted(ids[n] for n in (0, 2, 4))
    for survivor in (0, 2, 4):
        evidence = nodes[ids[survivor]]["identityEvidence"]
        merge_ids = {point["mergeId"] for point in evidence}
        assert merge_ids == {nodes[ids[survivor]]["merges"][0]["id"]}
        assert len(evidence) == 2  # the absorbed customer's two identities
    # The key lookup, customers, merges, identities' evidence.
    assert len(queries_for_hundred) == len(queries_for_one) == 4
