"""Risk of a shop's customers, computed and stored: fully (nightly) and for touched customers.

A full recompute reads the shop's history before `as_of`, fits the shop's model, scores every
customer known by then and stores current scores, history and the fit. Rescoring reuses the
stored fit for the few customers an ingest touched. Both run in the caller's transaction (one
unit of work), so an interrupted run leaves nothing behind and a rerun gives the same rows;
band changes are published as `risk.changed` events only after the commit.
"""

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select

from domain.db import AsyncSession, utcnow
from domain.errors import InvalidInput
from domain.events import Topic
from domain.ids import CustomerId, ShopId
from domain.ingest.statements import dialect_name
from domain.jobs import Job, Jobs
from domain.risk.bands import BANDS, BandThresholds, assign_bands, get_band_thresholds
from domain.risk.copy import execute
from domain.risk.days import local_day, shop_zone, today_start
from domain.risk.history import Purchases, SubscriptionColumns, purchases_before, subset
from domain.risk.loading import UuidArray, load_history
from domain.risk.models import ShopRiskModel
from domain.risk.reasons import reason_documents
from domain.risk.rescoring import score_with_profile
from domain.risk.scoring import RiskScores, fit_risk_model
from domain.risk.state import FittedState, load_state, profile_as_of, save_state
from domain.risk.writing import BandChange, ScoreRows, score_writer
from domain.shop.models import Shop
from domain.shop.service import require_shop

# Up to this many band changes a run publishes one event per customer; beyond, one summary.
MAX_CHANGE_EVENTS = 1000
# Customers per rescoring job.
RESCORE_BATCH = 500
# Customers scored and written per slice of a full run: bounds memory, lets work overlap.
SLICE_CUSTOMERS = 100_000


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds spent reading history, fitting, scoring and writing."""

    load: float = 0.0
    fit: float = 0.0
    score: float = 0.0
    write: float = 0.0


@dataclass(frozen=True, slots=True)
class RiskRun:
    """What one recompute or rescoring stored."""

    shop_id: ShopId
    as_of: datetime
    horizon_days: int
    model_version: str
    customers: int
    scored: int
    band_changes: int
    # False: the stored fit was reused (rescoring); True: the model was fitted in this run.
    fitted: bool
    timings: Timings


async def recompute_risk(
    session: AsyncSession,
    shop_id: ShopId,
    *,
    jobs: Jobs | None = None,
    as_of: datetime | None = None,
    now: datetime | None = None,
) -> RiskRun:
    """Fit the shop's model and score every customer known by `as_of`; store it all.

    `as_of` defaults to the start of the shop's current local day, so nightly runs of the same
    day store the same rows. Only history before `as_of` is read. Current scores are replaced
    unless they are newer; history gets one row per customer and `as_of`. Band changes are
    enqueued as `risk.changed` events on `jobs`. Flushes, never commits.
    """
    shop = await require_shop(session, shop_id)
    zone = shop_zone(shop.timezone)
    now = now or utcnow()
    as_of = _aware(as_of) if as_of is not None else today_start(now, zone)
    await _lock(session, shop_id, shared=False)
    started = time.perf_counter()
    history = await load_history(session, shop_id, zone, before=as_of)
    loaded = time.perf_counter()
    day = local_day(as_of, zone)
    horizon = shop.horizon_days
    model = fit_risk_model(history.orders, day, horizon, subscriptions=history.subscriptions)
    purchases = purchases_before(history.orders, day)
    profile = profile_as_of(purchases, day)
    fitted = time.perf_counter()
    # The orders are summarised in `purchases` now: let them go before scoring.
    customer_ids, events = history.customer_ids, history.subscriptions
    del history
    run = _Run(shop_id, as_of, day, horizon, FittedState(as_of, horizon, model, profile), now)
    stored = await _score_and_store(session, run, customer_ids, purchases, events)
    await save_state(session, shop_id, run.state)
    _publish(jobs, shop_id, stored, as_of)
    return RiskRun(
        shop_id=shop_id,
        as_of=as_of,
        horizon_days=horizon,
        model_version=model.version,
        customers=int(customer_ids.shape[0]),
        scored=stored.scored,
        band_changes=stored.changed,
        fitted=True,
        timings=Timings(
            load=loaded - started,
            fit=fitted - loaded,
            score=stored.score_seconds,
            write=stored.write_seconds,
        ),
    )


async def rescore_customers(
    session: AsyncSession,
    shop_id: ShopId,
    customer_ids: Iterable[uuid.UUID],
    *,
    jobs: Jobs | None = None,
    as_of: datetime | None = None,
    now: datetime | None = None,
) -> RiskRun:
    """Score these customers as of `as_of` (default: now) with the shop's stored fit.

    Customers of other shops or unknown ones are skipped. Without a usable stored fit (none
    yet, another horizon, or one fitted after `as_of`) this is a full `recompute_risk` at
    `as_of`, which scores these customers too. Flushes, never commits.
    """
    ids = sorted(set(customer_ids))
    shop = await require_shop(session, shop_id)
    zone = shop_zone(shop.timezone)
    now = now or utcnow()
    as_of = _aware(as_of) if as_of is not None else now
    state = await load_state(session, shop_id)
    if state is None or state.horizon_days != shop.horizon_days or state.as_of > as_of:
        return await recompute_risk(session, shop_id, jobs=jobs, as_of=as_of, now=now)
    await _lock(session, shop_id, shared=True)
    started = time.perf_counter()
    history = await load_history(session, shop_id, zone, before=as_of, customer_ids=ids)
    loaded = time.perf_counter()
    day = local_day(as_of, zone)
    run = _Run(shop_id, as_of, day, state.horizon_days, state, now)
    purchases = purchases_before(history.orders, day)
    stored = await _score_and_store(
        session, run, history.customer_ids, purchases, history.subscriptions
    )
    _publish(jobs, shop_id, stored, as_of)
    return RiskRun(
        shop_id=shop_id,
        as_of=as_of,
        horizon_days=state.horizon_days,
        model_version=state.model.version,
        customers=history.size,
        scored=stored.scored,
        band_changes=stored.changed,
        fitted=False,
        timings=Timings(
            load=loaded - started, score=stored.score_seconds, write=stored.write_seconds
        ),
    )


async def recompute_shop_risk(
    sessions: async_sessionmaker[AsyncSession], shop_id: ShopId, *, as_of: datetime | None = None
) -> RiskRun:
    """`recompute_risk` as a unit of work of its own (one session, one commit), no events.

    For composition roots: the CLI after loading the demo or an import.
    """
    async with sessions() as session:
        run = await recompute_risk(session, shop_id, as_of=as_of)
        await session.commit()
    return run


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


@dataclass(frozen=True, slots=True)
class _Run:
    shop_id: ShopId
    as_of: datetime
    day: float  # `as_of` in local days
    horizon_days: int
    state: FittedState
    now: datetime


@dataclass(frozen=True, slots=True)
class _Stored:
    scored: int
    changed: int
    changes: list[BandChange]
    score_seconds: float
    write_seconds: float


async def _score_and_store(
    session: AsyncSession,
    run: _Run,
    customer_ids: UuidArray,
    purchases: Purchases,
    events: SubscriptionColumns,
) -> _Stored:
    """Score slice after slice and write each; the next slice is scored (in a thread) while
    the database writes the last one, so the two costs overlap instead of adding up."""
    thresholds = await get_band_thresholds(session, run.shop_id)
    size = int(customer_ids.shape[0])
    slices = [(low, min(low + SLICE_CUSTOMERS, size)) for low in range(0, size, SLICE_CUSTOMERS)]
    seconds = [0.0, 0.0]

    def score(low: int, high: int) -> tuple[ScoreRows, int]:
        started = time.perf_counter()
        scores = score_with_profile(
            subset(purchases, np.arange(low, high, dtype=np.int64)),
            run.day,
            run.horizon_days,
            profile=run.state.profile,
            model=run.state.model,
            subscriptions=_events_between(events, low, high),
        )
        rows = _score_rows(customer_ids[low:high], scores, thresholds)
        seconds[0] += time.perf_counter() - started
        return rows, int(scores.scorable.sum())

    scored = 0
    async with score_writer(
        session,
        run.shop_id,
        as_of=run.as_of,
        horizon_days=run.horizon_days,
        model_version=run.state.model.version,
        now=run.now,
        keep_changes=MAX_CHANGE_EVENTS,
    ) as writer:
        pending = _start(score, slices, 0)
        try:
            for index in range(len(slices)):
                assert pending is not None
                rows, count = await pending
                pending = _start(score, slices, index + 1)
                started = time.perf_counter()
                await writer.write(rows)
                seconds[1] += time.perf_counter() - started
                scored += count
        finally:
            if pending is not None:
                pending.cancel()
    return _Stored(scored, writer.changed, writer.changes, seconds[0], seconds[1])


def _start(
    score: Callable[[int, int], tuple[ScoreRows, int]],
    slices: list[tuple[int, int]],
    index: int,
) -> "asyncio.Task[tuple[ScoreRows, int]] | None":
    if index >= len(slices):
        return None
    return asyncio.create_task(asyncio.to_thread(score, *slices[index]))


def _events_between(events: SubscriptionColumns, low: int, high: int) -> SubscriptionColumns:
    """The events of customers low .. high - 1 (events are sorted by customer), re-indexed."""
    first, last = np.searchsorted(events.customer, [low, high])
    return SubscriptionColumns(
        events.customer[first:last] - low, events.day[first:last], events.kind[first:last]
    )


def _score_rows(ids: UuidArray, scores: RiskScores, thresholds: BandThresholds) -> ScoreRows:
    scorable = scores.scorable
    codes = assign_bands(scores.p_no_purchase, scorable, thresholds)
    names = np.array([band.value for band in BANDS], dtype=object)
    return ScoreRows(
        customer_ids=ids,
        probability=np.where(scorable, scores.p_no_purchase, np.nan),
        expected_purchases=np.where(scorable, scores.expected_purchases, np.nan),
        expected_spend=np.where(scorable, scores.expected_spend, np.nan),
        bands=names[codes].tolist(),
        reasons=reason_documents(scores),
    )


def _publish(jobs: Jobs | None, shop_id: ShopId, result: _Stored, as_of: datetime) -> None:
    if jobs is None or result.changed == 0:
        return
    events: Sequence[dict[str, str | int | float | None]]
    if result.changed > len(result.changes):
        # Too many to announce one by one: subscribers re-read the shop's scores.
        events = [{"customer_id": None, "changed": result.changed, "as_of": as_of.isoformat()}]
    else:
        events = [
            {
                "customer_id": str(change.customer_id),
                "band": change.band,
                "previous_band": change.previous,
                "probability": change.probability,
                "changed": 1,
                "as_of": as_of.isoformat(),
            }
            for change in result.changes
        ]
    for data in events:
        jobs.enqueue(
            Job.PUBLISH_EVENT,
            shop_id=str(shop_id),
            topic=Topic.RISK_CHANGED.value,
            data_json=json.dumps(data),
        )


async def _lock(session: AsyncSession, shop_id: ShopId, *, shared: bool) -> None:
    """One full recompute per shop at a time; rescoring runs beside other rescoring only.

    PostgreSQL advisory lock for the transaction; SQLite has a single writer anyway.
    """
    if dialect_name(session) != "postgresql":
        return
    key = int.from_bytes(
        hashlib.blake2b(b"risk:" + shop_id.bytes, digest_size=8).digest(), "big", signed=True
    )
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await execute(session, text(f"SELECT {function}(:key)").bindparams(key=key))


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInput("as_of needs a time zone", "as_of")
    return moment
