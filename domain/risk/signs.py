"""The three signs of silent churn, each with a strength in 0-1 and its evidence in numbers."""

import dataclasses
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from domain.risk.features import Snapshot, expected_interval
from domain.risk.profile import ShopProfile
from domain.risk.subscriptions import EVIDENCE_DAYS, SubscriptionSnapshot

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


class Sign(IntEnum):
    INTERVAL = 0
    BASKET = 1
    SUBSCRIPTION = 2


# A sign *shows* for a customer when it is among the reasons of their score with at least this
# strength: interval, 1.7 times past their usual interval (a first-time buyer: past the day by
# which half of the returning first-timers were back); basket, amount or quantity down by half;
# subscription, a recent pause or cancellation, or two recent skips. What the `signs` filters
# of the API select on; every sign that applies stays among the reasons, however weak.
SHOWN_AT = 0.5


@dataclass(frozen=True, slots=True)
class Evidence:
    """The numbers behind each sign, per customer (amounts in the currency's minor unit)."""

    days_since_last: FloatArray
    usual_interval: FloatArray  # own rhythm shrunk to the shop's; first-timers: median return
    orders: IntArray
    returned_share: FloatArray  # first-timers: share of returning customers back by now
    recent_amount: FloatArray
    earlier_amount: FloatArray
    recent_quantity: FloatArray
    earlier_quantity: FloatArray
    recent_orders: IntArray
    first_amount: FloatArray
    first_quantity: FloatArray
    typical_first_amount: float
    typical_first_quantity: float
    skips: IntArray
    postponements: IntArray
    pauses: IntArray
    cancelled: IntArray
    days_since_subscription_sign: FloatArray

    def numbers(self, sign: Sign, row: int) -> dict[str, float]:
        """The evidence of one customer's sign, by name."""
        first_timer = int(self.orders[row]) == 1
        if sign is Sign.INTERVAL:
            names = ["days_since_last", "usual_interval", "orders"]
            names += ["returned_share"] if first_timer else []
        elif sign is Sign.BASKET:
            names = (
                ["first_amount", "typical_first_amount", "first_quantity", "typical_first_quantity"]
                if first_timer
                else [
                    "recent_amount",
                    "earlier_amount",
                    "recent_quantity",
                    "earlier_quantity",
                    "recent_orders",
                ]
            )
        else:
            names = [
                "skips",
                "postponements",
                "pauses",
                "cancelled",
                "days_since_subscription_sign",
            ]
        result: dict[str, float] = {}
        for name in names:
            value = getattr(self, name)
            result[name] = float(value if isinstance(value, float) else value[row])
        return result

    def summary(self, sign: Sign, row: int) -> str:
        """One line a shop owner can read: "68 days since last order; usually 31"."""
        n = self.numbers(sign, row)
        if sign is Sign.INTERVAL:
            if "returned_share" in n:
                return (
                    f"{n['days_since_last']:.0f} days since first order; "
                    f"{n['returned_share']:.0%} of returning customers were back by now "
                    f"(median {n['usual_interval']:.0f} days)"
                )
            days, usual = n["days_since_last"], n["usual_interval"]
            return f"{days:.0f} days since last order; usually {usual:.0f}"
        if sign is Sign.BASKET:
            if "first_amount" in n:
                return (
                    f"first order {n['first_amount']:,.0f} ({n['first_quantity']:g} items); "
                    f"typical first order {n['typical_first_amount']:,.0f} "
                    f"({n['typical_first_quantity']:g} items)"
                )
            return (
                f"last {n['recent_orders']:.0f} orders average {n['recent_amount']:,.0f} "
                f"({n['recent_quantity']:.1f} items); earlier {n['earlier_amount']:,.0f} "
                f"({n['earlier_quantity']:.1f} items)"
            )
        parts = [
            f"{n[key]:.0f} {label}"
            for key, label in (
                ("skips", "skips"),
                ("postponements", "postponements"),
                ("pauses", "pauses"),
            )
            if n[key] > 0
        ]
        text = ", ".join(parts) + f" in the last {EVIDENCE_DAYS:.0f} days" if parts else ""
        if n["cancelled"]:
            text = f"{text}; cancelled" if text else "cancelled"
        return text or "no skips, pauses or cancellation"


@dataclass(frozen=True, slots=True)
class Signs:
    strength: FloatArray  # customers by Sign, each in 0-1
    applies: BoolArray  # customers by Sign: whether the sign means anything for the customer
    evidence: Evidence


def read_signs(
    snap: Snapshot, profile: ShopProfile, subs: SubscriptionSnapshot, segment: IntArray | None
) -> Signs:
    """Strength and evidence of every sign for every customer of `snap`."""
    first_timer = snap.purchases == 1
    repeater = snap.purchases > 1
    usual = expected_interval(snap, profile, segment)
    gap = snap.gap
    share = np.where(first_timer, profile.return_share(snap.age, segment), 0.0)
    overdue = 1.0 - np.exp(-np.maximum(gap / np.maximum(usual, 1.0) - 1.0, 0.0))
    interval = np.where(first_timer, share, overdue)
    trend_drop = np.maximum(
        _drop(snap.recent_amount, snap.earlier_amount),
        _drop(snap.recent_quantity, snap.earlier_quantity),
    )
    first_drop = np.maximum(
        _drop(snap.first_amount, np.full(gap.shape[0], profile.typical_first_amount)),
        _drop(snap.first_quantity, np.full(gap.shape[0], profile.typical_first_quantity)),
    )
    basket = np.where(repeater, trend_drop, first_drop)
    subscription = subs.strength
    has_subscription = (subs.live > 0) | (subs.cancelled > 0) | (subs.days_since_sign >= 0)
    scorable = snap.scorable
    strength = np.stack((interval, basket, subscription), axis=1) * scorable[:, None]
    applies = np.stack((scorable, scorable, scorable & has_subscription), axis=1)
    evidence = Evidence(
        days_since_last=gap,
        usual_interval=np.where(scorable, usual, 0.0),
        orders=snap.purchases,
        returned_share=share,
        recent_amount=np.where(repeater, snap.recent_amount, 0.0),
        earlier_amount=snap.earlier_amount,
        recent_quantity=np.where(repeater, snap.recent_quantity, 0.0),
        earlier_quantity=snap.earlier_quantity,
        recent_orders=np.where(repeater, snap.recent, 0),
        first_amount=snap.first_amount,
        first_quantity=snap.first_quantity,
        typical_first_amount=profile.typical_first_amount,
        typical_first_quantity=profile.typical_first_quantity,
        skips=subs.skips,
        postponements=subs.postponements,
        pauses=subs.pauses,
        cancelled=subs.cancelled,
        days_since_subscription_sign=subs.days_since_sign,
    )
    return Signs(np.clip(strength, 0.0, 1.0), applies, evidence)


def without_interval(snap: Snapshot, usual: FloatArray) -> Snapshot:
    """The same customers as if none were overdue: last order at most `usual` days ago."""
    gap = np.minimum(snap.gap, usual)
    shift = np.where(snap.scorable, snap.gap - gap, 0.0)
    one = snap.purchases == 1
    first = np.where(one, snap.first_day + shift, snap.first_day)
    return dataclasses.replace(
        snap,
        first_day=first,
        second_day=np.where(one, first, snap.second_day),
        last_day=snap.last_day + shift,
    )


def without_basket(snap: Snapshot, profile: ShopProfile) -> Snapshot:
    """The same customers with steady baskets, and first-timers with a typical first order."""
    one = snap.purchases == 1
    first_amount = np.where(one, profile.typical_first_amount, snap.first_amount)
    first_quantity = np.where(one, profile.typical_first_quantity, snap.first_quantity)
    many = snap.purchases > 1
    return dataclasses.replace(
        snap,
        first_amount=first_amount,
        first_quantity=first_quantity,
        total_amount=np.where(one, first_amount, snap.total_amount),
        recent_amount=np.where(many, snap.earlier_amount, first_amount),
        recent_quantity=np.where(many, snap.earlier_quantity, first_quantity),
    )


def _drop(recent: FloatArray, earlier: FloatArray) -> FloatArray:
    """Relative fall from `earlier` to `recent`, 0 when it rose or there is nothing to compare."""
    fall = np.where(earlier > 0, 1.0 - recent / np.where(earlier > 0, earlier, 1.0), 0.0)
    return np.asarray(np.clip(fall, 0.0, 1.0), dtype=np.float64)
