from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from domain.errors import InvalidInput
from domain.risk.days import local_day, local_days, shop_zone, start_of_day, today_start


@pytest.mark.parametrize("zone_name", ["Asia/Tokyo", "America/New_York", "Australia/Lord_Howe"])
def test_local_days_agree_with_the_zone_at_every_instant(zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    # Every 7 minutes over two years: crosses each DST change, at odd minutes.
    seconds = start + np.arange(0, 2 * 365 * 86_400, 7 * 60, dtype=np.float64)

    days = local_days(seconds, zone)

    sample = np.arange(0, seconds.shape[0], 97)
    expected = [local_day(datetime.fromtimestamp(seconds[i], UTC), zone) for i in sample]
    np.testing.assert_allclose(days[sample], expected, rtol=0, atol=1e-9)


def test_a_local_day_starts_at_the_shops_midnight() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")

    midnight = start_of_day(date(2025, 6, 1), tokyo)

    assert midnight == datetime(2025, 5, 31, 15, 0, tzinfo=UTC)
    assert local_day(midnight, tokyo) == (date(2025, 6, 1) - date(1970, 1, 1)).days
    now = datetime(2025, 6, 1, 14, 59, tzinfo=UTC)  # 23:59 in Tokyo
    assert today_start(now, tokyo) == midnight
    assert today_start(now + timedelta(minutes=1), tokyo) == midnight + timedelta(days=1)


def test_naive_times_and_unknown_zones_are_refused() -> None:
    with pytest.raises(InvalidInput, match="naive"):
        local_day(datetime(2025, 1, 1), ZoneInfo("UTC"))  # noqa: DTZ001
    with pytest.raises(InvalidInput, match="time zone") as raised:
        shop_zone("Mars/Olympus_Mons")
    assert raised.value.field == ("timezone",)


def test_no_times_give_no_days() -> None:
    assert local_days(np.zeros(0), ZoneInfo("Asia/Tokyo")).shape == (0,)
