import json
from typing import Any

from api.relay import encode_id
from domain.db import AsyncSession
from domain.ids import ConnectionId, ShopId, new_id
from domain.ingest import ingest_batch
from domain.jobs import Job
from domain.platforms import CustomerRecord, RecordBatch
from domain.shop.models import Role
from tests.api.conftest import GraphQLClient, RecordingJobQueue
from tests.api.world import ShopWorld
from tests.domain.customer.test_merging import dump

MERGE = """
mutation($input: MergeCustomersInput!) {
  mergeCustomers(input: $input) {
    __typename
    ... on MergeCustomersPayload {
      merge { id absorbedCustomerId identityIds actor unmergedAt survivor { id } }
      survivor { id orderCount identities { id } }
    }
    ... on UserError { code message field }
  }
}"""
UNMERGE = """
mutation($input: UnmergeCustomerInput!) {
  unmergeCustomer(input: $input) {
    __typename
    ... on UnmergeCustomerPayload {
      merge { id unmergedAt }
      survivor { id orderCount }
      restored { id displayName orderCount identities { id } }
    }
    ... on UserError { code message field }
  }
}"""
EVIDENCE = """
query($id: ID!) {
  customer(id: $id) {
    merges { id unmergedAt }
    identityEvidence {
      identityId matched matchedIdentityId otherCandidateIds mergeId
      suggestion { matched customer { id } }
    }
  }
}"""


def customer_id(world: ShopWorld, index: int) -> str:
    return encode_id("Customer", world.customers[index].id)


async def merge(
    client: GraphQLClient, world: ShopWorld, survivor: str, absorbed: str, key: str | None = None
) -> dict[str, Any]:
    data = await client.data(
        MERGE,
        key=key or world.admin,
        variables={"input": {"survivorId": survivor, "absorbedId": absorbed}},
    )
    result: dict[str, Any] = data["mergeCustomers"]
    return result


async def unmerge(client: GraphQLClient, world: ShopWorld, merge_id: str) -> dict[str, Any]:
    data = await client.data(UNMERGE, key=world.admin, variables={"input": {"mergeId": merge_id}})
    result: dict[str, Any] = data["unmergeCustomer"]
    return result


async def test_merge_then_unmerge_through_the_api_restores_both_customers(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession, jobs: RecordingJobQueue
) -> None:
    before = await dump(session, shop_a.shop)
    survivor, absorbed = customer_id(shop_a, 0), customer_id(shop_a, 1)

    merged = await merge(client, shop_a, survivor, absorbed)

    assert merged["__typename"] == "MergeCustomersPayload"
    assert merged["merge"]["absorbedCustomerId"] == absorbed
    assert merged["merge"]["survivor"] == {"id": survivor}
    assert merged["merge"]["identityIds"] == [
        encode_id("CustomerIdentity", shop_a.identities[1].id)
    ]
    assert merged["merge"]["actor"] == f"api_key:{shop_a.key_ids[Role.ADMIN]}"
    assert merged["survivor"]["orderCount"] == 4
    assert len(merged["survivor"]["identities"]) == 2
    gone = await client.data(
        "query($id: ID!) { customer(id: $id) { id } }", key=shop_a.admin, variables={"id": absorbed}
    )
    assert gone == {"customer": None}
    shown = await client.data(EVIDENCE, key=shop_a.admin, variables={"id": survivor})
    assert shown["customer"]["merges"] == [{"id": merged["merge"]["id"], "unmergedAt": None}]
    assert [e["mergeId"] for e in shown["customer"]["identityEvidence"]] == [merged["merge"]["id"]]
    assert [(r.job, json.loads(str(r.kwargs["customer_ids_json"]))) for r in jobs.sent] == [
        (Job.RESCORE_CUSTOMERS, [str(shop_a.customers[0].id)])
    ]

    unmerged = await unmerge(client, shop_a, merged["merge"]["id"])

    assert unmerged["__typename"] == "UnmergeCustomerPayload"
    assert unmerged["merge"]["unmergedAt"] is not None
    assert unmerged["restored"]["id"] == absorbed
    assert unmerged["restored"]["orderCount"] == 2
    assert unmerged["survivor"]["orderCount"] == 2
    assert await dump(session, shop_a.shop) == before
    assert len(jobs.sent) == 2


async def test_merge_user_errors(
    client: GraphQLClient, shop_a: ShopWorld, shop_b: ShopWorld
) -> None:
    mine, other = customer_id(shop_a, 0), customer_id(shop_a, 1)
    foreign = customer_id(shop_b, 0)
    cases = [
        (mine, mine, "SAME_CUSTOMER", ["input", "absorbedId"]),
        (mine, foreign, "NOT_FOUND", ["input", "absorbedId"]),
        (foreign, mine, "NOT_FOUND", ["input", "survivorId"]),
        (mine, encode_id("Customer", new_id()), "NOT_FOUND", ["input", "absorbedId"]),
        (mine, encode_id("Order", shop_a.order_ids[0]), "INVALID_ID", ["input", "absorbedId"]),
    ]
    for survivor, absorbed, code, field in cases:
        refused = await merge(client, shop_a, survivor, absorbed)
        assert (refused["__typename"], refused["code"], refused["field"]) == (
            "UserError",
            code,
            field,
        )
    done = await merge(client, shop_a, mine, other)
    again = await merge(client, shop_a, customer_id(shop_a, 2), other)
    assert (again["code"], again["field"]) == ("ALREADY_MERGED", ["input", "absorbedId"])

    # Another shop's admin can neither see nor undo the merge.
    foreign_undo = await client.data(
        UNMERGE, key=shop_b.admin, variables={"input": {"mergeId": done["merge"]["id"]}}
    )
    assert foreign_undo["unmergeCustomer"]["code"] == "NOT_FOUND"
    assert (await unmerge(client, shop_a, done["merge"]["id"]))["__typename"] == (
        "UnmergeCustomerPayload"
    )
    twice = await unmerge(client, shop_a, done["merge"]["id"])
    assert (twice["code"], twice["field"]) == ("ALREADY_UNMERGED", ["input", "mergeId"])


async def test_only_admin_keys_merge(client: GraphQLClient, shop_a: ShopWorld) -> None:
    for role in (Role.ANALYST, Role.PARTNER):
        result = await client.run(
            MERGE,
            key=shop_a.keys[role],
            variables={
                "input": {
                    "survivorId": customer_id(shop_a, 0),
                    "absorbedId": customer_id(shop_a, 1),
                }
            },
        )
        assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_merge_suggestion_shows_on_the_customer(
    client: GraphQLClient, shop_a: ShopWorld, session: AsyncSession
) -> None:
    shop_id, connection_id = ShopId(shop_a.shop.id), ConnectionId(shop_a.connection.id)
    # The world's identities carry no hashes: give two of them emails, then make one match.
    for index in (0, 1):
        record = CustomerRecord(
            "shopify", shop_a.identities[index].external_id, email=f"p{index}@example.jp"
        )
        await ingest_batch(session, shop_id, connection_id, RecordBatch(customers=(record,)))
    changed = CustomerRecord(
        "shopify", shop_a.identities[1].external_id, email="p0@example.jp", display_name="x"
    )
    await ingest_batch(session, shop_id, connection_id, RecordBatch(customers=(changed,)))
    await session.commit()

    shown = await client.data(EVIDENCE, key=shop_a.admin, variables={"id": customer_id(shop_a, 1)})

    [evidence] = shown["customer"]["identityEvidence"]
    assert evidence["identityId"] == encode_id("CustomerIdentity", shop_a.identities[1].id)
    assert evidence["matched"] is None
    assert evidence["suggestion"] == {
        "matched": "email",
        "customer": {"id": customer_id(shop_a, 0)},
    }
