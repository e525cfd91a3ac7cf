"""Local days, the risk model's clock: days since 1970-01-01 00:00 on the shop's wall clock.

The model counts days in the shop's own calendar ("the same day" is the shop's day), so every
stored UTC time is shifted by the zone's offset at that moment before it becomes a day number.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray

from domain.errors import InvalidInput

FloatArray = NDArray[np.float64]

SECONDS_PER_DAY = 86_400
# Offsets change at whole quarter hours in every zone of the tz database since 1970.
QUARTER_HOUR = 900
_QUARTERS_PER_DAY = SECONDS_PER_DAY // QUARTER_HOUR


def shop_zone(name: str) -> ZoneInfo:
    """The zone of a shop's `timezone`; raises `InvalidInput` for an unknown name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(f"unknown time zone {name!r}", "timezone") from error


def local_day(moment: datetime, zone: ZoneInfo) -> float:
    """`moment` (aware) as a local day number in `zone`, fractions included."""
    if moment.tzinfo is None:
        raise InvalidInput("a naive datetime has no place in time; give a time zone", "as_of")
    offset = moment.astimezone(zone).utcoffset() or timedelta(0)
    return (moment.timestamp() + offset.total_seconds()) / SECONDS_PER_DAY


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins on the shop's wall clock."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def today_start(now: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the shop's current local day began."""
    return start_of_day(now.astimezone(zone).date(), zone)


def local_days(
    epoch_seconds: NDArray[np.integer] | NDArray[np.floating], zone: ZoneInfo
) -> FloatArray:
    """UTC epoch seconds as local day numbers, vectorised.

    The zone is asked for its offset once per day of the span, and once per quarter hour only
    on the days whose offset changes, so ten million times cost a table lookup each.
    """
    seconds = np.asarray(epoch_seconds, dtype=np.float64)
    if seconds.shape[0] == 0:
        return seconds
    first = int(np.floor(seconds.min() / SECONDS_PER_DAY)) * SECONDS_PER_DAY
    days = int(np.floor(seconds.max() / SECONDS_PER_DAY)) * SECONDS_PER_DAY - first
    count = days // SECONDS_PER_DAY + 1
    daily = np.array([_offset(first + d * SECONDS_PER_DAY, zone) for d in range(count + 1)])
    grid = np.repeat(daily[:-1], _QUARTERS_PER_DAY)
    for d in np.flatnonzero(daily[:-1] != daily[1:]):
        start = first + int(d) * SECONDS_PER_DAY
        grid[int(d) * _QUARTERS_PER_DAY : (int(d) + 1) * _QUARTERS_PER_DAY] = [
            _offset(start + q * QUARTER_HOUR, zone) for q in range(_QUARTERS_PER_DAY)
        ]
    index = ((seconds - first) // QUARTER_HOUR).astype(np.int64)
    return np.asarray((seconds + grid[index]) / SECONDS_PER_DAY, dtype=np.float64)


def _offset(epoch: float, zone: ZoneInfo) -> float:
    offset = datetime.fromtimestamp(epoch, UTC).astimezone(zone).utcoffset()
    return (offset or timedelta(0)).total_seconds()
