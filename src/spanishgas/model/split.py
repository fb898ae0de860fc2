"""Forward-in-time split of the labelled as-of snapshots, with a label-horizon gap between periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from spanishgas.errors import PlatformError

if TYPE_CHECKING:
    import pandas as pd


class SplitError(PlatformError, ValueError):
    """The training set has too few as-of dates for a forward split with gaps."""


@dataclass(frozen=True)
class TimeSplit:
    """As-of dates of each period. Every label of a period ends on or before the next period starts."""

    train: list[date]
    validation: list[date]
    test: list[date]

    def describe(self) -> dict[str, str]:
        """First and last date of each period, for logs and the model card."""
        return {k: f"{min(v)}..{max(v)} ({len(v)} dates)" for k, v in vars(self).items()}


def time_split(as_of_dates: list[date], horizon_days: int, validation_dates: int = 2, test_dates: int = 3) -> TimeSplit:
    """Test on up to ``test_dates`` latest as-of dates; validate on up to ``validation_dates`` latest dates
    whose labels end before the first test date; train on every date whose labels end before the first
    validation date. When the history is too short to keep all three with their gaps, validation shrinks
    to one date first (the test figure is what promotion decides on), then the test period.

    A label covers (as-of, as-of + horizon], so a gap of one horizon between periods means no customer's
    outcome is known to an earlier period while it is still being predicted in a later one. Test dates
    follow each other without a gap: the test period only measures, so overlapping labels inside it leak
    nothing; more test dates give a steadier figure (and promotion decision) at the price of older
    training data.
    """
    dates = sorted(set(as_of_dates))
    if not dates:
        raise SplitError("no labelled as-of dates")
    if test_dates < 1:
        raise SplitError(f"test_dates must be at least 1, got {test_dates}")
    for n_test in range(min(test_dates, len(dates)), 0, -1):
        try:
            return _split_with(dates, timedelta(days=horizon_days), validation_dates, n_test)
        except SplitError as exc:
            error = exc
    raise error


def _split_with(dates: list[date], horizon: timedelta, validation_dates: int, test_dates: int) -> TimeSplit:
    """The split with exactly ``test_dates`` test dates and up to ``validation_dates`` validation dates."""
    test = dates[-test_dates:]
    before_test = [d for d in dates if d + horizon <= test[0]]
    if not before_test:
        raise SplitError(f"no as-of date ends its {horizon.days}-day label before the test date {test[0]}")
    # Up to ``validation_dates`` dates: fewer when more would leave no training period.
    for n in range(min(validation_dates, len(before_test)), 0, -1):
        validation = before_test[-n:]
        train = [d for d in dates if d + horizon <= validation[0]]
        if train:
            break
    else:
        raise SplitError(
            f"no as-of date ends its {horizon.days}-day label before validation starts on {before_test[-1]}: "
            f"the data need labelled snapshots spanning at least {2 * horizon.days // 30 + 1} months"
        )
    return TimeSplit(train, validation, test)


def split_frame(frame: pd.DataFrame, split: TimeSplit) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rows of each period, by ``as_of_date``."""
    dates = frame["as_of_date"]
    return (
        frame[dates.isin(split.train)].reset_index(drop=True),
        frame[dates.isin(split.validation)].reset_index(drop=True),
        frame[dates.isin(split.test)].reset_index(drop=True),
    )
