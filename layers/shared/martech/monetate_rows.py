"""Turning a file's or webhook's record into a Monetate ``schema_rows`` row.

Each value is converted by its field's ``data_type`` to what the Data API accepts, so a
row is either sent as Monetate wants it or set aside with every reason at once.

Example::

    converter = RowConverter(schema, unknown_columns="reject")
    row, reasons = converter.convert({"customer_id": " c1 ", "vip": "yes"})
    # row == {"customer_id": "c1", "vip": True}, reasons == []
    rows, bad = converter.convert_many(records)  # a file's batch: column by column, much faster

Files are converted a batch at a time, one column at a time: a fast converter per data type
handles the values files usually hold and raises on anything else, and the column then goes
through the careful converters value by value. Both give the same result for every value.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from functools import lru_cache, partial
from itertools import repeat
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from collections.abc import Callable, Iterable

import orjson

from martech.dict_makers import dict_maker
from martech.iso_times import from_written, date_hint
from martech.csv_records import trimmed
from martech.names import SpelledAlike, did_you_mean
from martech.strict_json import ORJSON_INTEGERS, json_kind
from martech.value_hints import key_hint, no_value_hint, number_hint, text_hint

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t", "1.0"})  # 1.0: pandas writes a 0/1 column holding NaN as floats
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f", "0.0"})
_BEYOND_DOUBLES = 1 << 1024  # a NUMBER integer this large is no double either
# Unix seconds (10 digits, a fraction allowed) or milliseconds (13) written as text; fewer digits
# would be read for dates such as 20240501.
_UNIX_TEXT = re.compile(r"[0-9]{10}(?:\.[0-9]+)?|[0-9]{13}")


class InvalidValue(ValueError):
    """The value cannot be converted; the message says what was expected."""


@dataclass(frozen=True)
class Field:
    name: str
    data_type: str
    identifier: bool = False
    unique_key: bool = False
    required: bool = False

    @property
    def must_have(self) -> bool:
        return self.identifier or self.unique_key or self.required


@dataclass(frozen=True)
class Schema:
    name: str
    fields: dict[str, Field]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Schema:
        fields = {
            name: Field(name, spec.get("data_type", "STRING"), bool(spec.get("identifier")),
                        bool(spec.get("unique_key")), bool(spec.get("required")))
            for name, spec in data.get("fields", {}).items()
        }
        return cls(data["name"], fields)

    @property
    def unique_key(self) -> str | None:
        return next((f.name for f in self.fields.values() if f.unique_key), None)


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def to_string(value: Any) -> str:
    if type(value) is str:  # the common case, first
        text = trimmed(value)
        if text and not (hint := text_hint(text)):
            return text
        if text:  # #N/A, 1.23457E+11: rows whose ids differ would all be one customer
            raise InvalidValue(f"expected text, found {text!r}{hint}")
        raise InvalidValue("expected non-empty text")
    if isinstance(value, (dict, list)):
        raise InvalidValue(f"expected text, found {json_kind(value)}")
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    if not text:
        raise InvalidValue("expected non-empty text")
    return text


def to_multi_string(value: Any) -> str:
    if type(value) is str and (written := _list_written_as_text(value.strip())) is not None:
        value = written
    if type(value) is str:
        parts = [part for part in (p.strip() for p in value.split(",")) if part]
    else:
        items = value if isinstance(value, list) else str(value).split(",")
        parts = [to_string(item) for item in items if not _is_blank(item)]
    if not parts:
        raise InvalidValue("expected one or more comma-separated values")
    if any("," in part for part in parts):
        raise InvalidValue("a list item must not itself contain a comma")
    return ",".join(parts)


# A list as Python prints it (['a', 'b'], as pandas writes a column of lists) or as Postgres writes an array ({a,b}).
_PYTHON_LIST = re.compile(r"\[\s*(?:'[^']*'|\"[^\"]*\")(?:\s*,\s*(?:'[^']*'|\"[^\"]*\"))*\s*,?\s*\]")
_POSTGRES_ARRAY = re.compile(r"\{[^{}]*\}")


def _list_written_as_text(text: str) -> list[Any] | None:
    """The items of a list a cell writes as JSON (["a","b"], as Snowflake unloads an ARRAY), or None
    for text that is no list: its commas part its items. A list as Python or Postgres writes it is
    refused saying how to write it, rather than sent with its brackets and quotes in its items."""
    if text[:1] == "[" and text[-1:] == "]":
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError:
            items = None
        if isinstance(items, list):
            return items
        if _PYTHON_LIST.fullmatch(text):
            raise InvalidValue("a list as Python writes it: write its items comma-separated (a,b) or as JSON"
                               ' (["a","b"])')
    elif _POSTGRES_ARRAY.fullmatch(text):
        raise InvalidValue("an array as Postgres writes it: write its items comma-separated (a,b), as"
                           " array_to_string(column, ',') does, or as JSON (array_to_json)")
    return None


def to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise InvalidValue("expected a number, found true/false")
    if isinstance(value, (int, float)):
        number = value
    else:
        text = str(value).strip()
        if "_" in text:  # int() and float() read 1_000 as Python writes it: 12_34 would become 1234
            raise InvalidValue(f"expected a number, found {text!r}{number_hint(text)}")
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise InvalidValue(f"expected a number, found {text!r}{number_hint(text)}") from None
    if type(number) is int and number not in ORJSON_INTEGERS:  # past 64 bits: as a JSON file's reader reads it
        number = float(number) if abs(number) < _BEYOND_DOUBLES else math.inf
    if isinstance(number, float) and not math.isfinite(number):
        written = value.strip() if isinstance(value, str) and number != number else ""  # NaN, as pandas writes no value
        raise InvalidValue("expected a finite number" + (f", found {written!r}{no_value_hint(written)}" if written else ""))
    return number


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidValue(f"expected true/false, 1/0 or yes/no, found {value!r}{no_value_hint(str(value).strip())}")


def to_datetime(value: Any, day_first: bool = False, zone: dt.tzinfo | None = None) -> str:
    """ISO-8601 text from ISO-8601, common date formats, or Unix seconds/milliseconds. ``day_first``:
    a date written with slashes has its day first (01/05/2024 is 1 May), as outside the US. ``zone``:
    where a time written without an offset was (TIME_ZONE), which its text then says; without one it
    is sent as written."""
    if isinstance(value, bool):
        raise InvalidValue("expected a date or date-time, found true/false")
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) >= 1e11 else value
        try:
            return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()
        except (OverflowError, OSError, ValueError):  # past year 9999, before year 1, or not a number
            raise InvalidValue(f"{value!r} is out of range as Unix seconds or milliseconds") from None
    text = str(value).strip()
    if _UNIX_TEXT.fullmatch(text):  # as a CSV holds them
        return to_datetime(float(text) if "." in text else int(text))
    # A cell can run to megabytes: only what could be a date is kept in the cache, so memory stays flat.
    iso, problem = (_written_datetime if len(text) <= 64 else _written_datetime.__wrapped__)(text, day_first, zone)
    if problem:
        raise InvalidValue(problem)
    return iso


@lru_cache(maxsize=4096)
def _written_datetime(text: str, day_first: bool, zone: dt.tzinfo | None = None) -> tuple[str, str]:
    """(ISO-8601, "") for a date written as people write them, or ("", why not). Files repeat their
    dates (a day's orders, "n/a"): each is worked out once, as reading one costs 5-10 µs."""
    try:
        parsed, date_only = from_written(text, day_first)
    except ValueError:
        return "", ("expected a date or date-time (ISO-8601, a common format, or Unix seconds or"
                    f" milliseconds), found {text!r}{date_hint(text, day_first) or no_value_hint(text)}")
    # A date stays a date, however it was written: 5/1/2024 and 05/01/2024 alike.
    if date_only:
        return parsed.date().isoformat(), ""
    return (parsed.replace(tzinfo=zone) if zone and parsed.tzinfo is None else parsed).isoformat(), ""


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "STRING": to_string,
    "GOOGLE_PRODUCT_CATEGORY": to_string,
    "MULTI_STRING": to_multi_string,
    "NUMBER": to_number,
    "BOOLEAN": to_boolean,
    "DATETIME": to_datetime,
}


# -- fast column converters: same result as the careful ones, None for a blank, raise otherwise --
_BOOLEAN_WORDS = {w: True for w in TRUE_WORDS} | {w: False for w in FALSE_WORDS}
_BOOLEAN_WORDS |= {w.upper(): v for w, v in _BOOLEAN_WORDS.items()} | {w.title(): v for w, v in _BOOLEAN_WORDS.items()}
_BOOLEAN_WORDS[""] = None
_INT63 = 2.0 ** 63  # a column's numbers whose sizes sum below it need no closer look
_MULTI_NEEDS_WORK = re.compile(r"\s,|,\s|,,|^,|,$")
_from_iso = dt.datetime.fromisoformat


def to_key(value: Any) -> str:
    """A STRING identifier or unique key: text, and none a spreadsheet or pandas mangled (``key_hint``)."""
    text = to_string(value)
    if hint := key_hint(text):
        raise InvalidValue(f"expected an id, found {text!r}{hint}")
    return text


def _key_column(column: list[Any]) -> list[str | None]:
    return _string_column(column, key=True)


def _string_column(column: list[Any], key: bool = False) -> list[str | None]:
    values = list(map(str.strip, column))  # TypeError for anything but text
    joined = "".join(values)
    if not joined.isascii():  # a zero-width character may be around a value: isascii() looks at no character
        values = list(map(trimmed, values))
    # A value ``text_hint`` refuses holds # or + (#N/A, 1.23457E+11), a key ``key_hint`` refuses ".0" (1001.0).
    # Looking for one character costs a tenth of looking for two: ".0" is looked for only where there is a ".".
    if ("#" in joined or "+" in joined or (key and "." in joined and ".0" in joined)) \
            and any(map(key_hint if key else text_hint, filter(None, values))):
        raise ValueError("text a spreadsheet or pandas mangled")  # the careful converter says how
    return [value or None for value in values] if "" in values else values


def _fast_multi_string(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    if ("," in text and _MULTI_NEEDS_WORK.search(text)) or text[0] in "[{":
        return to_multi_string(text)
    return text


def _multi_string_column(column: list[Any]) -> list[str | None]:
    # Joined, the column's items split apart in one call: when none is empty or padded, every
    # value is already as the careful converter would leave it. About a third of the cost of
    # looking at each value.
    values = list(map(str.strip, column))  # TypeError for anything but text
    joined = ",".join(filter(None, values))
    items = joined.split(",")
    if not all(items) or list(map(str.strip, items)) != items or "[" in joined or "{" in joined:
        return list(map(_fast_multi_string, column))  # some values need work: each on its own
    return [value or None for value in values] if "" in values else values


def _fast_number(value: str) -> int | float | None:
    if type(value) is int and value in ORJSON_INTEGERS:
        return value
    if value.isdecimal() and len(value) < 19:  # within 64 bits; longer ones go to the careful converter
        return int(value)
    if "." in value and "_" not in value:
        number = float(value)
        if number - number == 0:  # finite
            return number
    elif not value:
        return None
    raise ValueError(value)


def _number_column(column: list[Any]) -> list[int | float | None]:
    # int() and float() take the text as the careful converter does once it has stripped it.
    try:
        numbers = [float(value) if "." in value else int(value) for value in column]
        # Their sizes sum below 2**63 (a float compare, exact enough at that size): no inf, no nan, no
        # integer past 64 bits. One pass; a column of larger numbers is looked at closer, and so is
        # one with an underscore, which int() and float() take as a digit separator.
        if math.fsum(map(abs, numbers)) < _INT63 and "_" not in "".join(column):
            return numbers
    except (ValueError, TypeError, OverflowError):  # a blank, an exponent, a JSON number, a huge integer
        pass
    return list(map(_fast_number, column))  # each on its own


def _fast_datetime(value: str, day_first: bool = False, zone: dt.tzinfo | None = None) -> str | None:
    # A canonical "YYYY-MM-DD[ T]HH:MM:SS" that parses needs only its T; isoformat() costs 4x more.
    if len(value) == 19 and value[4] == "-" and value[7] == "-" and value[13] == ":" and value[16] == ":" \
            and (value[10] == " " or value[10] == "T"):
        _from_iso(value)  # checks the date is real; this shape parses to a naive whole second
        iso = value if value[10] == "T" else f"{value[:10]}T{value[11:]}"
        return iso if zone is None else iso + _offset_at(iso, zone)
    if not value:
        return None
    return to_datetime(value, day_first, zone)


def _offset_at(time: str, zone: dt.tzinfo) -> str:
    """The offset ``zone`` has at a local time (``2024-05-01T10:15:00``), as ISO-8601 writes it (``-04:00``):
    its day's, looked up once a day, or on the days summer time begins or ends, its minute's."""
    return _day_offset(time[:10], zone) or _from_iso(time[:16]).replace(tzinfo=zone).isoformat()[19:]


@lru_cache(maxsize=4096)
def _day_offset(date: str, zone: dt.tzinfo) -> str:
    """The offset ``zone`` has all day on ``date``, or "" when it changes that day. (Offsets change on a
    minute, at most once a day: the same at the first minute and the last, the same all day.)"""
    first, last = (_from_iso(f"{date}T{at}").replace(tzinfo=zone).isoformat()[19:] for at in ("00:00", "23:59"))
    return first if first == last else ""


# Digits to 0 and the date-time separator T to a space: every usual value then reads as the shape below.
_DATETIME_SHAPE = bytes.maketrans(b"0123456789T", b"0000000000 ")
_USUAL_DATETIME = b"0000-00-00 00:00:00\n"


def _datetime_column(column: list[Any], day_first: bool = False, zone: dt.tzinfo | None = None) -> list[str | None]:
    # A column of "YYYY-MM-DD[ T]HH:MM:SS" values is checked in one pass over its joined text, and
    # the dates are checked real by fromisoformat; about a quarter of the cost of each value on its own.
    joined = "\n".join(column)  # TypeError for anything but text
    if not column or joined.encode().translate(_DATETIME_SHAPE) != (_USUAL_DATETIME * len(column))[:-1]:
        # other forms or blanks: each on its own
        return list(map(_fast_datetime, column, repeat(day_first, len(column)), repeat(zone, len(column))))
    list(map(_from_iso, column))  # ValueError for a date or time that does not exist
    iso = joined.replace(" ", "T").split("\n")  # the shape puts a space nowhere but between date and time
    if zone is None:
        return iso
    return [time + _offset_at(time, zone) for time in iso]  # the offset moves with summer time


def _boolean_column(column: list[Any]) -> list[bool | None]:
    return list(map(_BOOLEAN_WORDS.__getitem__, column))  # KeyError for JSON true/false too: those go the careful way


# Each takes a whole column and raises when a value needs the careful converter.
COLUMN_CONVERTERS: dict[str, Callable[[list[Any]], list[Any]]] = {
    "STRING": _string_column,
    "GOOGLE_PRODUCT_CATEGORY": _string_column,
    "MULTI_STRING": _multi_string_column,
    "NUMBER": _number_column,
    "BOOLEAN": _boolean_column,
    "DATETIME": _datetime_column,
}
_BAD = object()  # a value the careful converter refused


class RowConverter:
    """Converts records for one schema. ``unknown_columns``: ``reject`` the row or ``drop`` the column.
    ``day_first``: dates written with slashes have their day first (DATE_ORDER=day-first). ``zone``:
    where times written without an offset were (TIME_ZONE)."""

    def __init__(self, schema: Schema, unknown_columns: str = "reject", day_first: bool = False,
                 zone: dt.tzinfo | None = None) -> None:
        self.schema = schema
        self.drop_unknown = unknown_columns == "drop"
        converters, columns = CONVERTERS, COLUMN_CONVERTERS
        if day_first or zone:
            converters = {**CONVERTERS, "DATETIME": partial(to_datetime, day_first=day_first, zone=zone)}
            columns = {**COLUMN_CONVERTERS, "DATETIME": partial(_datetime_column, day_first=day_first, zone=zone)}
        keys = {name for name, f in schema.fields.items() if (f.identifier or f.unique_key) and f.data_type == "STRING"}
        self._converters = {name: to_key if name in keys else converters.get(f.data_type, to_string)
                            for name, f in schema.fields.items()}
        self._columns = {name: _key_column if name in keys else columns.get(f.data_type, _string_column)
                         for name, f in schema.fields.items()}
        self._must_have = [f.name for f in schema.fields.values() if f.must_have]
        self._not_a_field_reasons: dict[str, str] = {}
        self.read_as: dict[str, str] = {}  # names read as a field written otherwise, each with its field
        self.left_out: dict[str, str] = {}  # with unknown columns dropped: the names left out, each with why
        self._spelled_alike = SpelledAlike(schema.fields)

    def aliases(self, names: Iterable[str]) -> dict[str, str]:
        """The names among ``names`` that are a field written otherwise (``CUSTOMER_ID``, as warehouses
        export headers, ``Customer ID`` as BI tools show them, ``customerId`` as APIs write JSON; see
        ``names.spellings``), each with its field. Not when two fields are written alike, nor when the
        field is also named as it is, or written otherwise twice: then nothing says which holds it."""
        names = set(names)
        found = {name: field for name in names - self._converters.keys()
                 if (field := self._spelled_alike.get(name)) is not None and field not in names}
        taken = Counter(found.values())
        return {name: field for name, field in found.items() if taken[field] == 1}

    def unknown(self, names: Iterable[str]) -> list[str]:
        """The names among ``names`` that are no field of the schema, however written; none when unknown
        columns are dropped."""
        if self.drop_unknown:
            return []
        names = list(names)
        aliases = self.aliases(names)
        return [name for name in names if name not in self._converters and name not in aliases]

    def column_problems(self, columns: Iterable[str]) -> list[str]:
        """Why no record with these columns, a CSV header's, can be sent, if none can: columns the
        schema does not have (unless they are dropped), and fields it requires that no column holds."""
        columns = list(columns)
        unknown = self.unknown(columns)
        problems = [self._not_a_field(name) for name in unknown]
        if unknown:
            problems[-1] += "; UnknownColumns=drop would leave out the columns the schema does not have"
        aliases = self.aliases(columns)
        held = {aliases.get(name, name) for name in columns}
        problems += [f"{name}: required, but no column holds it" for name in self._must_have if name not in held]
        return problems

    def convert(self, record: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
        """The row to send, or None and every reason it cannot be sent."""
        row: dict[str, Any] = {}
        reasons: list[str] = []
        converters = self._converters
        aliases = {} if converters.keys() >= record.keys() else self._read_as(record)
        for name, value in record.items():
            name = aliases.get(name, name)
            convert = converters.get(name)
            if convert is None:
                if self.drop_unknown:
                    self._leave_out((name,))
                else:
                    reasons.append(self._not_a_field(name))
                continue
            if type(value) is str:
                value = trimmed(value)
                if not value:
                    continue  # absent: Monetate stores null
            elif value is None:
                continue
            try:
                row[name] = convert(value)
            except InvalidValue as exc:
                reasons.append(f"{name}: {exc}")
        for name in self._must_have:
            if name not in row and not any(r.startswith(f"{name}:") for r in reasons):
                reasons.append(f"{name}: required but empty or missing")
        return (None, reasons) if reasons else (row, [])

    def convert_many(self, records: list[dict[str, Any]]
                     ) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, list[str]]]]:
        """(index, row) for the records that convert and (index, reasons) for the others, as
        ``convert`` would give them one by one."""
        names = set().union(*records)
        if not names <= self._converters.keys() and (aliases := self._read_as(names)):  # rare: renamed per record
            records = [{aliases.get(name, name): value for name, value in record.items()} for record in records]
            names = {aliases.get(name, name) for name in names}
        suspect: set[int] = set()  # records with a refused value, a blank must-have or an unknown column
        unknown = names - self._converters.keys()
        if unknown and self.drop_unknown:
            self._leave_out(unknown)
        elif unknown:
            suspect.update(i for i, record in enumerate(records) if not unknown.isdisjoint(record))

        def column_of(name: str) -> list[Any]:
            try:
                return list(map(itemgetter(name), records))
            except KeyError:  # some records lack the field: it is blank there
                return [record.get(name, "") for record in records]

        return self._convert_columns(len(records), names, column_of, suspect, records.__getitem__)

    def convert_rows(self, columns: list[str], rows: list[list[str]]
                     ) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, list[str]]]]:
        """As ``convert_many``, for a CSV's rows: lists of values under ``columns``. Taking the
        columns out by one transposition costs half of taking them out of dicts."""
        as_record = dict_maker(tuple(columns))  # as read, for convert() and the rejected rows
        aliases = self._read_as(columns) if rows else {}
        columns = [aliases.get(name, name) for name in columns]
        names = set(columns) if rows else set()
        by_name = dict(zip(columns, zip(*rows, strict=True), strict=False))  # no rows: no columns
        unknown = names - self._converters.keys()
        if unknown and self.drop_unknown:
            self._leave_out(unknown)
        suspect = set(range(len(rows))) if unknown and not self.drop_unknown else set()
        return self._convert_columns(len(rows), names, by_name.__getitem__, suspect, lambda i: as_record(*rows[i]))

    def _convert_columns(self, count: int, names: set[str], column_of: Callable[[str], Any], suspect: set[int],
                         record_of: Callable[[int], dict[str, Any]]
                         ) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, list[str]]]]:
        """The rows of ``count`` records from their columns (``column_of(name)``, for the ``names`` they
        have); records in ``suspect``, or with a value the fast converters refuse, go through ``convert``."""
        columns: list[str] = []
        values: list[list[Any]] = []
        with_blanks: set[str] = set()
        for name in (n for n in self._converters if n in names):
            column = column_of(name)
            try:
                converted = self._columns[name](column)
            except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
                converted = [self._careful(name, value) for value in column]
                suspect.update(i for i, value in enumerate(converted) if value is _BAD)
            columns.append(name)
            values.append(converted)
            if None in converted:
                with_blanks.add(name)
        for name in self._must_have:
            if name not in names:
                suspect.update(range(count))
            elif name in with_blanks:
                suspect.update(i for i, value in enumerate(values[columns.index(name)]) if value is None)
        # Columns are equally long by construction, so zip needs no strict check.
        if not columns:
            rows = [{} for _ in range(count)]
        elif with_blanks:  # absent values are left out of the row, as convert() does
            rows = [{n: v for n, v in zip(columns, row, strict=False) if v is not None}
                    for row in zip(*values, strict=False)]
        else:
            rows = list(map(dict_maker(tuple(columns)), *values))  # a quarter of the cost was making rows
        if not suspect:
            return list(enumerate(rows)), []
        good, bad = [], []
        for i, row in enumerate(rows):
            if i in suspect:
                careful_row, reasons = self.convert(record_of(i))
                if reasons:
                    bad.append((i, reasons))
                    continue
                row = careful_row  # type: ignore[assignment]
            good.append((i, row))
        return good, bad

    def _read_as(self, names: Iterable[str]) -> dict[str, str]:
        """``aliases``, kept in ``read_as`` as names the records are read with."""
        aliases = self.aliases(names)
        self.read_as.update(aliases)
        return aliases

    def _leave_out(self, names: Iterable[str]) -> None:
        """Names not sent, as unknown columns are dropped, kept in ``left_out`` with why."""
        for name in names:
            if name not in self.left_out:
                self.left_out[name] = self._not_a_field(name).removeprefix(f"{name}: ")

    def _not_a_field(self, name: str) -> str:
        reason = self._not_a_field_reasons.get(name)
        if reason is None:  # a file repeats its wrong names: the nearest field is looked for once each
            reason = f"{name}: not a field of schema {self.schema.name}{did_you_mean(name, self._converters)}"
            self._not_a_field_reasons[name] = reason
        return reason

    def _careful(self, name: str, value: Any) -> Any:
        if type(value) is str:
            value = trimmed(value)
        if value is None or value == "":
            return None
        try:
            return self._converters[name](value)
        except InvalidValue:
            return _BAD
