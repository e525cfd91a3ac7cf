"""The distribution for charts agrees with itself and with the listing filters."""

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.customer.service import RiskFilter, count_customers
from domain.db import AsyncSession
from domain.errors import InvalidInput
from domain.ids import ShopId
from domain.risk.bands import BANDS, Band, BandThresholds
from domain.risk.distribution import risk_distribution
from domain.risk.models import RiskScore
from domain.risk.reasons import shown_mask
from domain.risk.signs import SHOWN_AT, Sign
from domain.shop.models import Shop
from tests.factories.customer import make_customer
from tests.factories.shop import make_shop

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)
THRESHOLDS = BandThresholds()
# (probability, {sign: strength}); None: not scorable.
SCORES: list[tuple[float | None, dict[str, float]]] = [
    (0.0, {}),
    (0.1, {"interval": 0.2}),
    (0.25, {"basket": SHOWN_AT}),
    (0.5, {"interval": 0.9, "basket": SHOWN_AT - 1e-9}),
    (0.74, {"subscription": 0.7}),
    (0.75, {"interval": 0.6, "subscription": 0.5}),
    (0.9, {"interval": 1.0}),
    (0.99, {"basket": 0.8, "interval": 0.8}),
    (1.0, {"interval": 1.0}),
    (None, {}),
]


async def _scored(session: AsyncSession, shop: Shop) -> None:
    for n, (probability, signs) in enumerate(SCORES):
        customer = await make_customer(session, shop=shop, name=f"c{n}")
        reasons: list[dict[str, Any]] = [
            {"sign": sign, "strength": strength, "contribution": 0.1, "evidence": {}}
            for sign, strength in signs.items()
        ]
        session.add(
            RiskScore(
                shop_id=shop.id,
                customer_id=customer.id,
                probability=probability,
                band=THRESHOLDS.band_of(probability).value,
                reasons=reasons,
                shown_signs=shown_mask(reasons),
                as_of=AS_OF,
            )
        )
    await session.flush()


async def test_counts_by_band_sign_and_bucket(session: AsyncSession) -> None:
    shop = await make_shop(session)
    await _scored(session, shop)
    await make_customer(session, shop=shop, name="never scored")
    other = await make_shop(session)
    await _scored(session, other)
    shop_id = ShopId(shop.id)

    distribution = await risk_distribution(session, shop_id, buckets=4)

    assert distribution.customers.count == len(SCORES)
    assert distribution.customers.bands == {
        Band.LOW: 3,
        Band.MEDIUM: 2,
        Band.HIGH: 1,
        Band.CRITICAL: 3,
        Band.UNSCORED: 1,
    }
    assert {sign: tally.count for sign, tally in distribution.signs.items()} == {
        Sign.INTERVAL: 5,
        Sign.BASKET: 2,
        Sign.SUBSCRIPTION: 2,
    }
    assert distribution.signs[Sign.INTERVAL].bands[Band.CRITICAL] == 3
    assert distribution.signs[Sign.BASKET].bands == {
        Band.LOW: 1,
        Band.MEDIUM: 0,
        Band.HIGH: 0,
        Band.CRITICAL: 1,
        Band.UNSCORED: 0,
    }
    histogram = distribution.histogram
    assert [(bucket.lower, bucket.upper) for bucket in histogram] == [
        (0.0, 0.25),
        (0.25, 0.5),
        (0.5, 0.75),
        (0.75, 1.0),
    ]
    # 1.0 falls in the last bucket; each edge starts the bucket above it.
    assert [bucket.customers.count for bucket in histogram] == [2, 1, 2, 4]
    assert histogram[2].customers.bands[Band.MEDIUM] == 2
    assert histogram[3].customers.bands[Band.CRITICAL] == 3
    assert histogram[3].signs[Sign.SUBSCRIPTION].count == 1
    assert sum(bucket.customers.count for bucket in histogram) == len(SCORES) - 1


async def test_the_distribution_matches_the_listing_filters(session: AsyncSession) -> None:
    shop = await make_shop(session)
    await _scored(session, shop)
    shop_id = ShopId(shop.id)

    distribution = await risk_distribution(session, shop_id, buckets=1)

    for band in BANDS:
        only = RiskFilter(bands=frozenset({band}))
        assert distribution.customers.bands[band] == await count_customers(
            session, shop_id, risk=only
        )
    for sign in Sign:
        shown = RiskFilter(signs=frozenset({sign}))
        assert distribution.signs[sign].count == await count_customers(session, shop_id, risk=shown)
    (everything,) = distribution.histogram
    assert everything.customers.count == len(SCORES) - 1


@pytest.mark.parametrize("buckets", [0, 101, -3])
async def test_a_bucket_count_out_of_range_is_refused(session: AsyncSession, buckets: int) -> None:
    shop = await make_shop(session)

    with pytest.raises(InvalidInput) as refused:
        await risk_distribution(session, ShopId(shop.id), buckets=buckets)

    assert refused.value.field == ("buckets",)
