import pytest

from domain.platforms import PlatformAuthRevoked, PlatformUnavailable
from tests.fakes.shopify import Knobs, generate
from tests.integrations.shopify.conftest import Collected, Mall, collect, order_ids


@pytest.fixture
def knobs() -> Knobs:
    # A small bucket that one page nearly empties: every page has to wait for points.
    return Knobs(max_available=300, restore_rate=20, order_node_cost=2)


@pytest.mark.parametrize("throttle_status", [200, 429])
async def test_a_throttling_storm_never_sees_a_request_sent_too_early(
    mall: Mall, throttle_status: int
) -> None:
    generate(mall.store, orders=1000, days=40, seed=8)
    mall.fake.knobs.throttle_status = throttle_status
    # Other apps of the shop spend from the same bucket behind the client's back.
    mall.fake.knobs.drain_on = {3: 250, 4: 300, 6: 120, 7: 300, 9: 299, 10: 200}

    synced = await collect(mall.platform(page_size=100), mall.account())

    assert mall.fake.violations == []
    assert mall.fake.throttled >= 3
    assert sorted(order_ids(synced.orders)) == sorted(o.gid for o in mall.store.orders.values())
    assert len(synced.orders) == 1000
    waits = sum(page.stats.throttle_waits for page in synced.pages)
    waited = sum(page.stats.throttle_wait_seconds for page in synced.pages)
    assert waits >= 9
    assert waited == pytest.approx(sum(mall.clock.slept))
    assert sum(page.stats.requests for page in synced.pages) == mall.fake.requests


async def test_a_query_costlier_than_the_bucket_is_asked_again_smaller(mall: Mall) -> None:
    generate(mall.store, orders=120, days=20, seed=4)

    synced = await collect(mall.platform(page_size=250), mall.account())

    assert len(synced.orders) == 120
    assert mall.fake.violations == []
    firsts = [int(logged.variables["first"]) for logged in mall.fake.log if logged.root == "orders"]
    assert firsts[0] == 250
    assert max(firsts[1:]) <= 125


async def test_retry_after_is_waited_out_before_the_next_request(mall: Mall) -> None:
    generate(mall.store, orders=300, days=20, seed=9)
    mall.fake.knobs.retry_after_on = {3: 4.0}

    synced = await collect(mall.platform(page_size=100), mall.account())

    assert len(synced.orders) == 300
    assert mall.fake.violations == []
    assert max(mall.clock.slept) >= 4.0


async def test_server_errors_and_timeouts_are_retried_without_losing_or_repeating_orders(
    mall: Mall,
) -> None:
    generate(mall.store, orders=500, days=20, seed=12)
    clean = await collect(mall.platform(page_size=100), mall.account())
    start = mall.fake.requests
    mall.fake.knobs.fail_on = {start + 3: 502, start + 6: 500, start + 7: 503}
    mall.fake.knobs.stall_on = {start + 4: 1.5, start + 9: 1.5}

    flaky = await collect(mall.platform(page_size=100, timeout=0.5), mall.account())

    assert order_ids(flaky.orders) == order_ids(clean.orders)
    assert len(set(order_ids(flaky.orders))) == 500
    statuses = [logged.status for logged in mall.fake.log[start:]]
    assert statuses.count(504) == 2
    assert {500, 502, 503} <= set(statuses)


async def test_a_sync_that_fails_mid_window_resumes_from_its_last_page(mall: Mall) -> None:
    generate(mall.store, orders=700, days=20, seed=13)
    clean = await collect(mall.platform(page_size=100), mall.account())
    start = mall.fake.requests
    # Request 1 reads the scopes, 2..4 the first three pages; the fourth page keeps failing.
    mall.fake.knobs.fail_on = {start + n: 500 for n in range(5, 9)}
    crashed = Collected()

    with pytest.raises(PlatformUnavailable) as failure:
        await collect(mall.platform(page_size=100, max_retries=3), mall.account(), into=crashed)
    assert failure.value.retry_after is not None
    assert len(crashed.pages) == 3
    assert crashed.cursor["phase"] == "orders"

    resumed = await collect(mall.platform(page_size=100), mall.account(), crashed.cursor)

    assert order_ids(crashed.orders + resumed.orders) == order_ids(clean.orders)
    assert resumed.cursor["phase"] == "idle"
    assert resumed.cursor["updated_at"] == crashed.cursor["window_end"]


async def test_an_outage_that_outlasts_the_retries_is_platform_unavailable(mall: Mall) -> None:
    generate(mall.store, orders=10, days=5, seed=1)
    mall.fake.knobs.fail_on = dict.fromkeys(range(1, 20), 503)

    with pytest.raises(PlatformUnavailable):
        await collect(mall.platform(max_retries=2), mall.account())
    assert mall.fake.requests == 3
    assert mall.clock.slept == [0.5, 1.0]


async def test_a_forbidden_answer_means_the_token_no_longer_works(mall: Mall) -> None:
    generate(mall.store, orders=10, days=5, seed=1)
    mall.fake.knobs.fail_on = {2: 403}

    with pytest.raises(PlatformAuthRevoked):
        await collect(mall.platform(), mall.account())
    assert mall.fake.requests == 2
