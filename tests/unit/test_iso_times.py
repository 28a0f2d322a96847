"""Dates as files write them: the quick readings agree with strptime over every common format."""

import datetime as dt
import random

import pytest

from martech.iso_times import COMMON_FORMATS, DAY_FIRST_FORMATS, from_iso, from_written


def by_strptime(text, day_first):
    """The reference: ISO-8601, then each common format in turn, as strptime reads them."""
    try:
        return from_iso(text), not any(mark in text for mark in "T: ")
    except ValueError:
        pass
    for fmt in DAY_FIRST_FORMATS if day_first else COMMON_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt), "%H" not in fmt and "%I" not in fmt
        except ValueError:
            continue
    return None


def written(rng):
    """A numeric date as people write them, or nearly: right and wrong numbers, spaces, AM/PM."""
    number = lambda top: str(rng.randint(0, top)).zfill(rng.choice([1, 2]))  # noqa: E731
    year = rng.choice(["2024", "1999", "0000", "9999", "24"])
    sep = rng.choice(["/", "/", ".", "-"])
    date = f"{year}{sep}{number(13)}{sep}{number(32)}" if rng.random() < 0.25 else f"{number(13)}{sep}{number(32)}{sep}{year}"
    if rng.random() < 0.6:
        space = lambda: rng.choice([" ", " ", "  ", ""])  # noqa: E731
        date += f"{space()}{number(25)}:{number(61)}" + (f":{number(61)}" if rng.random() < 0.5 else "")
        if rng.random() < 0.4:
            date += space() + rng.choice(["AM", "PM", "am", "pm", "Pm", "XM"])
    return date


@pytest.mark.parametrize("day_first", [False, True])
def test_numeric_dates_read_as_strptime_reads_them(day_first):
    rng = random.Random(20261124)
    for _ in range(20_000):
        text = written(rng)
        try:
            quick = from_written(text, day_first)
        except ValueError:
            quick = None
        assert quick == by_strptime(text, day_first), text


@pytest.mark.parametrize("text, day_first, expected", [
    ("5/1/2024 12:05 AM", False, (dt.datetime(2024, 5, 1, 0, 5), False)),
    ("5/1/2024 12:05 PM", False, (dt.datetime(2024, 5, 1, 12, 5), False)),
    ("5/1/2024 1:05:09 pm", True, (dt.datetime(2024, 1, 5, 13, 5, 9), False)),
    ("2024/5/1", True, (dt.datetime(2024, 5, 1), True)),  # year first: the order is not in doubt
    ("1.5.2024 10:15", False, (dt.datetime(2024, 5, 1, 10, 15), False)),  # dots: day first always
])
def test_numeric_dates(text, day_first, expected):
    assert from_written(text, day_first) == expected
