"""Risk of a shop's customers, computed and stored: fully (nightly) and for touched customers.

A full recompute reads the shop's history before `as_of`, fits the shop's model, scores every
customer known by then and stores current scores, history and the fit. Rescoring reuses the
stored fit for the few customers an ingest touched. Both run in the caller's transaction (one
unit of work), so an interrupted run leaves nothing behind and a rerun gives the same rows;
band changes are published as `risk.changed` events only after the commit.
"""

import hashlib
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.db import AsyncSession, utcnow
from domain.errors import InvalidInput
from domain.ids import ShopId
from domain.ingest.statements import dialect_name
from domain.jobs import Jobs
from domain.risk.bands import get_band_thresholds
from domain.risk.copy import execute
from domain.risk.days import local_day, shop_zone, today_start
from domain.risk.history import purchases_before
from domain.risk.loading import load_history
from domain.risk.runs import (
    MAX_CHANGE_EVENTS,
    Run,
    Stored,
    publish_changes,
    score_and_store,
    score_rows,
)
from domain.risk.scoring import fit_risk_model, score_with_profile
from domain.risk.segments import assign_segments, segment_codes, with_curves
from domain.risk.state import FittedState, load_state, profile_as_of, save_state
from domain.risk.writing import write_few
from domain.shop.service import require_shop


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
    segments = assign_segments(history.first_products)
    purchases = purchases_before(history.orders, day)
    model = fit_risk_model(
        history.orders,
        day,
        horizon,
        subscriptions=history.subscriptions,
        segment=segments.codes,
        purchases=purchases,
    )
    profile = profile_as_of(purchases, day, segments.codes)
    fitted = time.perf_counter()
    # The orders are summarised in `purchases` now: let them go before scoring.
    customer_ids, events = history.customer_ids, history.subscriptions
    del history
    # Rescoring maps a customer's first product to a code through the stored table: only codes
    # with a curve of their own change a score, so only those are kept.
    table = with_curves(segments.table, profile.returns.segments)
    state = FittedState(as_of, horizon, model, profile, table)
    run = Run(shop_id, as_of, day, horizon, state, now)
    stored = await score_and_store(session, run, customer_ids, purchases, events, segments.codes)
    await save_state(session, shop_id, run.state)
    publish_changes(jobs, shop_id, stored, as_of)
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
    yet, or for another horizon) this is a full `recompute_risk` at `as_of`, which scores
    these customers too. An `as_of` before the stored fit's raises `InvalidInput`: that fit
    has seen later data (a backfill is a full recompute). Flushes, never commits.
    """
    ids = sorted(set(customer_ids))
    shop = await require_shop(session, shop_id)
    zone = shop_zone(shop.timezone)
    now = now or utcnow()
    as_of = _aware(as_of) if as_of is not None else now
    state = await load_state(session, shop_id)
    if state is None or state.horizon_days != shop.horizon_days:
        # Wait for any full run in progress, then look again: it may have just made the fit.
        await _lock(session, shop_id, shared=False)
        state = await load_state(session, shop_id)
        if state is None or state.horizon_days != shop.horizon_days:
            return await recompute_risk(session, shop_id, jobs=jobs, as_of=as_of, now=now)
    else:
        await _lock(session, shop_id, shared=True)
    if as_of < state.as_of:
        raise InvalidInput(
            f"the shop's model was fitted as of {state.as_of.isoformat()}; "
            "rescoring cannot go back before it (recompute the shop instead)",
            "as_of",
        )
    started = time.perf_counter()
    history = await load_history(session, shop_id, zone, before=as_of, customer_ids=ids)
    loaded = time.perf_counter()
    day = local_day(as_of, zone)
    scores = score_with_profile(
        purchases_before(history.orders, day),
        day,
        state.horizon_days,
        profile=state.profile,
        model=state.model,
        subscriptions=history.subscriptions,
        segment=segment_codes(history.first_products, state.segments),
    )
    thresholds = await get_band_thresholds(session, shop_id)
    rows = score_rows(history.customer_ids, scores, thresholds)
    scored = time.perf_counter()
    changes = await write_few(
        session,
        shop_id,
        rows,
        as_of=as_of,
        horizon_days=state.horizon_days,
        model_version=state.model.version,
        now=now,
    )
    written = time.perf_counter()
    stored = Stored(
        int(scores.scorable.sum()),
        len(changes),
        changes[:MAX_CHANGE_EVENTS],
        scored - loaded,
        written - scored,
    )
    publish_changes(jobs, shop_id, stored, as_of)
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
