"""Risk jobs: full recompute of a shop, rescoring of touched customers, the nightly fan-out."""

import uuid
from datetime import datetime

from domain.db import utcnow
from domain.ids import ShopId
from domain.risk import schedule, service
from workers.context import WorkerContext, unit_of_work


async def recompute_shop_risk(
    ctx: WorkerContext, *, shop_id: str, as_of: str | None = None
) -> None:
    """Fit and score the whole shop as of `as_of` (ISO time; default: its local midnight)."""
    shop = ShopId(uuid.UUID(shop_id))
    moment = datetime.fromisoformat(as_of) if as_of is not None else None
    async with unit_of_work(ctx, shop_id=shop) as uow:
        await service.recompute_risk(uow.session, shop, jobs=uow.jobs, as_of=moment)


async def rescore_customers(ctx: WorkerContext, *, shop_id: str, customer_ids_json: str) -> None:
    """Rescore the customers an ingest touched, with the shop's stored fit."""
    shop = ShopId(uuid.UUID(shop_id))
    customer_ids = schedule.parse_customer_ids(customer_ids_json)
    async with unit_of_work(ctx, shop_id=shop) as uow:
        await service.rescore_customers(uow.session, shop, customer_ids, jobs=uow.jobs)


async def schedule_risk_recomputes(ctx: WorkerContext) -> None:
    """Enqueue today's full recompute of every shop not yet done (run hourly by cron)."""
    async with unit_of_work(ctx) as uow:
        await schedule.schedule_recomputes(uow.session, uow.jobs, now=utcnow())
