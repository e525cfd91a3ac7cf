"""`bind_tenant`: a backstop that scopes every ORM select of a session to one shop."""

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select

from domain.customer.models import Customer
from domain.db import AsyncSession, bind_tenant
from domain.shop.models import Shop
from tests.factories.customer import make_customer
from tests.factories.shop import make_shop


async def test_a_bound_session_sees_only_its_shops_rows(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await make_shop(session)
    second = await make_shop(session)
    mine = await make_customer(session, shop=first, name="mine")
    await make_customer(session, shop=second, name="theirs")
    await session.commit()

    for shop, expected in ((first, ["mine"]), (second, ["theirs"])):
        async with sessions() as scoped:
            bind_tenant(scoped, shop.id)
            names = (await scoped.exec(select(Customer.display_name))).all()
            customers = (await scoped.exec(select(Customer))).all()
            found = await scoped.get(Customer, (first.id, mine.id))
            assert list(names) == expected
            assert [c.display_name for c in customers] == expected
            assert (found is not None) is (shop is first)


async def test_non_tenant_tables_stay_readable(
    session: AsyncSession, sessions: async_sessionmaker[AsyncSession]
) -> None:
    shop = await make_shop(session)
    await session.commit()

    async with sessions() as scoped:
        bind_tenant(scoped, shop.id)
        found = await scoped.get(Shop, shop.id)

    assert found is not None
    assert found.name == shop.name
