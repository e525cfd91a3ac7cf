"""The last full fit of a shop, stored so one customer can be rescored in milliseconds.

A full recompute fits the model and the shop's profile (rhythm, baselines) on all history;
rescoring a few customers reuses both instead of reading the whole shop again, with the segment
codes the profile's return curves were fitted under (`segments`). They are stored as JSON in
`risk_model.parameters`: numbers exactly (JSON floats round-trip), arrays as runs of equal
values (the profile's sorted day counts compress to a few hundred runs). A document from
another version of the model's dataclasses does not decode, and the caller then refits; one
from before segments has none, which is what its profile was fitted with.
"""

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from domain.db import AsyncSession, utcnow
from domain.ids import ShopId
from domain.ingest.statements import execute_many, guarded_upsert, table_of
from domain.risk.features import FEATURES, snapshot
from domain.risk.history import Purchases
from domain.risk.model import RiskModel
from domain.risk.models import ShopRiskModel
from domain.risk.profile import ShopProfile, shop_profile
from domain.risk.segments import SegmentKey

CODEC = 1

JSON = dict[str, Any]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FittedState:
    """What a full recompute leaves for rescoring: its cut-off, horizon, model and profile,
    and the code of each segment key that has a return curve of its own in the profile."""

    as_of: datetime
    horizon_days: int
    model: RiskModel
    profile: ShopProfile
    segments: Mapping[SegmentKey, int] = dataclasses.field(default_factory=dict)


def profile_as_of(
    purchases: Purchases, as_of_day: float, segment: IntArray | None = None
) -> ShopProfile:
    """The shop profile `score_customers` uses at this cut-off (same inputs, same result)."""
    snap = snapshot(purchases, as_of_day)
    return shop_profile(
        purchases,
        as_of_day,
        counts=snap.purchases,
        first_day=snap.first_day,
        second_day=snap.second_day,
        last_day=snap.last_day,
        segment=segment,
    )


async def load_state(session: AsyncSession, shop_id: ShopId) -> FittedState | None:
    """The shop's last full fit, or None when there is none or it no longer decodes."""
    # Read afresh: a run committed since this session last looked may have replaced it.
    row = await session.get(ShopRiskModel, shop_id, populate_existing=True)
    if row is None or row.parameters is None or row.fitted_as_of is None:
        return None
    if row.horizon_days is None or row.parameters.get("codec") != CODEC:
        return None
    try:
        model = _decode(RiskModel, row.parameters["model"])
        profile = _decode(ShopProfile, row.parameters["profile"])
        segments = _segments(row.parameters.get("segments", []))
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(model, RiskModel) or model.version != row.model_version:
        return None
    # A fit over another feature list (an older release) cannot score today's features.
    if model.features != FEATURES:
        return None
    if not isinstance(profile, ShopProfile):
        return None
    return FittedState(row.fitted_as_of, row.horizon_days, model, profile, segments)


async def save_state(session: AsyncSession, shop_id: ShopId, state: FittedState) -> None:
    """Store `state` unless the shop already has a fit at a later cut-off (a backfill)."""
    values = {
        "shop_id": shop_id,
        "fitted_as_of": state.as_of,
        "horizon_days": state.horizon_days,
        "model_version": state.model.version,
        "parameters": {
            "codec": CODEC,
            "model": _encode(state.model),
            "profile": _encode(state.profile),
            # [code, mall, product external id], in code order.
            "segments": sorted([code, *key] for key, code in state.segments.items()),
        },
        "updated_at": utcnow(),
    }
    statement = guarded_upsert(
        session,
        table_of(ShopRiskModel),
        keys=["shop_id"],
        update=[name for name in values if name != "shop_id"],
        guard="fitted_as_of",
    )
    await execute_many(session, statement, [values])


def _segments(document: list[list[Any]]) -> dict[SegmentKey, int]:
    segments: dict[SegmentKey, int] = {}
    for code, mall, product in document:
        if not isinstance(code, int) or not isinstance(mall, str) or not isinstance(product, str):
            raise TypeError("a stored segment is not [code, mall, product]")
        segments[mall, product] = code
    return segments


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _encode(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, np.ndarray):
        return _runs(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(cls: type[Any], document: JSON) -> Any:
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        raw = document[field.name]
        hint = hints[field.name]
        origin = typing.get_origin(hint)
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            values[field.name] = _decode(hint, raw)
        elif hint is np.ndarray or origin is np.ndarray:
            values[field.name] = _from_runs(raw)
        elif origin is tuple:
            values[field.name] = tuple(raw)
        elif hint is float:
            values[field.name] = float(raw)
        elif hint is int:
            values[field.name] = int(raw)
        else:
            values[field.name] = raw
    if set(document) != set(values):
        raise ValueError("stored fields differ from the current dataclass")
    return cls(**values)


def _runs(array: NDArray[Any]) -> JSON:
    flat = array.reshape(-1)
    if flat.shape[0] == 0:
        return {"dtype": array.dtype.str, "values": [], "counts": []}
    change = np.ones(flat.shape[0], dtype=np.bool_)
    change[1:] = flat[1:] != flat[:-1]
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, flat.shape[0]))
    return {"dtype": array.dtype.str, "values": flat[starts].tolist(), "counts": counts.tolist()}


def _from_runs(document: JSON) -> NDArray[Any]:
    values = np.asarray(document["values"], dtype=np.dtype(document["dtype"]))
    return np.repeat(values, np.asarray(document["counts"], dtype=np.int64))
