"""`kizuki score`: a shop's risk as of any date, computed afresh and written as CSV.

Nothing stored takes part (no saved scores, no data from `as_of` on) and nothing is stored:
the same command on the same data gives the same file.
"""

import csv
import os
import tempfile
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.customer.models import CustomerIdentity
from domain.db import AsyncSession, utcnow
from domain.errors import InvalidInput
from domain.ids import ShopId
from domain.ingest.statements import fetch_all, table_of
from domain.risk.bands import BANDS, assign_bands, get_band_thresholds
from domain.risk.days import local_day, shop_zone, start_of_day
from domain.risk.loading import load_history
from domain.risk.reasons import sign_name, top_signs
from domain.risk.scoring import RiskScores, ScoreState, score_customers
from domain.risk.segments import assign_segments
from domain.risk.signs import Sign
from domain.shop.service import require_shop

COLUMNS = (
    "external_id",
    "mall",
    "probability",
    "expected_purchases",
    "band",
    "top_reason",
    "top_reason_summary",
)
# What an unscorable customer's row says instead of a sign.
UNSCORED = {
    ScoreState.NO_ORDERS: ("no_orders", "no orders before the cut-off"),
    ScoreState.NO_PURCHASES: ("no_purchases", "every order cancelled or fully refunded"),
}


async def export_scores(
    sessions: async_sessionmaker[AsyncSession],
    shop_id: ShopId,
    *,
    out: Path,
    as_of: date | datetime | None = None,
    horizon_days: int | None = None,
) -> int:
    """Score every customer known by `as_of` from data before it; write one CSV row each.

    A `date` is the start of that day in the shop's time zone (its orders do not count);
    default now. `horizon_days` defaults to the shop's. Columns: `COLUMNS` (the external ID
    and mall of the customer's first identity). The file appears whole or not at all.
    Returns the number of customers written.
    """
    if horizon_days is not None and horizon_days < 1:
        raise InvalidInput("horizon_days must be at least 1", "horizon_days")
    async with sessions() as session:
        shop = await require_shop(session, shop_id)
        zone = shop_zone(shop.timezone)
        if isinstance(as_of, datetime):
            if as_of.tzinfo is None:
                raise InvalidInput("as_of needs a time zone", "as_of")
            cutoff = as_of
        else:
            cutoff = start_of_day(as_of, zone) if as_of is not None else utcnow()
        horizon = horizon_days or shop.horizon_days
        history = await load_history(session, shop_id, zone, before=cutoff)
        identities = await _first_identities(session, shop_id)
        thresholds = await get_band_thresholds(session, shop_id)
        await session.rollback()
    day = local_day(cutoff, zone)
    subscriptions = history.subscriptions
    segment = assign_segments(history.first_products).codes
    # No model given: it is fitted on the same purchases the scores are taken from.
    scores = score_customers(
        history.orders, day, horizon, subscriptions=subscriptions, segment=segment
    )
    bands = assign_bands(scores.p_no_purchase, scores.scorable, thresholds)
    top = top_signs(scores)
    ids = [uuid.UUID(bytes=value.tobytes()) for value in history.customer_ids]
    rows = (
        _row(scores, index, identities.get(customer_id, ("", "")), BANDS[bands[index]].value, top)
        for index, customer_id in enumerate(ids)
    )
    _write_atomically(out, rows)
    return len(ids)


def _row(
    scores: RiskScores,
    index: int,
    identity: tuple[str, str],
    band: str,
    top: NDArray[np.int8],
) -> Sequence[str]:
    state = ScoreState(int(scores.state[index]))
    if state is not ScoreState.SCORED:
        reason, summary = UNSCORED[state]
        return (*identity, "", "", band, reason, summary)
    code = int(top[index])
    sign = Sign(code) if code >= 0 else None
    return (
        *identity,
        f"{scores.p_no_purchase[index]:.4f}",
        f"{scores.expected_purchases[index]:.3f}",
        band,
        sign_name(sign) if sign is not None else "",
        scores.evidence.summary(sign, index) if sign is not None else "",
    )


async def _first_identities(
    session: AsyncSession, shop_id: ShopId
) -> dict[uuid.UUID, tuple[str, str]]:
    """Each customer's first identity (earliest created): (external id, mall)."""
    identity = table_of(CustomerIdentity)
    rank = (
        func.row_number()
        .over(
            partition_by=identity.c.customer_id,
            order_by=(identity.c.created_at, identity.c.id),
        )
        .label("rank")
    )
    ranked = (
        select(identity.c.customer_id, identity.c.external_id, identity.c.platform, rank)
        .where(identity.c.shop_id == shop_id)
        .subquery()
    )
    statement = select(ranked.c.customer_id, ranked.c.external_id, ranked.c.platform).where(
        ranked.c.rank == 1
    )
    return {row[0]: (row[1], row[2]) for row in await fetch_all(session, statement)}


def _write_atomically(out: Path, rows: Iterable[Sequence[str]]) -> None:
    directory = out.resolve().parent
    if not directory.is_dir():
        raise InvalidInput(f"no such directory: {directory}", "out")
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(COLUMNS)
            writer.writerows(rows)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
