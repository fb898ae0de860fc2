"""Spanish calendar facts shared by the generator and the tariff-period logic."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from functools import lru_cache

# 2.0TD tariff periods (Spanish regulation, peninsula): on working days peak (P1) is 10-14 and 18-22,
# standard (P2) 8-10, 14-18 and 22-24, off-peak (P3) 0-8; weekends and national holidays are all P3.
PEAK, STANDARD, OFF_PEAK = 1, 2, 3
# The delivery's wall clock: readings are stamped in local time, with the clock changes of the peninsula.
LOCAL_TZ = "Europe/Madrid"
PEAK_HOURS = frozenset({10, 11, 12, 13, 18, 19, 20, 21})
STANDARD_HOURS = frozenset({8, 9, 14, 15, 16, 17, 22, 23})


@lru_cache(maxsize=32)
def _national_holidays_of(year: int) -> frozenset[date]:
    import holidays  # imported lazily: no work at import time

    # Without a subdivision the calendar holds the nationwide holidays only, which is what 2.0TD uses.
    return frozenset(holidays.country_holidays("ES", years=[year]).keys())


def national_holidays(years: Iterable[int]) -> set[date]:
    """Nationwide Spanish public holidays in ``years``."""
    out: set[date] = set()
    for y in years:
        out |= _national_holidays_of(int(y))
    return out


def tariff_period(day: date, hour: int, holidays: set[date]) -> int:
    """2.0TD period (1 peak, 2 standard, 3 off-peak) of the hour starting at ``hour`` on ``day``."""
    if day.weekday() >= 5 or day in holidays:
        return OFF_PEAK
    if hour in PEAK_HOURS:
        return PEAK
    if hour in STANDARD_HOURS:
        return STANDARD
    return OFF_PEAK


def dst_days(years: list[int]) -> tuple[list[date], list[date]]:
    """Last Sundays of March (clocks go forward) and October (clocks go back) in Spain."""

    def last_sunday(year: int, month: int) -> date:
        d = date(year, month + 1, 1) - timedelta(days=1)
        return d - timedelta(days=(d.weekday() - 6) % 7)

    return [last_sunday(y, 3) for y in years], [last_sunday(y, 10) for y in years]
