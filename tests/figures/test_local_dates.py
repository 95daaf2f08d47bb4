"""Local dates of stored stamps (server/storage/stamp_keys.py): the binary search over local midnights
gives exactly what `astimezone(tz).date()` gives, around every local midnight and DST change too."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vardkoll.server.storage.stamp_keys import epoch_us, from_epoch_us, local_date

# Stockholm (the default), and zones whose DST changes fall on midnight (Santiago, Havana, Beirut),
# move by 30 minutes (Lord Howe), or jump a whole date (Apia skipped 30 December 2011).
ZONES = ["Europe/Stockholm", "America/Santiago", "America/Havana", "Asia/Beirut", "Australia/Lord_Howe", "Pacific/Apia", "UTC"]


def reference(value_us: int, tz: ZoneInfo) -> date:
    return from_epoch_us(value_us).astimezone(tz).date()


@pytest.mark.parametrize("name", ZONES)
def test_around_every_local_midnight_and_utc_hour_of_a_decade(name):
    tz = ZoneInfo(name)
    day = date(2008, 1, 1)
    while day < date(2018, 1, 1):
        start = epoch_us(datetime.combine(day, datetime.min.time(), tzinfo=tz))
        for value in (start - 1, start, start + 1):
            assert local_date(value, tz) == reference(value, tz), (name, day, value - start)
        day += timedelta(days=1)
    hour = epoch_us(datetime(2011, 1, 1, tzinfo=timezone.utc))
    for step in range(24 * 365 * 2):
        value = hour + step * 3_600_000_000
        assert local_date(value - 1, tz) == reference(value - 1, tz)
        assert local_date(value, tz) == reference(value, tz)


def test_the_example_of_a_stockholm_summer_evening():
    # 2026-05-04 22:30 UTC is 00:30 on 5 May in Stockholm (UTC+2).
    value = epoch_us(datetime(2026, 5, 4, 22, 30, tzinfo=timezone.utc))
    assert local_date(value, ZoneInfo("Europe/Stockholm")) == date(2026, 5, 5)
    assert local_date(value, ZoneInfo("UTC")) == date(2026, 5, 4)


@given(st.integers(min_value=0, max_value=epoch_us(datetime(2100, 1, 1, tzinfo=timezone.utc))), st.sampled_from(ZONES))
def test_any_instant_outside_the_table_too(value, name):
    tz = ZoneInfo(name)
    assert local_date(value, tz) == reference(value, tz)


@given(st.integers(min_value=-(10**15), max_value=epoch_us(datetime(2100, 1, 1, tzinfo=timezone.utc))))
def test_an_instant_read_back_from_epoch_microseconds_is_the_instant_written(value):
    # from_epoch_us splits seconds and microseconds for speed; the instant must be the one a single
    # timedelta of microseconds gives, before 1970 too.
    assert from_epoch_us(value) == datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=value)
    assert epoch_us(from_epoch_us(value)) == value
