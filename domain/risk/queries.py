"""Reads of stored risk scores for the API: current scores, history and sign filters."""

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy
from sqlalchemy import ColumnElement, SmallInteger, func, literal_column
from sqlmodel import col, select

from domain.db import AsyncSession
from domain.ids import ShopId
from domain.queries import rows
from domain.risk.bands import Band
from domain.risk.models import RiskScore, RiskScoreHistory
from domain.risk.reasons import sign_mask
from domain.risk.signs import Evidence, Sign


@dataclass(frozen=True, slots=True)
class ReasonRow:
    sign: Sign
    strength: float
    contribution: float
    evidence: dict[str, float]
    summary: str


@dataclass(frozen=True, slots=True)
class ScoreRow:
    customer_id: uuid.UUID
    probability: float | None
    expected_purchases: float | None
    expected_spend: int | None
    band: Band
    reasons: list[ReasonRow]
    horizon_days: int
    as_of: datetime
    model_version: str


@dataclass(frozen=True, slots=True)
class PointRow:
    customer_id: uuid.UUID
    as_of: datetime
    probability: float | None
    band: Band


async def scores_by_customer(
    session: AsyncSession, shop_id: ShopId, customer_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, ScoreRow]:
    """The current score of each of `customer_ids` that has one; others are absent."""
    if not customer_ids:
        return {}
    statement = select(RiskScore).where(
        col(RiskScore.shop_id) == shop_id, col(RiskScore.customer_id).in_(list(customer_ids))
    )
    found: dict[uuid.UUID, ScoreRow] = {}
    for score in await session.exec(statement):
        found[score.customer_id] = ScoreRow(
            customer_id=score.customer_id,
            probability=score.probability,
            expected_purchases=score.expected_purchases,
            expected_spend=score.expected_spend,
            band=Band(score.band),
            reasons=parse_reasons(score.reasons),
            horizon_days=score.horizon_days,
            as_of=score.as_of,
            model_version=score.model_version,
        )
    return found


async def history_by_customer(
    session: AsyncSession, shop_id: ShopId, customer_ids: Collection[uuid.UUID], *, limit: int
) -> dict[uuid.UUID, list[PointRow]]:
    """Each customer's latest `limit` scores, newest first; customers without any map to `[]`."""
    found: dict[uuid.UUID, list[PointRow]] = {customer_id: [] for customer_id in customer_ids}
    if not found or limit <= 0:
        return found
    # sqlalchemy's own select: sqlmodel's overloads stop at four columns.
    rank = (
        func.row_number()
        .over(
            partition_by=col(RiskScoreHistory.customer_id),
            order_by=col(RiskScoreHistory.as_of).desc(),
        )
        .label("rank")
    )
    ranked = (
        sqlalchemy.select(
            col(RiskScoreHistory.customer_id),
            col(RiskScoreHistory.as_of),
            col(RiskScoreHistory.probability),
            col(RiskScoreHistory.band),
            rank,
        )
        .where(
            col(RiskScoreHistory.shop_id) == shop_id,
            col(RiskScoreHistory.customer_id).in_(list(found)),
        )
        .subquery()
    )
    statement = (
        sqlalchemy.select(ranked.c.customer_id, ranked.c.as_of, ranked.c.probability, ranked.c.band)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.customer_id, ranked.c.rank)
    )
    for customer_id, as_of, probability, band in await rows(session, statement):
        found[customer_id].append(
            PointRow(
                customer_id=customer_id,
                as_of=as_of,
                probability=probability,
                band=Band(band),
            )
        )
    return found


def parse_reasons(stored: list[dict[str, Any]]) -> list[ReasonRow]:
    """Stored reasons (see `domain.risk.reasons`) with their one-line summaries, in order."""
    parsed: list[ReasonRow] = []
    for element in stored:
        name = str(element.get("sign", "")).upper()
        # A newer scorer may store a sign this reader does not know yet: leave it out.
        if name not in Sign.__members__:
            continue
        sign = Sign[name]
        # Numbers as stored: integral ones stay ints, as the export and the JSON column have them.
        evidence: dict[str, float] = {
            str(key): value
            for key, value in dict(element.get("evidence", {})).items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        parsed.append(
            ReasonRow(
                sign=sign,
                strength=float(element.get("strength", 0.0)),
                contribution=float(element.get("contribution", 0.0)),
                evidence=evidence,
                summary=summary_of(sign, evidence),
            )
        )
    return parsed


def summary_of(sign: Sign, evidence: Mapping[str, float]) -> str:
    """The one line `Evidence.summary` gives, from a reason's stored evidence."""
    # First-timers' evidence carries these names instead of a count of orders.
    first_timer = "first_amount" in evidence or "returned_share" in evidence
    orders = evidence.get("orders", 1.0 if first_timer else 2.0)

    def column(name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.array([evidence.get(name, 0.0)], dtype=np.float64)

    def counts(name: str) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.array([round(evidence.get(name, 0.0))], dtype=np.int64)

    one = Evidence(
        days_since_last=column("days_since_last"),
        usual_interval=column("usual_interval"),
        orders=np.array([round(orders)], dtype=np.int64),
        returned_share=column("returned_share"),
        recent_amount=column("recent_amount"),
        earlier_amount=column("earlier_amount"),
        recent_quantity=column("recent_quantity"),
        earlier_quantity=column("earlier_quantity"),
        recent_orders=counts("recent_orders"),
        first_amount=column("first_amount"),
        first_quantity=column("first_quantity"),
        typical_first_amount=float(evidence.get("typical_first_amount", 0.0)),
        typical_first_quantity=float(evidence.get("typical_first_quantity", 0.0)),
        skips=counts("skips"),
        postponements=counts("postponements"),
        pauses=counts("pauses"),
        cancelled=counts("cancelled"),
        days_since_subscription_sign=column("days_since_subscription_sign"),
    )
    return one.summary(sign, 0)


def shows_any(shown: ColumnElement[int], signs: Collection[Sign]) -> ColumnElement[bool]:
    """A stored score's `shown_signs` hold one of `signs` (strength at least `SHOWN_AT` in its
    reasons): the sign shows. False for no signs."""
    mask = sign_mask(signs)
    if not mask:
        return sqlalchemy.false()
    return shown.bitwise_and(literal_column(str(mask), SmallInteger())) != 0
