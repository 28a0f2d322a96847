"""A CSV's records: its header checked (a title above it, values where names belong, a column named
twice), then its rows as lists of values or dicts, a row that cannot be read set aside with why."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterator, Mapping
from itertools import chain

from martech.dict_makers import dict_maker
from martech.records import Record, UnreadableFile
from martech.text_lines import LONGEST_RECORD, Lines

# A CSV cell may be as long as a record (Python's csv stops at 128 KiB). Only a cell running over many
# lines can reach it: a longer line is set aside before the csv module sees it.
csv.field_size_limit(LONGEST_RECORD)
# Characters that show as nothing, which a header copied from a web page or a document may hold around a name.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_BLANK_LINE = " \t\r\n,;|\"" + _INVISIBLE  # what a line holding no value may hold: spaces, delimiters, empty quotes
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_LINES_LOOKED_AT = 50  # for a title or comments above a CSV header
# Excel's first line naming the delimiter (sep=;), which some exports add so that Excel opens them right.
_SEPARATOR_HINT = re.compile(r"sep=([^\r\n\"])\r?\n?")


@dataclass(frozen=True)
class CsvOptions:
    """How a CSV's cells are read. ``nulls``: cells that mean no value, read as empty (``NULL`` and ``\\N``,
    as SQL Server and Hive export them; none by default, since a cell may hold such text as its value).
    ``unnamed_values``: a value in a column the header does not name sets its row aside (``reject``) or
    is left out (``drop``). ``charset``: the encoding the file's Content-Type names, when not UTF-8
    (``windows-1252``, as a legacy export writes); a BOM still says UTF-8 or UTF-16, as browsers take it."""

    nulls: frozenset[str] = frozenset()
    unnamed_values: str = "reject"
    charset: str | None = None


def csv_records(lines: Lines, delimiters: tuple[str, ...], columns: list[str] | None = None,
                options: CsvOptions = CsvOptions()) -> Iterator[Record]:
    """``delimiters``: the first of them the header holds separates the columns; none, the first.
    A column the header does not name (a trailing delimiter, pandas' index) is no field: it is left
    out of the records, and a row with a value in it is set aside or has the value left out too (see
    ``CsvOptions``). The header is read at the call, the rows as they are taken:
    returning their generator, rather than yielding from it, spares a row a generator's hand-on."""
    chunks = iter(lines)
    first = next(chunks, [])
    source = chain.from_iterable(chain([first], chunks))
    undecodable = lines.undecodable
    hint = _SEPARATOR_HINT.fullmatch(first[0]) if first else None
    # The header is the first line that is not blank: an export may begin with empty lines, or with
    # empty spreadsheet rows saved as delimiters alone.
    header_line = next((line for line in first[bool(hint):] if line.strip(_BLANK_LINE)), "")
    delimiter = hint[1] if hint else next((d for d in delimiters if d in header_line), delimiters[0])
    if not hint and (above := _title_above_header(first, delimiters)) is not None:
        raise UnreadableFile(above)
    # A header written "a, b, c", as people write CSV by hand: a space after each delimiter is none of
    # the value, and a quoted value after it ("shoes, bags") is quoted, not three cells.
    spaced = 0 < header_line.count(delimiter) == header_line.count(delimiter + " ")
    reader = csv.reader(source, strict=True, delimiter=delimiter, skipinitialspace=spaced)
    try:
        if hint:
            next(reader)
        while not any(map(_header_name, header := next(reader))):  # blank lines above the header
            pass
    except StopIteration:  # no header, so no records
        return iter(())
    except csv.Error as exc:
        why = "a quote opened in it is never closed" if "unexpected end of data" in str(exc) else str(exc)
        raise UnreadableFile(f"the CSV header cannot be read: {why}") from None
    if undecodable and min(undecodable) <= reader.line_num:
        raise UnreadableFile(f"the CSV header is {undecodable[min(undecodable)]}")
    as_written, header = header, list(map(_header_name, header))
    if any("\x00" in name for name in header):
        raise UnreadableFile(f"the CSV header (line {reader.line_num}) holds NUL characters: the file is probably UTF-16"
                             " without a byte order mark; save it as UTF-8")
    if len(header) == 1 and header_line.lstrip(" \ufeff").startswith('"') and \
            (inside := next((d for d in _DELIMITER_NAMES if d in header[0]), None)):
        raise UnreadableFile(f"the CSV header (line {reader.line_num}) is one quoted cell holding {_DELIMITER_NAMES[inside]}s"
                             f" ({header[0][:60]!r}): each line was saved as one cell, as a spreadsheet saves CSV text"
                             " pasted into one column; split it into columns first (Excel: Data > Text to Columns)")
    if values := _values_not_names(header):
        raise UnreadableFile(f"the CSV header (line {reader.line_num}) holds values, not column names ({values}): the"
                             " file's first line must name its columns (unloads leave it out unless told: HEADER = TRUE"
                             " in Snowflake's COPY INTO, HEADER in Redshift's UNLOAD and in COPY ... TO with psql)")
    named = [name for name in header if name]
    if len(set(named)) != len(named):
        raise UnreadableFile(f"the CSV header (line {reader.line_num}) must name every column once: {_repeats(header)}")
    if columns is not None:
        columns[:] = named
    as_dict = dict_maker(tuple(named)) if columns is None else None
    if len(named) == len(header) and not options.nulls:
        return _csv_rows(reader, lines, source, as_written, as_dict)
    rows = _csv_rows(reader, lines, source, as_written, None)
    return _shaped(_blanked(rows, options.nulls) if options.nulls else rows, header, as_dict,
                   options.unnamed_values == "drop")


# What no column is named, and rows hold: a number with a fraction or a sign, a date, an e-mail address. (A
# whole number can name a column: a year, in a pivoted export.)
_A_VALUE = re.compile(r"[-+]?\d*\.\d+|[-+]\d+"  # 12.5, -3
                      r"|\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+Z?)?|\d{1,2}/\d{1,2}/\d{2,4}(?:,? [\d:]+(?: ?[AaPp][Mm])?)?"  # dates
                      r"|[^@\s]+@[^@\s]+\.\w+")  # e-mail addresses


def _values_not_names(header: list[str]) -> str | None:
    """The cells of a CSV's first line that are values rather than names (quoted, two at most), when it
    holds any: a file written without its header, whose first row would be taken for one."""
    values = [name for name in header if _A_VALUE.fullmatch(name)]
    return ", ".join(map(repr, values[:2])) if values else None


_SHAPE = re.compile(r"[0-9]+|[^\W0-9_]+")


def written_alike(name: str, value: Any) -> bool:
    """Whether a CSV column's name is written as its value in the first row is (``C-1`` over ``C-2``, ``1``
    over ``2``): a row of values, where the header should be, in a file written without one. A name
    without a digit or an @ is a name (``username`` over ``alice``)."""
    if not isinstance(value, str) or not any(c.isdigit() or c == "@" for c in name):
        return False

    def shape(text: str) -> str:
        return _SHAPE.sub(lambda run: "9" if run[0][0].isdigit() else "a", text.strip())
    return shape(name) == shape(value)


def header_of_values(row: Mapping[str, Any], line: int) -> str | None:
    """Why a CSV's header is a row of values, judged by its first row (``row``: name -> value, on ``line``):
    a column's name written as the value under it is. None when no name is."""
    name = next((name for name, value in row.items() if written_alike(name, value)), None)
    if name is None:
        return None
    return (f"the CSV header holds values, not column names ({name!r} is written as {row[name]!r} under it, on line"
            f" {line}): the file's first line must name its columns")


def _cells(line: str, delimiters: tuple[str, ...]) -> int:
    """How many cells ``line`` holds, split by the first of ``delimiters`` it has that splits it."""
    return max((len(next(csv.reader([line], delimiter=d), [])) for d in delimiters if d in line), default=1)


def _title_above_header(first: list[str], delimiters: tuple[str, ...]) -> str | None:
    """Why the file's first lines are no header, when they are a title or comments above it, as BI
    tools and spreadsheets export them ("Customer report May 2024", "# Start date: ..."): a first line
    of one cell with a space in it or a # before it, lines of one cell, then a line of several and the
    line after it as many. Else None. Its rows would otherwise each be set aside for holding more
    columns than a header of one."""
    lines = [(number, line) for number, line in enumerate(first[:_LINES_LOOKED_AT], start=1) if line.strip(_BLANK_LINE)]
    if not lines or not (" " in lines[0][1].strip() or lines[0][1].startswith("#")):  # a name, as a header of one has
        return None
    widths = [_cells(line, delimiters) for _, line in lines]
    wide = next((i for i, width in enumerate(widths) if width > 1), None)
    if not wide or wide + 1 >= len(widths) or widths[wide + 1] != widths[wide]:  # a header, and a row under it
        return None
    number, line = lines[wide]
    return (f"line {number} looks like the header ({line.strip()[:60]!r}), and the {wide} line(s) with text above it"
            f" hold one column each, the first {lines[0][1].strip()[:60]!r}: a title or comments above the header?"
            f" The header must be the file's first line: remove the lines above it")


def trimmed(text: str) -> str:
    """``text`` without the spaces, or zero-width characters, around it: a header's name, or a value
    copied from a web page or a document (``C-1\u200b`` is the key C-1)."""
    text = text.strip()
    return text if text.isascii() else text.strip(_INVISIBLE).strip()  # isascii() looks at no character


def _header_name(name: str) -> str:
    """A header cell as the column's name: without the spaces, or zero-width characters, around it."""
    return trimmed(name)


def _csv_rows(reader: Any, lines: Lines, source: Iterator[str], header: list[str],
              as_dict: Callable[..., dict[str, str]] | None) -> Iterator[Record]:
    """The records after the header: rows of its width, made dicts by ``as_dict`` if given. The
    header found again (files joined with their headers) is no record, as a blank line is not."""
    undecodable, delimiter, width = lines.undecodable, reader.dialect.delimiter, len(header)
    spaced = reader.dialect.skipinitialspace
    base = 0  # lines read before ``reader`` began: a line's number is base + reader.line_num
    line = reader.line_num + 1
    while True:
        lines.keep_from = line
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = f"malformed CSV: {exc}" if "field limit" not in str(exc) else \
                f"malformed CSV: a cell runs over {LONGEST_RECORD >> 20} MiB, larger than any record can be sent"
            too_wide = False
        else:
            # row[0] >= "!": a first cell that begins past the spaces, the common case, settles it without a call.
            if len(row) == width and (row[0] >= "!" or "".join(row).strip()) and not undecodable and row != header:
                yield Record(line, as_dict(*row) if as_dict else row)
                line = base + reader.line_num + 1
                continue
            # A blank line (spaces alone, too), delimiters alone as spreadsheets save an empty row, the header again.
            if not "".join(row).strip() or row == header:
                line = base + reader.line_num + 1
                continue
            problem = None if len(row) == width else f"expected {width} columns as in the header, found {len(row)}"
            too_wide = len(row) > width
        last = base + reader.line_num
        if too_wide and last == line:
            # One line with too many cells: 1,234 or Smith, John written without quotes, most likely.
            example = f' ("Smith{delimiter} John")' if delimiter in ",;|" else ""
            problem += (f"; a value holding a {_DELIMITER_NAMES.get(delimiter, repr(delimiter))} is written in"
                        f" double quotes{example}")
        elif problem and last > line:
            # A record running over several lines that is wrong is most likely a quote left open,
            # which swallows the rows after it: they are read again, as rows of their own.
            again = f"line {last} is read again as a row of its own" if last == line + 1 else \
                f"lines {line + 1}-{last} are read again as rows of their own"
            problem += (f" in a record that runs on to line {last}; a quote opened on this line is probably never"
                        f" closed, so {again}")
            reader = csv.reader(chain(lines.between(line + 1, last), source), strict=True, delimiter=delimiter,
                                skipinitialspace=spaced)
            base = last = line  # this record is now its first line alone
        if undecodable:
            reasons = [f"line {n}: {undecodable.pop(n)}" if n != line else undecodable.pop(n)
                       for n in range(line, last + 1) if n in undecodable]
            problem = "; ".join(filter(None, [problem, *reasons]))
        if problem:
            yield Record(line, "".join(lines.between(line, last)).rstrip("\r\n"), problem)  # its text as written
        else:
            yield Record(line, as_dict(*row) if as_dict else row)
        line = base + reader.line_num + 1


def _blanked(records: Iterator[Record], nulls: frozenset[str]) -> Iterator[Record]:
    """Rows with the cells that mean no value (``CsvOptions.nulls``) empty."""
    for record in records:
        if record.error is None:
            record.data = ["" if value in nulls else value for value in record.data]
        yield record


def _shaped(records: Iterator[Record], header: list[str], as_dict: Callable[..., dict[str, str]] | None,
            drop_values: bool) -> Iterator[Record]:
    """Rows of all the header's columns as records of its named ones (see ``csv_records``)."""
    named = [i for i, name in enumerate(header) if name]
    unnamed = [i for i, name in enumerate(header) if not name]
    for record in records:
        if record.error is None:
            row = record.data
            filled = [i + 1 for i in unnamed if row[i].strip()]
            if filled and not drop_values:
                which = f"column {filled[0]} has" if len(filled) == 1 else \
                    f"columns {', '.join(map(str, filled[:-1]))} and {filled[-1]} have"
                record.error = (f"{which} no name in the header but a value here; name the column, or leave its cells"
                                " empty (pandas writes its index so unless told to_csv(index=False))")
                record.data = {name or f"column {i + 1}": value
                               for i, (name, value) in enumerate(zip(header, row, strict=True))}
            else:
                values = [row[i] for i in named]
                record.data = as_dict(*values) if as_dict else values
        yield record


def _repeats(header: list[str]) -> str:
    columns: dict[str, list[int]] = {}
    for number, name in enumerate(header, start=1):
        columns.setdefault(name, []).append(number)
    return "; ".join(f"{name} is columns {', '.join(map(str, numbers[:-1]))} and {numbers[-1]}"
                     for name, numbers in columns.items() if name and len(numbers) > 1)
