"""When marketing may go out: not at night (20:00–08:00), not on Sundays, not on public holidays.

The French rule for commercial SMS (the issue's "French rules for marketing messages"): no
marketing between 20:00 and 08:00, on Sundays or on public holidays, in Europe/Paris time.
Holidays come from the ``holidays`` package (``country_holidays("FR")``: the eleven national
holidays, Easter and Pentecost Mondays and Ascension included; a subdivision such as "57"
adds Alsace-Moselle's Good Friday and 26 December).

Every instant is aware; the rule is applied on its local time in the zone, so the daylight
saving changes (the last Sundays of March and October) move the boundaries' UTC instants
by one hour and nothing else: 08:00 and 20:00 exist exactly once on every day in France (the
clocks change at 02:00/03:00). A forbidden instant waits for the next 08:00 of a day that is
neither a Sunday nor a holiday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Final
from zoneinfo import ZoneInfo

import holidays

from postier.config import CampaignSettings

PARIS: Final = ZoneInfo("Europe/Paris")
#: a year of days: more consecutive forbidden days than this means a misconfiguration
_MAX_DAYS_AHEAD = 366


@dataclass(frozen=True)
class QuietHours:
    """The window marketing must keep out of, in ``zone`` local time.

    ``start`` (20:00) is the first forbidden instant of an evening, ``end`` (08:00) the first
    allowed instant of a morning; the night crosses midnight, so ``start`` is after ``end``.
    """

    zone: ZoneInfo = PARIS
    start: time = time(20, 0)
    end: time = time(8, 0)
    sundays: bool = True
    country: str = "FR"
    subdivision: str | None = None

    def __post_init__(self) -> None:
        if not self.end < self.start:
            raise ValueError(
                f"quiet hours run overnight: the end ({self.end}) must come before"
                f" the start ({self.start})"
            )

    @classmethod
    def from_settings(cls, settings: CampaignSettings) -> QuietHours:
        """The window ``settings`` describe."""
        return cls(
            zone=ZoneInfo(settings.timezone),
            start=settings.quiet_start,
            end=settings.quiet_end,
            sundays=settings.quiet_sundays,
            country=settings.holidays_country,
            subdivision=settings.holidays_subdivision,
        )

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        return holidays.country_holidays(self.country, subdiv=self.subdivision)

    def holiday(self, day: date) -> str | None:
        """The name of the public holiday on ``day``, None on an ordinary day."""
        name = self._holidays.get(day)
        return str(name) if name else None

    def day_allowed(self, day: date) -> bool:
        """Whether marketing may go out at all on ``day`` (neither a Sunday nor a holiday)."""
        if self.sundays and day.weekday() == 6:
            return False
        return self.holiday(day) is None

    def reason(self, instant: datetime) -> str | None:
        """Why marketing may not go out at ``instant`` (None when it may)."""
        local = _aware(instant).astimezone(self.zone)
        if self.sundays and local.weekday() == 6:
            return "Sunday"
        name = self.holiday(local.date())
        if name:
            return f"public holiday ({name})"
        moment = local.time()
        if moment >= self.start or moment < self.end:
            return f"night ({self.start:%H:%M}–{self.end:%H:%M} {self.zone.key})"
        return None

    def is_allowed(self, instant: datetime) -> bool:
        """Whether marketing may go out at ``instant``."""
        return self.reason(instant) is None

    def reason_within(self, instant: datetime, margin: timedelta) -> str | None:
        """Why marketing may not go out at ``instant`` or ``margin`` later (None when it may).

        A forbidden stretch lasts hours, so checking both ends covers the span between.
        """
        return self.reason(instant) or self.reason(instant + margin)

    def next_allowed(self, instant: datetime) -> datetime:
        """``instant`` (in UTC) when it is allowed, else the next allowed one: 08:00 local of
        the first day from then on that is neither a Sunday nor a holiday."""
        instant = _aware(instant).astimezone(UTC)
        if self.is_allowed(instant):
            return instant
        local = instant.astimezone(self.zone)
        day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        for _ in range(_MAX_DAYS_AHEAD):
            if self.day_allowed(day):
                return datetime.combine(day, self.end, tzinfo=self.zone).astimezone(UTC)
            day += timedelta(days=1)
        raise ValueError(f"no allowed day within {_MAX_DAYS_AHEAD} days of {instant}")


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant!r}: pass an aware one")
    return instant
