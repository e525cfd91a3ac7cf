"""What new scores change against the stored ones: history rows, band changes.

A customer's new score gets a history row when it is their first, when it is a backfill
(older than the current score), when the band changes, or when the probability moved at least
`HISTORY_STEP` from their last history row's (`risk_score.recorded_probability`), or appeared
or vanished. A band change is a new band on a current score the new one replaces (no score
yet, or one not newer).

The stored scores are read once per slice of customers, in bulk, and compared in numpy: the
writer then stores the decisions with the rows instead of joining every row of the slice to
`risk_score` in each statement that needs them.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import SmallInteger, case, cast, func, select

from domain.db import AsyncSession
from domain.ids import ShopId
from domain.ingest.statements import chunked, table_of
from domain.risk.bands import Band
from domain.risk.copy import Columns, Kind, read_columns
from domain.risk.models import HISTORY_STEP, RiskScore

FloatArray = NDArray[np.float64]
UuidArray = NDArray[np.void]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

_SCORE = table_of(RiskScore)
_BAND_NAMES = [band.value for band in Band]
_BAND_CODES = {name: code for code, name in enumerate(_BAND_NAMES)}
# Codes of a stored band this code does not know, and of no stored score at all.
_UNKNOWN_BAND, _NO_SCORE = -1, -2
_STORED = (
    ("customer", Kind.UUID),
    ("band", Kind.INT2),
    ("as_of", Kind.TIMESTAMP),
    ("recorded", Kind.FLOAT8),
)


@dataclass(frozen=True, slots=True)
class Changes:
    """Per new score: whether it gets a history row, the current score's recorded probability
    (NaN: none), and whether it changes the current band (with the band it replaces)."""

    history: BoolArray
    recorded: FloatArray
    band_changed: BoolArray
    previous: IntArray  # the stored band's code; negative: none (or one not known here)

    def previous_band(self, n: int) -> str | None:
        """The band the `n`th score's stored one had; None when there was none (or unknown)."""
        code = int(self.previous[n])
        return _BAND_NAMES[code] if code >= 0 else None


async def read_stored(
    session: AsyncSession, shop_id: ShopId, ids: UuidArray, *, bulk: bool
) -> Columns:
    """The stored current scores of these customers: band code, as of, recorded probability.

    `bulk`: `ids` are many (a slice of a run: a range of ids), read as the one range of the
    primary key that holds them (extra rows in it are ignored later); else a few, read by id.
    """
    score = _SCORE.c
    query = select(
        score.customer_id,
        cast(case(_BAND_CODES, value=score.band, else_=_UNKNOWN_BAND), SmallInteger),
        score.as_of,
        # Never NULL in a bulk read: -1 stands for none.
        func.coalesce(score.recorded_probability, -1.0),
    ).where(score.shop_id == shop_id)
    if ids.shape[0] == 0:
        return await read_columns(session, query.where(score.customer_id.is_(None)), _STORED)
    if bulk:
        ordered = np.sort(ids.view("S16")).view("V16")
        low, high = (uuid.UUID(bytes=ordered[n].tobytes()) for n in (0, -1))
        return await read_columns(
            session, query.where(score.customer_id.between(low, high)), _STORED
        )
    keys = [uuid.UUID(bytes=value.tobytes()) for value in ids]
    parts = [
        await read_columns(session, query.where(score.customer_id.in_(chunk)), _STORED, bulk=False)
        for chunk in chunked(keys)
    ]
    return {name: np.concatenate([part[name] for part in parts]) for name, _ in _STORED}


def compare(
    stored: Columns, ids: UuidArray, bands: Sequence[str], probability: FloatArray, as_of: datetime
) -> Changes:
    """`Changes` of new scores (`ids`, `bands`, `probability`, NaN: not scorable) at `as_of`
    against `stored` (from `read_stored`)."""
    size = ids.shape[0]
    keys = stored["customer"].view("S16")
    if keys.shape[0] == 0:
        found = np.zeros(size, dtype=np.bool_)
        old_band = np.full(size, _NO_SCORE, dtype=np.int64)
        old_at = np.zeros(size, dtype=np.int64)
        raw = np.full(size, -1.0)
    else:
        order = np.argsort(keys, kind="stable")
        position = np.minimum(np.searchsorted(keys[order], ids.view("S16")), keys.shape[0] - 1)
        index = order[position]
        found = keys[index] == ids.view("S16")
        old_band = np.where(found, stored["band"][index], _NO_SCORE)
        # Whole microseconds, so equal moments compare equal whatever float rounding did.
        old_at = np.round(stored["as_of"][index] * 1e6).astype(np.int64)
        raw = stored["recorded"][index]
    at = round(as_of.timestamp() * 1e6)
    old_recorded = np.where(found & (raw >= 0), raw, np.nan)
    new_band = np.array([_BAND_CODES.get(band, _UNKNOWN_BAND) for band in bands], dtype=np.int64)
    with np.errstate(invalid="ignore"):
        moved = (
            (old_band != new_band)
            | (np.isnan(old_recorded) != np.isnan(probability))
            | (np.abs(probability - old_recorded) >= HISTORY_STEP)
        )
    replaced = ~found | (old_at <= at)
    backfill = found & (old_at > at)
    return Changes(
        history=~found | backfill | moved,
        recorded=np.where(~found | moved, probability, old_recorded),
        band_changed=replaced & (old_band != new_band),
        previous=old_band.astype(np.int64),
    )
