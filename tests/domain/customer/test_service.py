import uuid

import pytest

from domain.customer.service import (
    CustomerSort,
    count_customers,
    get_customers,
    get_identities,
    identities_by_customer,
    like_pattern,
    list_customers,
)
from domain.db import AsyncSession
from domain.ids import ShopId
from domain.pagination import PageRequest
from tests.factories.customer import make_customer
from tests.factories.shop import make_shop


def test_like_patterns_take_wildcards_literally() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


async def test_search_ignores_case_and_treats_wildcards_as_text(session: AsyncSession) -> None:
    shop = await make_shop(session)
    await make_customer(session, shop=shop, name="Sato 100%", email="SATO@example.jp")
    await make_customer(session, shop=shop, name="Suzuki", email="suzuki@example.jp")
    shop_id = ShopId(shop.id)
    request = PageRequest(size=10)

    async def names(search: str) -> list[str]:
        page = await list_customers(
            session, shop_id, request, sort=CustomerSort.NAME, search=search
        )
        return [row.display_name for row in page.items]

    assert await names("sato") == ["Sato 100%"]
    assert await names("%") == ["Sato 100%"]
    assert await names("_") == []
    assert await names("EXAMPLE.JP") == ["Sato 100%", "Suzuki"]
    assert await names("   ") == ["Sato 100%", "Suzuki"]
    assert await count_customers(session, shop_id, search="example") == 2


async def test_search_matches_an_identity_external_id_exactly(session: AsyncSession) -> None:
    shop = await make_shop(session)
    await make_customer(session, shop=shop, name="Tanaka", external_id="R-9001")
    shop_id = ShopId(shop.id)

    exact = await list_customers(session, shop_id, PageRequest(size=5), search="R-9001")
    partial = await list_customers(session, shop_id, PageRequest(size=5), search="R-900")

    assert [row.display_name for row in exact.items] == ["Tanaka"]
    assert partial.items == []


async def test_lookups_only_find_the_shops_own_rows(session: AsyncSession) -> None:
    shop = await make_shop(session)
    other = await make_shop(session)
    mine = await make_customer(session, shop=shop)
    theirs = await make_customer(session, shop=other)
    shop_id = ShopId(shop.id)

    found = await get_customers(session, shop_id, [mine.id, theirs.id, uuid.uuid4()])
    identities = await identities_by_customer(session, shop_id, [mine.id, theirs.id])

    assert list(found) == [mine.id]
    assert found[mine.id].display_name == mine.display_name
    assert len(identities[mine.id]) == 1
    assert identities[theirs.id] == []
    foreign_identity = (await identities_by_customer(session, ShopId(other.id), [theirs.id]))[
        theirs.id
    ][0]
    assert await get_identities(session, shop_id, [foreign_identity.id]) == {}
    assert await get_customers(session, shop_id, []) == {}


@pytest.mark.parametrize("sort", list(CustomerSort))
async def test_every_sort_lists_every_customer_once(
    session: AsyncSession, sort: CustomerSort
) -> None:
    shop = await make_shop(session)
    for name in ("b", "a", "c"):
        await make_customer(session, shop=shop, name=name)

    page = await list_customers(session, ShopId(shop.id), PageRequest(size=10), sort=sort)

    assert sorted(row.display_name for row in page.items) == ["a", "b", "c"]
    assert (page.has_next, page.has_previous) == (False, False)
