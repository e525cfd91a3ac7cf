"""The subscription sign: skips, postponements, pauses and cancellation, weighted by recency."""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from domain.risk.history import SubscriptionColumns, SubscriptionSign

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# How much each event says "leaving"; a resume takes back part of an earlier pause, an unskip
# all of the skip it reinstates.
WEIGHT = np.array([0.0, 0.0, 1.0, 0.5, 2.0, -1.0, 4.0, -1.0])  # indexed by SubscriptionSign
# Half of an event's weight is gone after this many days.
HALF_LIFE_DAYS = 45.0
# A cancellation not followed by a restart keeps this much weight however old it is.
STANDING_CANCEL = 1.5
# Window of the event counts shown as evidence.
EVIDENCE_DAYS = 90.0
# Events that set a subscription's state (the others happen within a state).
_STATE_KINDS = (
    SubscriptionSign.STARTED,
    SubscriptionSign.RENEWED,
    SubscriptionSign.PAUSED,
    SubscriptionSign.RESUMED,
    SubscriptionSign.CANCELLED,
)


@dataclass(frozen=True, slots=True)
class SubscriptionSnapshot:
    """Per customer as of a cut-off; all zeros for customers without subscriptions."""

    pressure: FloatArray  # recency-weighted sum of event weights, ≥ 0
    live: FloatArray  # 1 when the last state event left a subscription running or paused
    skips: IntArray
    postponements: IntArray
    pauses: IntArray
    cancelled: IntArray  # 1 when the last state event was a cancellation
    days_since_sign: FloatArray  # days since the latest skip/postpone/pause/cancel; -1 if none

    @property
    def strength(self) -> FloatArray:
        """The sign's strength in 0-1: recent events, plus a standing cancellation."""
        total = self.pressure + STANDING_CANCEL * self.cancelled
        return np.asarray(1.0 - np.exp(-total / 2.0), dtype=np.float64)


def subscription_snapshot(
    events: SubscriptionColumns | None, cutoff: float, n_customers: int
) -> SubscriptionSnapshot:
    """The subscription state of every customer from events strictly before `cutoff`."""
    if events is None or events.customer.shape[0] == 0:
        zeros = np.zeros(n_customers)
        ints = np.zeros(n_customers, dtype=np.int64)
        return SubscriptionSnapshot(zeros, zeros, ints, ints, ints, ints, zeros - 1.0)
    before = events.day < cutoff
    cust, day, kind = events.customer[before], events.day[before], events.kind[before]
    same = _repeated_pauses(cust, day, kind)
    cust, day, kind = cust[~same], day[~same], kind[~same]
    age = cutoff - day
    weight = WEIGHT[kind] * np.exp2(-age / HALF_LIFE_DAYS)
    pressure = np.maximum(np.bincount(cust, weights=weight, minlength=n_customers), 0.0)
    recent = age <= EVIDENCE_DAYS

    def count(sign: SubscriptionSign) -> IntArray:
        hits = cust[recent & (kind == sign)]
        return np.bincount(hits, minlength=n_customers).astype(np.int64)

    last_state = _last_kind(cust, day, kind, np.isin(kind, _STATE_KINDS), n_customers)
    live = ((last_state >= 0) & (last_state != SubscriptionSign.CANCELLED)).astype(np.float64)
    cancelled = (last_state == SubscriptionSign.CANCELLED).astype(np.int64)
    sign_kinds = (
        SubscriptionSign.SKIPPED,
        SubscriptionSign.POSTPONED,
        SubscriptionSign.PAUSED,
        SubscriptionSign.CANCELLED,
    )
    is_sign = np.isin(kind, sign_kinds)
    latest = np.full(n_customers, -np.inf)
    np.maximum.at(latest, cust[is_sign], day[is_sign])
    since = np.where(np.isfinite(latest), cutoff - latest, -1.0)
    return SubscriptionSnapshot(
        pressure=pressure,
        live=live,
        skips=np.maximum(count(SubscriptionSign.SKIPPED) - count(SubscriptionSign.UNSKIPPED), 0),
        postponements=count(SubscriptionSign.POSTPONED),
        pauses=count(SubscriptionSign.PAUSED),
        cancelled=cancelled,
        days_since_sign=since,
    )


def _repeated_pauses(cust: IntArray, day: FloatArray, kind: NDArray[np.int8]) -> BoolArray:
    """Pauses that follow a pause of the same customer with no other state event between.

    A subscription cannot be paused again before it resumes, so such a pause is the same one
    told twice: by a webhook and by a sync (whose event ids cannot agree when the webhook
    carries no version of the contract), or by a sync that found the contract still paused
    after a later edit. It counts once. (Two subscriptions of one customer paused in turn
    count once too, a rare loss.)"""
    repeated = np.zeros(cust.shape[0], dtype=np.bool_)
    states = np.flatnonzero(np.isin(kind, _STATE_KINDS))
    if states.shape[0] < 2:
        return repeated
    order = states[np.lexsort((kind[states], day[states], cust[states]))]
    paused = kind[order] == SubscriptionSign.PAUSED
    again = paused[1:] & paused[:-1] & (cust[order][1:] == cust[order][:-1])
    repeated[order[1:][again]] = True
    return repeated


def _last_kind(
    cust: IntArray,
    day: FloatArray,
    kind: NDArray[np.int8],
    mask: NDArray[np.bool_],
    n_customers: int,
) -> IntArray:
    """The kind of each customer's latest masked event (ties: highest code), -1 if none."""
    result = np.full(n_customers, -1, dtype=np.int64)
    c, d, k = cust[mask], day[mask], kind[mask].astype(np.int64)
    if c.shape[0] == 0:
        return result
    order = np.lexsort((k, d, c))
    c, k = c[order], k[order]
    last = np.ones(c.shape[0], dtype=np.bool_)
    last[:-1] = c[1:] != c[:-1]
    result[c[last]] = k[last]
    return result
