"""Asking for risk work: rescoring after an ingest, the nightly recompute of every shop."""

import json
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import col, select

from domain.db import AsyncSession
from domain.errors import InvalidInput
from domain.ids import CustomerId, ShopId
from domain.jobs import Job, Jobs
from domain.risk.days import shop_zone, today_start
from domain.risk.models import ShopRiskModel
from domain.shop.models import Shop

# Customers per rescoring job.
RESCORE_BATCH = 500


def request_rescore(jobs: Jobs, shop_id: ShopId, customer_ids: Iterable[CustomerId]) -> int:
    """Enqueue rescoring of these customers after the commit, in batches; how many jobs."""
    ids = sorted({str(customer_id) for customer_id in customer_ids})
    for start in range(0, len(ids), RESCORE_BATCH):
        batch = ids[start : start + RESCORE_BATCH]
        jobs.enqueue(
            Job.RESCORE_CUSTOMERS, shop_id=str(shop_id), customer_ids_json=json.dumps(batch)
        )
    return (len(ids) + RESCORE_BATCH - 1) // RESCORE_BATCH


async def schedule_recomputes(session: AsyncSession, jobs: Jobs, *, now: datetime) -> int:
    """Enqueue a full recompute for every shop not yet recomputed since its local midnight.

    Safe to run often (hourly, so every zone's midnight is met): the job id names the shop and
    day, and a shop already fitted today is skipped. Returns how many jobs were enqueued.
    """
    statement = select(Shop.id, Shop.timezone, ShopRiskModel.fitted_as_of).outerjoin(
        ShopRiskModel, col(ShopRiskModel.shop_id) == col(Shop.id)
    )
    enqueued = 0
    for shop_id, timezone, fitted_as_of in (await session.exec(statement)).all():
        as_of = today_start(now, shop_zone(timezone))
        if fitted_as_of is not None and fitted_as_of >= as_of:
            continue
        jobs.enqueue(
            Job.RECOMPUTE_SHOP_RISK,
            _job_id=f"recompute_shop_risk:{shop_id}:{as_of.isoformat()}",
            shop_id=str(shop_id),
            as_of=as_of.isoformat(),
        )
        enqueued += 1
    return enqueued


def parse_customer_ids(raw: str) -> list[uuid.UUID]:
    """Customer ids from a rescoring job's JSON list; raises `InvalidInput` if malformed."""
    try:
        values = json.loads(raw)
        if not isinstance(values, list):
            raise TypeError
        return [uuid.UUID(str(value)) for value in values]
    except (TypeError, ValueError) as error:
        raise InvalidInput(
            "customer_ids_json must be a JSON list of UUIDs", "customer_ids"
        ) from error
