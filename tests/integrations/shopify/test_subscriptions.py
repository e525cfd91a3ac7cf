from datetime import timedelta

from domain.platforms import SubscriptionEventRecord
from domain.subscription.models import SubscriptionEventKind, SubscriptionStatus
from tests.fakes.shopify import ALL_SCOPES
from tests.integrations.shopify.conftest import Mall, collect


def _events(pages: list[SubscriptionEventRecord]) -> dict[str, SubscriptionEventKind]:
    return {event.dedup_key: event.kind for event in pages}


async def test_contracts_map_to_subscriptions_with_skips_pauses_and_cancellations(
    mall: Mall,
) -> None:
    store = mall.store
    started = mall.clock.now() - timedelta(days=90)
    people = [store.add_customer(email=f"sub{index}@example.jp") for index in range(4)]
    active = store.add_contract(people[0], created_at=started)
    paused = store.add_contract(people[1], created_at=started, interval="WEEK", interval_count=2)
    cancelled = store.add_contract(people[2], created_at=started)
    expired = store.add_contract(people[3], created_at=started)
    store.skip_cycle(active, 2)
    store.set_contract_status(paused, "PAUSED")
    store.set_contract_status(cancelled, "CANCELLED")
    store.set_contract_status(expired, "EXPIRED")

    synced = await collect(mall.platform(contract_page_size=3), mall.account())

    subscriptions = {
        record.external_id: record for page in synced.pages for record in page.records.subscriptions
    }
    assert {key: record.status for key, record in subscriptions.items()} == {
        active.gid: SubscriptionStatus.ACTIVE,
        paused.gid: SubscriptionStatus.PAUSED,
        cancelled.gid: SubscriptionStatus.CANCELLED,
        expired.gid: SubscriptionStatus.CANCELLED,
    }
    assert subscriptions[active.gid].interval_days == 30
    assert subscriptions[paused.gid].interval_days == 14
    assert subscriptions[active.gid].customer_external_id == people[0].gid
    assert subscriptions[active.gid].product_title == "定期便 コーヒー豆"
    assert subscriptions[active.gid].started_at == active.created_at
    assert subscriptions[cancelled.gid].cancelled_at == cancelled.updated_at
    assert subscriptions[active.gid].next_delivery_at == active.cycles[-1].start_at
    events = [e for page in synced.pages for e in page.records.subscription_events]
    assert _events(events) == {
        f"{active.gid}:started": SubscriptionEventKind.STARTED,
        f"{active.gid}:skip:2": SubscriptionEventKind.SKIPPED,
        f"{paused.gid}:started": SubscriptionEventKind.STARTED,
        f"{paused.gid}:paused@{paused.updated_at.isoformat()}": SubscriptionEventKind.PAUSED,
        f"{cancelled.gid}:started": SubscriptionEventKind.STARTED,
        f"{cancelled.gid}:cancelled": SubscriptionEventKind.CANCELLED,
        f"{expired.gid}:started": SubscriptionEventKind.STARTED,
        f"{expired.gid}:cancelled": SubscriptionEventKind.CANCELLED,
    }
    reasons = {event.dedup_key: event.reason for event in events}
    assert reasons[f"{expired.gid}:cancelled"] == "expired"
    skip = next(e for e in events if e.kind is SubscriptionEventKind.SKIPPED)
    assert skip.occurred_at == active.cycles[1].start_at
    # Each page carries the customers of its contracts: events never precede their contract.
    for page in synced.pages:
        contracts = {record.external_id for record in page.records.subscriptions}
        assert {e.subscription_external_id for e in page.records.subscription_events} <= contracts
        owners = {record.customer_external_id for record in page.records.subscriptions}
        assert owners == {customer.external_id for customer in page.records.customers}
    # An empty page of orders, then the contracts three at a time.
    assert [page.cursor["phase"] for page in synced.pages] == [
        "subscriptions",
        "subscriptions",
        "idle",
    ]

    # A skip edits the billing cycle, not the contract; the next sync still sees it, and the
    # events already seen come again under the same ids.
    mall.clock.advance(3600)
    store.skip_cycle(active, 3)
    again = await collect(mall.platform(), mall.account(), synced.cursor)
    later = _events([e for page in again.pages for e in page.records.subscription_events])
    assert later == {**_events(events), f"{active.gid}:skip:3": SubscriptionEventKind.SKIPPED}

    # Ended contracts not changed since the last sync are not asked for their cycles again.
    mall.clock.advance(3600)
    start = mall.fake.requests
    await collect(mall.platform(), mall.account(), again.cursor)
    asked = [
        logged.variables["id"]
        for logged in mall.fake.log[start:]
        if logged.root == "subscriptionBillingCycles"
    ]
    assert sorted(asked) == sorted([active.gid, paused.gid])


async def test_a_contract_phase_interrupted_resumes_after_its_last_page(mall: Mall) -> None:
    people = [mall.store.add_customer(email=f"p{index}@example.jp") for index in range(5)]
    contracts = [mall.store.add_contract(person) for person in people]
    platform = mall.platform(contract_page_size=2)
    pages = []
    async for page in platform.sync_pages(mall.account(), {}, None):
        pages.append(page)
        if page.records.subscriptions:
            break
    assert pages[-1].cursor["phase"] == "subscriptions"

    rest = await collect(platform, mall.account(), pages[-1].cursor)

    seen = [s.external_id for page in pages + rest.pages for s in page.records.subscriptions]
    assert seen == [contract.gid for contract in contracts]
    assert rest.cursor["phase"] == "idle"


async def test_without_subscription_scopes_orders_still_sync(mall: Mall) -> None:
    mall.fake.tokens["shpat_orders_only"] = ALL_SCOPES - {"read_own_subscription_contracts"}
    buyer = mall.store.add_customer(email="o@example.jp")
    order = mall.store.add_order(buyer)
    mall.store.add_contract(buyer)

    synced = await collect(mall.platform(), mall.account("shpat_orders_only"))

    assert [o.external_id for o in synced.orders] == [order.gid]
    assert synced.cursor["subscriptions"] == "access_denied"
    assert synced.cursor["phase"] == "idle"
    assert all(not page.records.subscriptions for page in synced.pages)
