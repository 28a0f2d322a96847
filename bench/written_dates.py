"""Reading dates written in common formats: µs per value, against trying every format in turn.

A file may hold a column of dates no format reads ("n/a", dates written day first read month first),
and each such value is looked at on its own. ``from_written`` reads the numeric forms (5/1/2024 10:15 PM)
with one regular expression and tries only the formats whose dates have the value's separators and
letters; the baseline tries strptime with each format in turn, in the same run.

It also measures a DATETIME column of local times ("2024-05-01 10:15:00", a year of them) converted
with TIME_ZONE set, which sends each with its zone's offset, against the same column without it.

    python bench/written_dates.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "shared")]

from recorded import record  # noqa: E402

from martech.iso_times import COMMON_FORMATS, from_iso, from_written  # noqa: E402
from martech.monetate_rows import Schema, RowConverter  # noqa: E402

READABLE = ["05/01/2024", "5/1/2024 10:15 PM", "1 May 2024", "01.05.2024 10:15", "May  1 2024 10:15AM"]
UNREADABLE = ["n/a", "soon", "25/12/2024", "2024-05-01 10:15:00 CET", "31.31.2024"]


def every_format(text: str) -> dt.datetime | None:
    """The baseline: ISO-8601, then each format in turn until one reads the value."""
    try:
        return from_iso(text)
    except ValueError:
        pass
    for fmt in COMMON_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def written(text: str) -> dt.datetime | None:
    try:
        return from_written(text)[0]
    except ValueError:
        return None


def us_per_value(read, values: list[str], repeat: int) -> float:
    seconds = min(timeit.repeat(lambda: [read(v) for v in values], number=repeat, repeat=5))
    return round(seconds / repeat / len(values) * 1e6, 2)


def zoned_column() -> dict[str, float]:
    """µs per value of a column of 100,000 local times over a year, converted in batches of 500 as a
    file's are, with TIME_ZONE set and without."""
    from zoneinfo import ZoneInfo

    start = dt.datetime(2024, 1, 1)
    times = [(start + dt.timedelta(seconds=n * 315 + n % 60)).isoformat(sep=" ") for n in range(100_000)]  # a year
    rows = [[f"c{n}", time] for n, time in enumerate(times)]
    schema = Schema.from_api({"name": "bench", "fields": {"id": {"data_type": "STRING", "identifier": True},
                                                          "at": {"data_type": "DATETIME"}}})
    figures = {}
    for label, zone in (("without_us", None), ("with_time_zone_us", ZoneInfo("America/New_York"))):
        converter = RowConverter(schema, zone=zone)

        def convert(converter: RowConverter = converter) -> None:
            for first in range(0, len(rows), 500):
                converter.convert_rows(["id", "at"], rows[first:first + 500])
        figures[label] = round(min(timeit.repeat(convert, number=1, repeat=5)) / len(rows) * 1e6, 2)
    figures["with_vs_without"] = round(figures["with_time_zone_us"] / figures["without_us"], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    assert [written(v) for v in READABLE + UNREADABLE] == [every_format(v) for v in READABLE + UNREADABLE]
    figures = {}
    for label, values in (("readable", READABLE), ("unreadable", UNREADABLE)):
        base, new = us_per_value(every_format, values, args.repeat), us_per_value(written, values, args.repeat)
        figures[label] = {"values": values, "every_format_us": base, "from_written_us": new,
                          "from_written_vs_every_format": round(new / base, 3)}
    figures["datetime_column_of_local_times"] = zoned_column()
    record("written_dates", figures)


if __name__ == "__main__":
    main()
