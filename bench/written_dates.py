"""Reading dates written in common formats: µs per value, against trying every format in turn.

A file may hold a column of dates no format reads ("n/a", dates written day first read month first),
and each such value is looked at on its own. ``from_written`` reads the numeric forms (5/1/2024 10:15 PM)
with one regular expression and tries only the formats whose dates have the value's separators and
letters; the baseline tries strptime with each format in turn, in the same run.

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
    record("written_dates", figures)


if __name__ == "__main__":
    main()
