from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from domain.customer.models import Customer
from domain.customer.service import (
    CustomerSort,
    RankedCustomerRow,
    RiskFilter,
    count_customers,
    list_customers,
)
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.pagination import PageRequest, Position
from domain.risk.bands import BANDS, Band, BandThresholds, set_band_thresholds
from domain.risk.models import RiskScore
from domain.risk.reasons import shown_mask
from domain.risk.signs import SHOWN_AT, Sign
from domain.shop.models import Shop
from tests.factories.customer import make_customer
from tests.factories.shop import make_shop

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)


def reason(sign: str, strength: float) -> dict[str, Any]:
    return {"sign": sign, "strength": strength, "contribution": 0.0, "evidence": {}}


async def scored(
    session: AsyncSession, shop: Shop, name: str, probability: float | None, band: Band, *signs: Any
) -> Customer:
    customer = await make_customer(session, shop=shop, name=name)
    session.add(
        RiskScore(
            shop_id=shop.id,
            customer_id=customer.id,
            probability=probability,
            band=band.value,
            reasons=(reasons := [reason(sign, strength) for sign, strength in signs]),
            shown_signs=shown_mask(reasons),
            as_of=AS_OF,
        )
    )
    await session.flush()
    return customer


async def test_risk_rows_carry_the_probability_their_cursor_holds(session: AsyncSession) -> None:
    shop = await make_shop(session)
    await scored(session, shop, "low", 0.2, Band.LOW)
    high = await scored(session, shop, "high", 0.8, Band.HIGH)
    await make_customer(session, shop=shop, name="never scored")
    shop_id = ShopId(shop.id)

    first = await list_customers(
        session, shop_id, PageRequest(size=1, descending=True), sort=CustomerSort.RISK
    )
    rest = await list_customers(
        session,
        shop_id,
        PageRequest(size=5, descending=True, cursor=Position(0.8, high.id)),
        sort=CustomerSort.RISK,
    )

    (top,) = first.items
    assert isinstance(top, RankedCustomerRow)
    assert (top.display_name, top.risk_probability) == ("high", 0.8)
    assert first.has_next
    assert [(row.display_name, getattr(row, "risk_probability", "?")) for row in rest.items] == [
        ("low", 0.2),
        ("never scored", None),
    ]


async def test_a_sign_shows_from_its_threshold_and_counts_agree(session: AsyncSession) -> None:
    shop = await make_shop(session)
    await scored(session, shop, "at", 0.9, Band.CRITICAL, ("basket", SHOWN_AT))
    await scored(session, shop, "below", 0.9, Band.CRITICAL, ("basket", SHOWN_AT - 0.0001))
    await scored(session, shop, "unscored", None, Band.UNSCORED)
    other = await make_shop(session)
    await scored(session, other, "foreign", 0.9, Band.CRITICAL, ("basket", 1.0))
    shop_id = ShopId(shop.id)
    basket = RiskFilter(signs=frozenset({Sign.BASKET}))
    critical = RiskFilter(bands=frozenset({Band.CRITICAL}))

    shown = await list_customers(session, shop_id, PageRequest(size=10), risk=basket)

    assert [row.display_name for row in shown.items] == ["at"]
    assert await count_customers(session, shop_id, risk=basket) == 1
    assert await count_customers(session, shop_id, risk=critical) == 2
    assert await count_customers(session, shop_id, risk=RiskFilter()) == 3
    assert not RiskFilter()


async def test_band_filters_match_the_stored_bands_at_the_shops_thresholds(
    session: AsyncSession,
) -> None:
    shop = await make_shop(session)
    thresholds = BandThresholds(medium=0.4, high=0.6, critical=0.8)
    await set_band_thresholds(session, ShopId(shop.id), thresholds)
    probabilities = [0.0, 0.1, 0.4 - 1e-12, 0.4, 0.5, 0.6, 0.7, 0.8 - 1e-12, 0.8, 0.99, 1.0, None]
    bands: dict[str, Band] = {}
    for n, probability in enumerate(probabilities):
        band = thresholds.band_of(probability)
        bands[f"c{n:02}"] = band
        await scored(session, shop, f"c{n:02}", probability, band)
    await make_customer(session, shop=shop, name="never scored")
    # Another shop's defaults (0.5, 0.75, 0.9) band the same probabilities otherwise.
    other = await make_shop(session)
    await scored(session, other, "foreign", 0.7, Band.MEDIUM)
    shop_id = ShopId(shop.id)

    for size in range(1, len(BANDS) + 1):
        for wanted in combinations(BANDS, size):
            risk = RiskFilter(bands=frozenset(wanted))
            expected = sorted(name for name, band in bands.items() if band in wanted)
            by_name = await list_customers(
                session, shop_id, PageRequest(size=50), sort=CustomerSort.NAME, risk=risk
            )
            by_risk = await list_customers(
                session, shop_id, PageRequest(size=50), sort=CustomerSort.RISK, risk=risk
            )
            down = await list_customers(
                session,
                shop_id,
                PageRequest(size=50, descending=True),
                sort=CustomerSort.RISK,
                risk=risk,
            )

            assert [row.display_name for row in by_name.items] == expected, wanted
            assert sorted(row.display_name for row in by_risk.items) == expected, wanted
            assert sorted(row.display_name for row in down.items) == expected, wanted
            assert await count_customers(session, shop_id, risk=risk) == len(expected), wanted
