import dataclasses
from datetime import UTC, datetime

import numpy as np

from domain.db import AsyncSession
from domain.ids import ShopId
from domain.risk.history import purchases_before
from domain.risk.models import ShopRiskModel
from domain.risk.scoring import fit_risk_model
from domain.risk.state import FittedState, load_state, profile_as_of, save_state
from tests.domain.risk.simulate import poisson_shop
from tests.factories.shop import make_shop

AS_OF = datetime(2025, 6, 1, tzinfo=UTC)


def _fitted(seed: int, as_of: datetime = AS_OF) -> FittedState:
    shop = poisson_shop(2000, seed=seed)
    model = fit_risk_model(shop.orders, shop.as_of, shop.horizon)
    profile = profile_as_of(purchases_before(shop.orders, shop.as_of), shop.as_of)
    return FittedState(as_of, shop.horizon, model, profile)


def _assert_equal(left: object, right: object) -> None:
    if isinstance(left, np.ndarray):
        assert isinstance(right, np.ndarray)
        assert left.dtype == right.dtype
        np.testing.assert_array_equal(left, right)
    elif hasattr(left, "__dataclass_fields__"):
        assert type(left) is type(right)
        for name in left.__dataclass_fields__:
            _assert_equal(getattr(left, name), getattr(right, name))
    else:
        assert left == right


async def test_a_stored_fit_comes_back_exactly(session: AsyncSession) -> None:
    shop = await make_shop(session)
    state = _fitted(seed=41)

    await save_state(session, ShopId(shop.id), state)
    loaded = await load_state(session, ShopId(shop.id))

    assert loaded is not None
    _assert_equal(loaded, state)
    assert loaded.model.version == state.model.version


async def test_an_older_fit_never_replaces_a_newer_one(session: AsyncSession) -> None:
    shop = await make_shop(session)
    newer, older = _fitted(seed=42), _fitted(seed=43, as_of=datetime(2025, 1, 1, tzinfo=UTC))

    await save_state(session, ShopId(shop.id), newer)
    await save_state(session, ShopId(shop.id), older)

    loaded = await load_state(session, ShopId(shop.id))
    assert loaded is not None
    assert (loaded.as_of, loaded.model.version) == (AS_OF, newer.model.version)


async def test_a_document_that_no_longer_decodes_means_no_fit(session: AsyncSession) -> None:
    shop = await make_shop(session)
    await save_state(session, ShopId(shop.id), _fitted(seed=44))
    row = await session.get(ShopRiskModel, shop.id)
    assert row is not None
    assert row.parameters is not None
    broken = dict(row.parameters)
    broken["model"] = {**broken["model"], "renamed": 1}
    row.parameters = broken
    await session.flush()

    assert await load_state(session, ShopId(shop.id)) is None


async def test_a_fit_over_another_feature_list_is_not_reused(session: AsyncSession) -> None:
    # A fit stored by a release with one feature fewer: it decodes, but cannot score today's
    # feature matrix, so the shop is refitted rather than rescored with it.
    shop = await make_shop(session)
    state = _fitted(seed=45)
    model = state.model
    older = dataclasses.replace(
        model,
        features=model.features[:-1],
        mean=model.mean[:-1],
        scale=model.scale[:-1],
        alive_weights=model.alive_weights[:-1],
        rate_weights=model.rate_weights[:-1],
    )
    await save_state(session, ShopId(shop.id), dataclasses.replace(state, model=older))
    row = await session.get(ShopRiskModel, shop.id)
    assert row is not None
    assert row.model_version == older.version

    assert await load_state(session, ShopId(shop.id)) is None


async def test_a_shop_without_a_fit_has_none(session: AsyncSession) -> None:
    shop = await make_shop(session)

    assert await load_state(session, ShopId(shop.id)) is None
