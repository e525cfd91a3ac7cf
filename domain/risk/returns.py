"""Days from a first to a second purchase: a Kaplan-Meier estimate, shop-wide and per segment.

A share of the customers who have already come back is biased towards quick returns: the
customers who came back late were still waiting when the data was cut. Kaplan-Meier counts
every first-time buyer as at risk of returning for exactly the days they have been followed,
so the curve is the one a shop would see with unlimited patience, up to its longest
follow-up. Everything is set-based on one sorted key (segment, day): no loop per segment.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# Segment codes are combined with days into one sort key; days stay far below this.
SEGMENT_STRIDE = 10_000_000
# The shop-wide curve's code; customer segments are ≥ 0 and -1 means unknown.
SHOP = -2
# Returns a segment (first product and mall) needs before it gets its own curve.
MIN_SEGMENT_RETURNS = 30


@dataclass(frozen=True, slots=True)
class ReturnCurve:
    """P(second purchase within t days of the first), at each day a return happened.

    `keys` are `segment * SEGMENT_STRIDE + day`, sorted, for the shop-wide curve (segment
    `SHOP`) and every segment with at least `MIN_SEGMENT_RETURNS` returns; `returned` is the
    Kaplan-Meier probability of having returned by that day, `medians` the day by which half
    of the segment's returns (as far as followed) had happened, one per entry of `segments`.
    """

    keys: IntArray
    returned: FloatArray
    segments: IntArray
    medians: FloatArray
    ceilings: FloatArray  # per segment: the curve's last value (returned by the longest follow-up)

    def probability(self, days: FloatArray, segment: IntArray | None) -> FloatArray:
        """P(a second purchase within `days` of the first), per customer's curve."""
        if self.keys.shape[0] == 0:
            return np.zeros(days.shape[0])
        code, _ = self._own(segment, days.shape[0])
        query = code * SEGMENT_STRIDE + np.floor(np.maximum(days, 0.0)).astype(np.int64)
        at = np.searchsorted(self.keys, query, side="right") - 1
        clipped = np.maximum(at, 0)
        same = (at >= 0) & (self.keys[clipped] // SEGMENT_STRIDE == code)
        return np.asarray(np.where(same, self.returned[clipped], 0.0), dtype=np.float64)

    def share_back(self, days: FloatArray, segment: IntArray | None) -> FloatArray:
        """Of the customers who return, the share back within `days` (as far as followed)."""
        if self.keys.shape[0] == 0:
            return np.zeros(days.shape[0])
        _, index = self._own(segment, days.shape[0])
        ceiling = self.ceilings[index]
        share = self.probability(days, segment) / np.where(ceiling > 0, ceiling, 1.0)
        return np.asarray(np.clip(share, 0.0, 1.0), dtype=np.float64)

    def median_days(self, segment: IntArray | None, size: int, default: float) -> FloatArray:
        """Days by which half of the returns happen, per customer's curve (`default` if none)."""
        if self.medians.shape[0] == 0:
            return np.full(size, float(default))
        _, index = self._own(segment, size)
        return np.asarray(self.medians[index], dtype=np.float64)

    def _own(self, segment: IntArray | None, size: int) -> tuple[IntArray, IntArray]:
        """Each customer's curve: its segment code and its index in `segments`."""
        shop = int(np.searchsorted(self.segments, SHOP))
        code = np.full(size, SHOP, dtype=np.int64)
        index = np.full(size, shop, dtype=np.int64)
        if segment is None or self.segments.shape[0] == 0:
            return code, index
        at = np.minimum(np.searchsorted(self.segments, segment), self.segments.shape[0] - 1)
        own = (segment >= 0) & (self.segments[at] == segment)
        return np.where(own, segment, code), np.where(own, at, index)


def return_curve(
    follow_up: FloatArray,
    to_second: FloatArray,
    returned: BoolArray,
    segment: IntArray | None = None,
) -> ReturnCurve:
    """Kaplan-Meier curves of first-time buyers (one row per customer with a purchase).

    `follow_up` is days from the first purchase to the cut-off, `to_second` days to the
    second purchase where `returned`. A customer who has not returned was at risk on every
    whole day strictly before the cut-off.
    """
    last = np.where(returned, to_second, np.ceil(follow_up) - 1.0).astype(np.int64)
    codes = np.full(last.shape[0], SHOP, dtype=np.int64)
    keys = codes * SEGMENT_STRIDE + last
    events = keys[returned]
    if segment is not None:
        known = segment >= 0
        own = segment * SEGMENT_STRIDE + last
        keys = np.concatenate((keys, own[known]))
        events = np.concatenate((events, own[known & returned]))
    keys = np.sort(keys)
    days, deaths = np.unique(events, return_counts=True)
    group = days // SEGMENT_STRIDE
    # At risk on a day: everyone of the segment whose last observed day is that day or later.
    group_end = np.searchsorted(keys, (group + 1) * SEGMENT_STRIDE, side="left")
    at_risk = group_end - np.searchsorted(keys, days, side="left")
    # A day on which everyone at risk returned ends the curve at 1; a finite floor keeps the
    # running sum (shared by all segments) finite.
    log_stay = np.log(np.maximum(1.0 - deaths / at_risk, np.exp(-50.0)))
    segments, first, counts = np.unique(group, return_index=True, return_counts=True)
    totals = np.add.reduceat(deaths, first) if first.shape[0] else np.zeros(0, np.int64)
    cumulative = np.cumsum(log_stay)
    before = np.concatenate(([0.0], cumulative))[first]
    returned_by = -np.expm1(cumulative - np.repeat(before, counts))
    keep_group = (segments == SHOP) | (totals >= MIN_SEGMENT_RETURNS)
    keep = np.repeat(keep_group, counts)
    ceilings = returned_by[first + counts - 1] if first.shape[0] else np.zeros(0)
    # The first return day on which the curve reaches half its ceiling.
    half = returned_by >= np.repeat(ceilings, counts) / 2.0
    reached = np.flatnonzero(half)
    first_half = reached[np.searchsorted(reached, first)] if reached.shape[0] else first
    medians = (days[first_half] - group[first_half] * SEGMENT_STRIDE).astype(np.float64)
    return ReturnCurve(
        keys=days[keep],
        returned=returned_by[keep],
        segments=segments[keep_group],
        medians=medians[keep_group],
        ceilings=ceilings[keep_group],
    )
