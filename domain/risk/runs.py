"""One run's scoring and storing, and the events it announces.

A full run scores its customers a slice at a time and writes each slice while the next one is
being scored in a worker thread: the database's writing and numpy's scoring overlap instead of
adding up, and memory stays bounded by the slice. Band changes become `risk.changed` events,
enqueued on the unit of work's jobs, so they go out only after the commit.
"""

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from domain.db import AsyncSession
from domain.events import Topic
from domain.ids import ShopId
from domain.jobs import Job, Jobs
from domain.risk.bands import BANDS, BandThresholds, assign_bands, get_band_thresholds
from domain.risk.history import Purchases, SubscriptionColumns, subset
from domain.risk.loading import UuidArray
from domain.risk.reasons import reason_documents, shown_masks
from domain.risk.scoring import RiskScores, score_with_profile
from domain.risk.state import FittedState
from domain.risk.writing import BandChange, ScoreRows, score_writer

IntArray = NDArray[np.int64]

# Up to this many band changes a run publishes one event per customer; beyond, one summary.
MAX_CHANGE_EVENTS = 1000
# Customers scored and written per slice of a full run: bounds memory, lets work overlap.
SLICE_CUSTOMERS = 100_000


@dataclass(frozen=True, slots=True)
class Run:
    """What every slice of one run shares."""

    shop_id: ShopId
    as_of: datetime
    day: float  # `as_of` in local days
    horizon_days: int
    state: FittedState
    now: datetime


@dataclass(frozen=True, slots=True)
class Stored:
    """What one run stored."""

    scored: int
    changed: int
    changes: list[BandChange]
    score_seconds: float
    write_seconds: float


async def score_and_store(
    session: AsyncSession,
    run: Run,
    customer_ids: UuidArray,
    purchases: Purchases,
    events: SubscriptionColumns,
    segment: IntArray,
) -> Stored:
    """Score slice after slice and write each; the next slice is scored (in a thread) while
    the database writes the last one, so the two costs overlap instead of adding up.

    `segment` holds every customer's code under the run's fitted profile."""
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
            subscriptions=events_between(events, low, high),
            segment=segment[low:high],
        )
        rows = score_rows(customer_ids[low:high], scores, thresholds)
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
    return Stored(scored, writer.changed, writer.changes, seconds[0], seconds[1])


def _start(
    score: Callable[[int, int], tuple[ScoreRows, int]],
    slices: list[tuple[int, int]],
    index: int,
) -> "asyncio.Task[tuple[ScoreRows, int]] | None":
    if index >= len(slices):
        return None
    return asyncio.create_task(asyncio.to_thread(score, *slices[index]))


def events_between(events: SubscriptionColumns, low: int, high: int) -> SubscriptionColumns:
    """The events of customers low .. high - 1 (events are sorted by customer), re-indexed."""
    first, last = np.searchsorted(events.customer, [low, high])
    return SubscriptionColumns(
        events.customer[first:last] - low, events.day[first:last], events.kind[first:last]
    )


def score_rows(ids: UuidArray, scores: RiskScores, thresholds: BandThresholds) -> ScoreRows:
    """Scores ready to store: bands, reason documents, NaN where a customer is not scorable."""
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
        shown=shown_masks(scores),
    )


def publish_changes(jobs: Jobs | None, shop_id: ShopId, result: Stored, as_of: datetime) -> None:
    """Enqueue a `risk.changed` event per band change, or one summary beyond the kept ones."""
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
                "top_sign": change.signs.top,
                # Signs showing in the new score, comma-separated (event data stay flat).
                "signs": ",".join(change.signs.shown),
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
