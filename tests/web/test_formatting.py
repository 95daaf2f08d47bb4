from datetime import date, datetime, timezone

from vardkoll.server.web.formatting import day, moment, number, percent, period

NBSP = "\u00a0"


def test_shares_have_a_decimal_comma_and_a_spaced_percent_sign():
    assert percent(0.9042) == f"90,4{NBSP}%"
    assert percent(0.90045) == f"90,0{NBSP}%"
    assert percent(0.55, 0) == f"55{NBSP}%"


def test_a_missing_share_is_no_data_never_a_number():
    assert percent(None) == "ingen data"


def test_numbers_group_thousands_with_a_space():
    assert number(11840) == f"11{NBSP}840"
    assert number(0.8123, 2) == "0,81"
    assert number(None) == "–"


def test_dates_are_swedish_short_month_names():
    assert day(date(2026, 11, 23)) == "23 nov 2026"
    assert day("2026-05-01") == "1 maj 2026"
    assert period("2026-11-01", "2026-11-23") == "1–23 nov 2026"
    assert period("2026-11-30", "2026-12-02") == "30 nov 2026 – 2 dec 2026"


def test_moments_are_shown_in_the_units_time_zone():
    assert moment(datetime(2026, 7, 1, 12, 5, tzinfo=timezone.utc)) == "1 jul 2026 kl. 14:05"
    assert moment(None) == "ingen data"
