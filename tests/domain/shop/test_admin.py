"""Shop settings and API key management, audited."""

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from domain.audit.models import AuditLog
from domain.db import AsyncSession
from domain.errors import Conflict, InvalidInput, NotFound, ShopNameTaken
from domain.ids import ShopId
from domain.shop.models import Role
from domain.shop.service import (
    authenticate,
    create_api_key,
    create_shop,
    issue_api_key,
    list_api_keys,
    revoke_api_key,
    update_shop,
)


async def audit(session: AsyncSession, shop_id: ShopId) -> list[tuple[str, str]]:
    rows = await session.exec(
        select(AuditLog.actor, AuditLog.action).where(AuditLog.shop_id == shop_id)
    )
    return list(rows.all())


async def test_update_shop_changes_only_what_is_given(session: AsyncSession) -> None:
    shop = await create_shop(session, "update me")
    shop_id = ShopId(shop.id)

    updated = await update_shop(session, shop_id, actor="tester", horizon_days=30)
    unchanged = await update_shop(session, shop_id, actor="tester", timezone="Asia/Tokyo")

    assert (updated.name, updated.timezone, updated.horizon_days) == ("update me", "Asia/Tokyo", 30)
    assert unchanged is updated
    assert await audit(session, shop_id) == [("tester", "shop.update")]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Asia/Tokio"}, ("timezone",)),
        ({"timezone": ""}, ("timezone",)),
        ({"horizon_days": 731}, ("horizon_days",)),
        ({"name": ""}, ("name",)),
    ],
)
async def test_update_shop_refuses_bad_values_and_changes_nothing(
    session: AsyncSession, changes: dict[str, object], field: tuple[str, ...]
) -> None:
    shop = await create_shop(session, "stays")
    shop_id = ShopId(shop.id)

    with pytest.raises(InvalidInput) as refused:
        await update_shop(session, shop_id, actor="tester", **changes)  # type: ignore[arg-type]

    assert refused.value.field == field
    assert (shop.name, shop.timezone, shop.horizon_days) == ("stays", "Asia/Tokyo", 90)
    assert await audit(session, shop_id) == []


async def test_update_shop_refuses_a_taken_name(session: AsyncSession) -> None:
    await create_shop(session, "taken")
    shop = await create_shop(session, "mine")

    with pytest.raises(ShopNameTaken):
        await update_shop(session, ShopId(shop.id), actor="tester", name=" taken ")


async def test_issued_keys_are_audited_and_revocable(session: AsyncSession) -> None:
    shop = await create_shop(session, "keys")
    shop_id = ShopId(shop.id)
    await create_api_key(session, shop_id, Role.ADMIN)
    key, raw = await issue_api_key(session, shop_id, actor="tester", name=" BI ", role=Role.ANALYST)
    now = datetime.now(UTC)

    revoked = await revoke_api_key(session, shop_id, key.id, actor="tester", now=now)
    again = await revoke_api_key(session, shop_id, key.id, actor="tester", now=now)

    assert key.name == "BI"
    assert revoked.revoked_at == now == again.revoked_at
    assert await authenticate(session, raw, now=now) is None
    assert await audit(session, shop_id) == [
        ("tester", "api_key.create"),
        ("tester", "api_key.revoke"),
    ]
    assert len(await list_api_keys(session, shop_id)) == 2


async def test_the_last_admin_key_stays_and_foreign_keys_are_unknown(
    session: AsyncSession,
) -> None:
    shop = await create_shop(session, "admin")
    other = await create_shop(session, "other")
    admin, _ = await create_api_key(session, ShopId(shop.id), Role.ADMIN)
    now = datetime.now(UTC)

    with pytest.raises(Conflict):
        await revoke_api_key(session, ShopId(shop.id), admin.id, actor="tester", now=now)
    with pytest.raises(NotFound):
        await revoke_api_key(session, ShopId(other.id), admin.id, actor="tester", now=now)
    with pytest.raises(InvalidInput):
        await issue_api_key(session, ShopId(shop.id), actor="tester", name="", role=Role.ADMIN)
