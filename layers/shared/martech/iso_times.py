"""Date-times as files hold them: ISO-8601 as warehouses export it, which Python's ``fromisoformat``
does not all take, and the common forms spreadsheets and people write.

BigQuery writes ``2024-05-01 10:15:00 UTC``, Snowflake ``2024-05-01 10:15:00.000 -0700``, and
JavaScript ``2024-05-01T10:15:00.000Z`` (``Wed, 01 May 2024 10:15:00 GMT`` as its toUTCString() and
HTTP write it); Excel ``5/1/2024 10:15``.

Example::

    from_iso("2024-05-01 10:15:00.123 UTC")  # datetime(2024, 5, 1, 10, 15, 0, 123000, tzinfo=UTC)
    from_written("5/1/2024")                  # (datetime(2024, 5, 1, 0, 0), True): a date alone
    from_written("5/1/2024", day_first=True)  # (datetime(2024, 1, 5, 0, 0), True)
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re

# A zone after the time: Z, UTC or GMT, or an offset after a space, which Go follows with the zone's
# abbreviation (2024-05-01 10:15:00 -0700 MST, as its time.Time prints): the offset says it all.
_ZONE = re.compile(r"(?<=[0-9])(?:\s*(?:Z|UTC|GMT)|\s+([+-][0-9]{2}(?::?[0-9]{2})?)(?:\s+[A-Za-z]{1,5})?)$",
                   re.IGNORECASE)


def from_iso(text: str) -> dt.datetime:
    """The date-time ``text`` writes; ValueError if it is not ISO-8601 as above."""
    try:
        return dt.datetime.fromisoformat(text)  # most values: the zone is looked at only when this fails
    except ValueError:
        zone = _ZONE.search(text)
        if not zone:
            raise
    return dt.datetime.fromisoformat(text[:zone.start()] + (zone[1] or "+00:00"))


# Dates people write, tried in order after ISO-8601; day-first forms use dots to stay unambiguous.
COMMON_FORMATS = (
    "%Y/%m/%d", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p",
    "%d.%m.%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S",
    "%Y%m%dT%H%M%SZ", "%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d, %Y",
    "%Y-%m-%d", "%d-%b-%Y", "%d %b %Y %H:%M", "%d %b %Y %H:%M:%S",  # 2024-5-1, 01-May-2024 (four-digit years only)
    "%b %d %Y %I:%M%p",  # May  1 2024 10:15AM, SQL Server's datetime as text
    "%b %d, %Y", "%A, %B %d, %Y",  # Jan 5, 2024 and Friday, January 5, 2024, as spreadsheets show dates
    "%b %d, %Y %I:%M %p", "%b %d, %Y %I:%M:%S %p", "%B %d, %Y %I:%M %p", "%B %d, %Y %I:%M:%S %p",
)
# As e-mail and HTTP write dates, and JavaScript's toUTCString(): Wed, 01 May 2024 10:15:00 GMT
_RFC_2822 = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} [A-Za-z]{3} [0-9]{4}"
                       r" [0-9]{2}:[0-9]{2}(?::[0-9]{2})? (?:GMT|UT|UTC|Z|[+-][0-9]{4})")
# As JavaScript's Date writes itself as text (String(date)): Fri Jan 05 2024 10:15:00 GMT+0100 (Central European Standard Time)
_JAVASCRIPT = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<time>[A-Za-z]{3} [0-9]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2})"
                         r" GMT(?P<offset>[+-][0-9]{4})(?: \([^()]*\))?")
# As Microsoft's JSON writes a date (ASP.NET, WCF, SharePoint): /Date(1714558500000)/, milliseconds since 1970 in UTC,
# and maybe the offset of the zone it was shown in, which does not change the instant.
_MICROSOFT_JSON = re.compile(r"/Date\((-?[0-9]{1,15})(?:[+-][0-9]{4})?\)/")
# A comma between the date and its time, as JavaScript's toLocaleString() writes (5/1/2024, 10:15:00 AM).
_COMMA_BEFORE_TIME = re.compile(r"(?<=[0-9]{4}), (?=[0-9]{1,2}:)")


# The same with dates written with slashes day first, as in Britain and most of the world: 01/05/2024 is 1 May.
DAY_FIRST_FORMATS = tuple(fmt.replace("%m/%d/%Y", "%d/%m/%Y") for fmt in COMMON_FORMATS)


def _shape(text: str) -> tuple[bool, ...]:
    """Which separators and whether letters a date holds: a format whose dates hold others cannot read it."""
    return "/" in text, "." in text, "-" in text, ":" in text, any(c.isalpha() for c in text)


def _by_shape(formats: tuple[str, ...]) -> dict[tuple[bool, ...], tuple[str, ...]]:
    # A failed strptime costs some 5 µs: trying only the formats of a value's shape makes a date that
    # reads in none (a column of "n/a", say) cost a few of them rather than all twenty.
    example = dt.datetime(2024, 5, 1, 10, 15, 30)
    shapes = {_shape(example.strftime(fmt)) for fmt in formats}
    return {shape: tuple(fmt for fmt in formats if _shape(example.strftime(fmt)) == shape) for shape in shapes}


_MONTH_FIRST_BY_SHAPE, _DAY_FIRST_BY_SHAPE = _by_shape(COMMON_FORMATS), _by_shape(DAY_FIRST_FORMATS)


# The numeric forms above, read without strptime (a fifth of its cost): 2024/05/01, 5/1/2024 10:15 PM,
# 01.05.2024 10:15:30. strptime stays the judge of anything this does not read.
_NUMERIC = re.compile(r"(?:(?P<year_first>[0-9]{4})/(?P<ym>[0-9]{1,2})/(?P<yd>[0-9]{1,2})"
                      r"|(?P<a>[0-9]{1,2})(?P<sep>[/.])(?P<b>[0-9]{1,2})(?P=sep)(?P<year>[0-9]{4}))"
                      r"(?:\s+(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{1,2})(?::(?P<second>[0-9]{1,2}))?"
                      r"(?:\s+(?P<half>[AaPp][Mm]))?)?")


def _numeric(text: str, day_first: bool) -> tuple[dt.datetime, bool] | None:
    found = _NUMERIC.fullmatch(text)
    if not found:
        return None
    half = found["half"]
    if found["year_first"]:
        year, month, day = found["year_first"], found["ym"], found["yd"]
    else:
        year, first, second = found["year"], found["a"], found["b"]
        month, day = (second, first) if found["sep"] == "." or day_first else (first, second)
    if half and (found["year_first"] or found["sep"] == "."):  # the formats with AM/PM are m/d/Y ones alone
        return None
    hour = int(found["hour"] or 0)
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half.lower() == "pm" else 0)
    try:
        return (dt.datetime(int(year), int(month), int(day), hour, int(found["minute"] or 0), int(found["second"] or 0)),
                found["hour"] is None)
    except ValueError:
        return None


def from_written(text: str, day_first: bool = False) -> tuple[dt.datetime, bool]:
    """The date-time ``text`` writes, in ISO-8601 as above or a common format, and whether it is a
    date alone (told by its form: no time in it); ValueError if it is neither. ``day_first``: a date
    written with slashes has its day first (01/05/2024 is 1 May), not its month as in the US."""
    try:
        return from_iso(text), not any(mark in text for mark in "T: ")  # 2024-05-01 or 20240501
    except ValueError:
        pass
    if _RFC_2822.fullmatch(text):
        return email.utils.parsedate_to_datetime(text), False
    if len(text) == 14 and text.isdigit():  # 20240501101500, as SAP and many logs write a time
        return dt.datetime.strptime(text, "%Y%m%d%H%M%S"), False
    if microsoft := _MICROSOFT_JSON.fullmatch(text):
        return dt.datetime.fromtimestamp(int(microsoft[1]) / 1000, dt.UTC), False
    if javascript := _JAVASCRIPT.fullmatch(text):
        return dt.datetime.strptime(f"{javascript['time']} {javascript['offset']}", "%b %d %Y %H:%M:%S %z"), False
    if "," in text:
        text = _COMMA_BEFORE_TIME.sub(" ", text)
    if (numeric := _numeric(text, day_first)) is not None:
        return numeric
    for fmt in (_DAY_FIRST_BY_SHAPE if day_first else _MONTH_FIRST_BY_SHAPE).get(_shape(text), ()):
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        if fmt.startswith("%A") and not text.lower().startswith(parsed.strftime("%A").lower()):
            continue  # strptime takes any weekday: Monday, January 5, 2024 is no date
        return parsed, "%H" not in fmt and "%I" not in fmt
    raise ValueError(f"{text!r} is no date-time in ISO-8601 or a common format")


# A date-time with its zone named rather than given as an offset: 2024-05-01 10:15:00 CET, ... America/New_York.
_ZONE_NAME = re.compile(r"(?P<time>.*[0-9])\s+(?P<zone>[A-Za-z][A-Za-z_/+-]*)")


def date_hint(text: str, day_first: bool) -> str:
    """What to add to the error for a date that does not read: the setting for one that reads only in
    the other order (25/12/2024, read month first); how to write a zone given by name, a year of two
    digits or what MySQL writes for no date; what a spreadsheet's date serial (45413) is; else nothing.
    What varies with the value is quoted, as the value is, so that a report counts alike reasons as one."""
    if "/" in text:  # the order is a question for dates with slashes alone
        try:
            from_written(text, not day_first)
        except ValueError:
            pass
        else:
            order = "month" if day_first else "day"
            return f", which reads {order} first: set DATE_ORDER={order}-first"
    named = _ZONE_NAME.fullmatch(text)
    if named and named["zone"].upper() not in ("AM", "PM"):
        try:
            from_written(named["time"], day_first)
        except ValueError:
            return ""
        return ", a time zone by name, which may mean more than one offset: write the offset (+01:00) or UTC"
    if text.startswith("0000-00-00"):
        return ", MySQL's zero date, which means no date: leave it out, or name it in CSV_NULLS to read such CSV cells as empty"
    if short := _TWO_DIGIT_YEAR.fullmatch(text):
        year = int(short["year"])
        century = 2000 if year <= dt.date.today().year % 100 + 10 else 1900  # 5/1/24 is 2024, 3/9/85 1985
        in_full = f"{short['date']}{century + year}{short['time'] or ''}"
        try:
            from_written(in_full, day_first)
            order = ""
        except ValueError:
            order = date_hint(in_full, day_first)  # 31/12/24 read month first
            if not order:
                return ""
        return f", whose year has two digits, which could be of any century: write all four, '{in_full}'{order}"
    if serial := _SPREADSHEET_SERIAL.fullmatch(text):
        day = _SPREADSHEET_DAY_ZERO + dt.timedelta(days=int(serial[1]))
        return (f", which looks like a spreadsheet's date serial, '{day.isoformat()}': format the column as a date"
                " before saving the file")
    return ""


# A date with its year in two digits, as Excel shows 5/1/24 and Oracle exports 01-MAY-24, and maybe a time after.
_TWO_DIGIT_YEAR = re.compile(r"(?P<date>[0-9]{1,2}([/.-])(?:[0-9]{1,2}|[A-Za-z]{3})\2)(?P<year>[0-9]{2})(?P<time>[ ,].*)?")
# Days since 30 December 1899, as Excel and Google Sheets hold dates: those from 1927 to 2173.
_SPREADSHEET_SERIAL = re.compile(r"([1-9][0-9]{4})(?:\.[0-9]+)?")
_SPREADSHEET_DAY_ZERO = dt.date(1899, 12, 30)
