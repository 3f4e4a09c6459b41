"""Marketing quiet hours: both sides of every boundary, DST days, holidays, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postier.config import CampaignSettings
from postier.rules.quiet_hours import QuietHours

PARIS = ZoneInfo("Europe/Paris")
QH = QuietHours()
TICK = timedelta(microseconds=1)


def paris(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=PARIS)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


# -- the daily boundaries, winter and summer ---------------------------------------------


@pytest.mark.parametrize(
    ("day", "morning_utc", "evening_utc"),
    [
        # Tuesday 3 March 2026, CET (UTC+1): 08:00 is 07:00 UTC, 20:00 is 19:00 UTC
        (date(2026, 3, 3), utc(2026, 3, 3, 7), utc(2026, 3, 3, 19)),
        # Tuesday 7 July 2026, CEST (UTC+2): 08:00 is 06:00 UTC, 20:00 is 18:00 UTC
        (date(2026, 7, 7), utc(2026, 7, 7, 6), utc(2026, 7, 7, 18)),
    ],
)
def test_both_sides_of_08h_and_20h(day: date, morning_utc: datetime, evening_utc: datetime) -> None:
    assert paris(day.year, day.month, day.day, 8) == morning_utc
    assert not QH.is_allowed(morning_utc - TICK)
    assert QH.is_allowed(morning_utc)
    assert QH.is_allowed(evening_utc - TICK)
    assert not QH.is_allowed(evening_utc)
    # a forbidden evening instant waits for the next morning, in the right UTC hour
    next_morning = QH.next_allowed(evening_utc)
    assert next_morning == paris(day.year, day.month, day.day + 1, 8).astimezone(UTC)
    assert QH.next_allowed(morning_utc - TICK) == morning_utc
    assert QH.next_allowed(evening_utc - TICK) == evening_utc - TICK


def test_a_margin_looks_ahead_to_the_next_boundary() -> None:
    margin = timedelta(seconds=10)
    assert QH.reason_within(paris(2026, 3, 3, 19, 59, 49), margin) is None
    assert QH.reason_within(paris(2026, 3, 3, 19, 59, 51), margin) == (
        "night (20:00–08:00 Europe/Paris)"
    )
    # Saturday night: the night itself is the reason, Sunday follows
    assert QH.reason_within(paris(2026, 3, 7, 23, 59, 55), margin) == (
        "night (20:00–08:00 Europe/Paris)"
    )
    assert QH.reason_within(paris(2026, 3, 8, 0, 0, 1), margin) == "Sunday"
    assert QH.reason_within(paris(2026, 3, 3, 8), margin) is None


def test_midnight_and_the_small_hours_wait_for_08h_the_same_day() -> None:
    assert QH.next_allowed(paris(2026, 3, 4, 0, 0)) == paris(2026, 3, 4, 8)
    assert QH.next_allowed(paris(2026, 3, 4, 3, 17)) == paris(2026, 3, 4, 8)
    assert QH.reason(paris(2026, 3, 4, 3, 17)) == "night (20:00–08:00 Europe/Paris)"


def test_sundays_are_closed_all_day() -> None:
    assert QH.is_allowed(paris(2026, 3, 7, 19, 59, 59))  # Saturday
    assert not QH.is_allowed(paris(2026, 3, 7, 20))
    assert not QH.is_allowed(paris(2026, 3, 8, 12))  # Sunday noon
    assert QH.reason(paris(2026, 3, 8, 12)) == "Sunday"
    # Saturday evening and all of Sunday wait for Monday 08:00
    monday = paris(2026, 3, 9, 8).astimezone(UTC)
    assert QH.next_allowed(paris(2026, 3, 7, 20)) == monday
    assert QH.next_allowed(paris(2026, 3, 8, 23, 59)) == monday
    assert QH.next_allowed(monday - TICK) == monday


@pytest.mark.parametrize(
    ("holiday", "name"),
    [
        (date(2026, 1, 1), "New Year's Day"),
        (date(2026, 4, 6), "Easter Monday"),
        (date(2026, 5, 1), "Labor Day"),
        (date(2026, 5, 8), "Victory Day"),
        (date(2026, 5, 14), "Ascension Day"),
        (date(2026, 5, 25), "Pentecost Monday"),
        (date(2026, 7, 14), "National Day"),
        (date(2026, 8, 15), "Assumption Day"),
        (date(2026, 11, 11), "Armistice Day"),
        (date(2026, 12, 25), "Christmas Day"),
    ],
)
def test_public_holidays_are_closed_all_day(holiday: date, name: str) -> None:
    noon = paris(holiday.year, holiday.month, holiday.day, 12)
    assert not QH.is_allowed(noon)
    assert QH.reason(noon) == f"public holiday ({name})"
    after = QH.next_allowed(noon).astimezone(PARIS)
    assert after.time() == time(8) and after.date() > holiday
    assert QH.day_allowed(after.date())


def test_a_holiday_after_a_weekday_evening_pushes_to_the_day_after() -> None:
    # Thursday 30 April 2026 20:00 -> Friday 1 May is a holiday -> Saturday 2 May 08:00
    assert QH.next_allowed(paris(2026, 4, 30, 20)) == paris(2026, 5, 2, 8).astimezone(UTC)
    # Christmas Friday 2026, then Saturday 26th is allowed nationally...
    assert QH.next_allowed(paris(2026, 12, 24, 21)) == paris(2026, 12, 26, 8).astimezone(UTC)
    # ...but not in Moselle (subdivision 57: 26 December and Good Friday), then Sunday
    moselle = QuietHours(subdivision="57")
    assert moselle.next_allowed(paris(2026, 12, 24, 21)) == paris(2026, 12, 28, 8).astimezone(UTC)
    assert not moselle.is_allowed(paris(2026, 4, 3, 12))  # Good Friday
    assert QH.is_allowed(paris(2026, 4, 3, 12))


# -- daylight saving days ----------------------------------------------------------------


def test_spring_forward_weekend_waits_for_monday_08h_summer_time() -> None:
    # Saturday 28 March 2026 20:00 CET = 19:00 UTC; clocks go forward on Sunday 29th
    saturday_20h = utc(2026, 3, 28, 19)
    assert not QH.is_allowed(saturday_20h)
    assert QH.is_allowed(saturday_20h - TICK)
    # Monday 30 March 08:00 CEST is 06:00 UTC, not 07:00
    assert QH.next_allowed(saturday_20h) == utc(2026, 3, 30, 6)
    assert not QH.is_allowed(utc(2026, 3, 30, 6) - TICK)


def test_fall_back_weekend_waits_for_monday_08h_winter_time() -> None:
    # Saturday 24 October 2026 20:00 CEST = 18:00 UTC; clocks go back on Sunday 25th
    saturday_20h = utc(2026, 10, 24, 18)
    assert not QH.is_allowed(saturday_20h)
    assert QH.is_allowed(saturday_20h - TICK)
    assert QH.next_allowed(saturday_20h) == utc(2026, 10, 26, 7)
    assert not QH.is_allowed(utc(2026, 10, 26, 7) - TICK)


def test_on_the_dst_sundays_themselves_when_sundays_are_open() -> None:
    open_sundays = QuietHours(sundays=False)
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST; 08:00 CEST = 06:00 UTC
    assert not open_sundays.is_allowed(utc(2026, 3, 29, 6) - TICK)
    assert open_sundays.is_allowed(utc(2026, 3, 29, 6))
    assert open_sundays.next_allowed(utc(2026, 3, 29, 1, 30)) == utc(2026, 3, 29, 6)
    assert open_sundays.is_allowed(utc(2026, 3, 29, 18) - TICK)  # 19:59:59 CEST
    assert not open_sundays.is_allowed(utc(2026, 3, 29, 18))
    # 25 October 2026: 03:00 CEST falls back to 02:00 CET; 08:00 CET = 07:00 UTC
    assert not open_sundays.is_allowed(utc(2026, 10, 25, 7) - TICK)
    assert open_sundays.is_allowed(utc(2026, 10, 25, 7))
    # both 02:30s of the repeated hour are night
    assert not open_sundays.is_allowed(utc(2026, 10, 25, 0, 30))
    assert not open_sundays.is_allowed(utc(2026, 10, 25, 1, 30))
    assert open_sundays.next_allowed(utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 25, 7)
    assert open_sundays.is_allowed(utc(2026, 10, 25, 19) - TICK)  # 19:59:59 CET
    assert not open_sundays.is_allowed(utc(2026, 10, 25, 19))


# -- configuration -----------------------------------------------------------------------


def test_from_settings_and_refusals() -> None:
    custom = QuietHours.from_settings(
        CampaignSettings(quiet_start=time(21, 0), quiet_end=time(9, 0), quiet_sundays=False)
    )
    assert custom.is_allowed(paris(2026, 3, 3, 20, 30))
    assert not custom.is_allowed(paris(2026, 3, 3, 8, 30))
    assert custom.is_allowed(paris(2026, 3, 8, 12))  # a Sunday
    with pytest.raises(ValueError, match="overnight"):
        QuietHours(start=time(8), end=time(20))
    with pytest.raises(ValueError, match="naive"):
        QH.is_allowed(datetime(2026, 3, 3, 12))


# -- properties --------------------------------------------------------------------------

FR_HOLIDAYS = holidays.country_holidays("FR")


def oracle_allowed(instant: datetime) -> bool:
    """The rule written a second way: local hour 8–19, not Sunday, not a holiday."""
    local = instant.astimezone(PARIS)
    return 8 <= local.hour < 20 and local.isoweekday() != 7 and local.date() not in FR_HOLIDAYS


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2031, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(instants)
def test_allowed_matches_the_rule_written_another_way(instant: datetime) -> None:
    assert QH.is_allowed(instant) == oracle_allowed(instant)


@settings(max_examples=300, deadline=None)
@given(instants, st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_next_allowed_is_the_first_allowed_instant(instant: datetime, fraction: float) -> None:
    found = QH.next_allowed(instant)
    assert found >= instant and found.tzinfo is UTC
    assert oracle_allowed(found)
    assert QH.next_allowed(found) == found
    if found == instant:
        assert oracle_allowed(instant)
        return
    # it is an 08:00 in Paris, and nothing between ``instant`` and it is allowed
    assert found.astimezone(PARIS).time() == time(8)
    assert not oracle_allowed(found - TICK)
    between = min(instant + (found - instant) * fraction, found - TICK)
    assert not oracle_allowed(between)
    # and a forbidden stretch never lasts more than a long weekend plus holidays
    assert found - instant < timedelta(days=5)
