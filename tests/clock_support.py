"""The tests' clock: when their readings start, so that test retirements stay within the
certificates' JST vintage year on any day the suite runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

JST = timezone(timedelta(hours=9))


def jst_year_start(timestamp: float) -> int:
    """Unix time of 1 January 00:00 JST of the JST calendar year `timestamp` falls in."""
    year = datetime.fromtimestamp(timestamp, JST).year
    return int(datetime(year, 1, 1, tzinfo=JST).timestamp())


def epoch_for(now: float) -> int:
    """The tests' first reading time: hour-aligned, 30 days before `now` (readings from it on are
    not in the future), moved back before December when [epoch, epoch + 31 days] would cross a
    JST new year: test retirements consume from the epoch for up to a month, within the
    certificates' vintage year. Tests pass in January too."""
    epoch = int(now - 30 * 86400) // 3600 * 3600
    month_later = epoch + 31 * 86400
    if datetime.fromtimestamp(epoch, JST).year != datetime.fromtimestamp(month_later, JST).year:
        epoch = jst_year_start(month_later) - 32 * 86400
    return epoch
