"""Streaming record readers: CSV with a header, a JSON array, JSON Lines; gzip or not.

This module tells what a file is (by its name, and by its first bytes: gzip, a workbook, JSON named
.csv, UTF-16) and hands it to the reader of its kind: ``martech.csv_records`` and
``martech.json_records``, over the numbered lines or text of ``martech.text_lines``.

A reader takes a binary stream (an S3 object body, a file) and yields one
:class:`Record` at a time, so memory stays flat however large the file. Each record
carries the line it starts on; a record that cannot be read carries the reason, and as
data what there is of it (its text as written, or the JSON value that is not an object),
and reading goes on with the next one.

Example::

    for record in read_records(stream, "monetate/customers/2024-05-01.csv.gz"):
        if record.error:
            reject(record.line, record.error)
        else:
            use(record.data)
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
from typing import IO, Any
from collections.abc import Iterator

import orjson

from martech.csv_records import CsvOptions, csv_records
from martech.json_records import HOLDER_OPENING, json_array_records, json_lines_records
from martech.records import Record, UnreadableFile, lines_between
from martech.text_lines import BOM, CHUNK, Lines, Readable, Utf16AsUtf8, Utf8Text

# What those who read records take from here with them.
__all__ = ["CSV", "JSON_ARRAY", "JSON_LINES", "CsvOptions", "Record", "UnreadableFile", "detect_format", "is_csv",
           "lines_between", "read_records"]

CSV, JSON_ARRAY, JSON_LINES = "csv", "json", "jsonl"
# .txt is delimited text as spreadsheets export it: Excel's "Text (Tab delimited)" and "Unicode Text".
_EXTENSIONS = {".csv": CSV, ".tsv": CSV, ".txt": CSV, ".json": JSON_ARRAY, ".jsonl": JSON_LINES, ".ndjson": JSON_LINES}
# The delimiters a CSV's header is looked at for, the first it holds winning; none found, the first.
# Spreadsheets set to some locales write semicolons; .tsv is tab-separated whatever its header holds.
_DELIMITERS = {".csv": (",", ";", "\t", "|"), ".txt": ("\t", ",", ";", "|"), ".tsv": ("\t",)}
_GZIP_MAGIC = b"\x1f\x8b"
_ASCII = bytes(range(128))
_ASCII_TEXT = _ASCII.decode("ascii")
_JSON_START = re.compile(rb'\{|\[\s*[{\["\]]')  # an object, or an array of objects, arrays or text: not [CustomerID]
_SAVE_AS = "save or export it as CSV (UTF-8), JSON Lines or a JSON array, gzipped or not"
# Files people drop that are not text: told by their name, or by their first bytes whatever the name.
_NOT_TEXT_NAMES = {
    ".xlsx": "an Excel workbook", ".xlsm": "an Excel workbook", ".xls": "an Excel workbook", ".ods": "a spreadsheet",
    ".parquet": "a Parquet file", ".avro": "an Avro file", ".orc": "an ORC file", ".zip": "a zip archive",
    ".bz2": "a bzip2-compressed file", ".zst": "a zstd-compressed file", ".xz": "an xz-compressed file",
}
_NOT_TEXT_STARTS = [(re.compile(start), what) for start, what in (
    (rb"PK\x03\x04", "a zip archive or an Excel workbook (.xlsx)"),
    (rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel workbook (.xls)"),
    (rb"PAR1\x15", "a Parquet file"), (rb"Obj\x01", "an Avro file"),
    (rb"BZh[1-9]1AY&SY", "a bzip2-compressed file"), (rb"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (rb"\xfd7zXZ\x00", "an xz-compressed file"),
)]  # each long enough that no text starts so


def detect_format(key: str) -> tuple[str, bool]:
    """(format, gzip) from an object key such as ``a/b/file.jsonl.gz``."""
    name = key.lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[:-3]
    for extension, fmt in _EXTENSIONS.items():
        if name.endswith(extension):
            return fmt, gzipped
    what = next((what for extension, what in _NOT_TEXT_NAMES.items() if name.endswith(extension)), None)
    if what:
        raise UnreadableFile(_not_text(key, what))
    unloaded = _UNLOADED_PART.search(name)  # Redshift's UNLOAD names its files so unless told an extension
    hint = f"; Redshift's UNLOAD names its files {unloaded[0]}: add EXTENSION 'csv' to it (or 'csv.gz', with" \
           " FORMAT CSV HEADER)" if unloaded else ""
    raise UnreadableFile(f"{key}: unknown file type; use .csv, .tsv, .txt, .json, .jsonl or .ndjson, optionally .gz{hint}")


def _not_text(key: str, what: str) -> str:
    return f"{key}: this is {what}, which is not read here; {_SAVE_AS}"


def is_csv(key: str) -> bool:
    """Whether the key names a CSV (``.csv``, ``.tsv`` or ``.txt``, gzipped or not)."""
    return detect_format(key)[0] == CSV


def read_records(stream: IO[bytes], key: str, objects_only: bool = True, fmt: str | None = None,
                 columns: list[str] | None = None, options: CsvOptions = CsvOptions()) -> Iterator[Record]:
    """Records of the file named ``key``; with ``objects_only=False`` JSON scalars are records too
    (a list of primary keys, say). ``fmt`` overrides the format the key's extension names.
    ``columns``: for a CSV, the header's names are put in it and a record's data is then the row's
    list of values, which costs less than a dict; other formats leave it empty. ``options``: how a
    CSV's cells are read."""
    if fmt is None:
        fmt, _ = detect_format(key)
    raw = _maybe_gunzip(stream)
    try:
        _refuse_binary(raw, key)
        text = _as_utf8(raw)
        utf16, raw = text is not raw, text
        if (fmt == JSON_ARRAY and not _json_lines_inside(raw)) or (
                fmt == JSON_LINES and (_array_inside(raw) or _objects_over_lines(raw))):
            yield from json_array_records(Utf8Text(raw), objects_only)
        elif fmt == CSV:
            _refuse_json(raw, key)
            name = key.lower().removesuffix(".gz")
            delimiters = next((found for suffix, found in _DELIMITERS.items() if name.endswith(suffix)), _DELIMITERS[".csv"])
            lines = Lines(raw, of_csv=True, encoding=_csv_encoding(raw, key, options.charset, utf16),
                           mislabelled=f"{key}: its Content-Type names charset {options.charset!r}, but its text is UTF-8:"
                                       " upload it again without the charset (or with charset=utf-8)")
            yield from csv_records(lines, delimiters, columns, options)
        else:  # JSON Lines, and .json files of one object per line, as Spark, BigQuery or Snowflake write them
            yield from json_lines_records(Lines(raw), objects_only)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UnreadableFile(f"{key}: cannot decompress: {exc}") from None
    except UnicodeError as exc:  # from UTF-16 only: UTF-8 is decoded by the readers, line by line
        raise UnreadableFile(f"{key}: starts as UTF-16 text but is not: {exc.reason}") from None


def _maybe_gunzip(stream: IO[bytes]) -> IO[bytes]:
    """Gzip is told by its first bytes, whatever the name says: a file named .gz that some tool
    has already decompressed is read as it is."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(Readable(stream), CHUNK)
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def _refuse_binary(raw: Any, key: str) -> None:
    """A workbook, an archive or a columnar file, whatever its name says (a workbook renamed .csv,
    say), fails at once with what it is, rather than as rows of garbage."""
    start = raw.peek(16)[:16]
    what = next((what for magic, what in _NOT_TEXT_STARTS if magic.match(start)), None)
    if what:
        raise UnreadableFile(_not_text(key, what))


def _start(raw: Any) -> bytes:
    """What a stream holds first, past a BOM and blanks, as far as one chunk: to tell what it is."""
    return raw.peek(CHUNK)[:CHUNK].removeprefix(BOM).lstrip()  # type: ignore[no-any-return]


def _array_inside(raw: Any) -> bool:
    """Whether a JSON Lines file holds one JSON array of objects instead, as a .json export named .jsonl
    does: its first line, past a BOM and blanks, opens an array it does not close (an indented array,
    or a line longer than what was looked at), or is a whole array of objects. A line that is an array
    of anything else is a record of JSON Lines."""
    head = _start(raw)
    if head[:1] != b"[":
        return False
    try:
        first = orjson.loads(head.partition(b"\n")[0])
    except orjson.JSONDecodeError:
        return True
    return bool(first) and all(isinstance(item, dict) for item in first)


def _refuse_json(raw: Any, key: str) -> None:
    """JSON saved under a CSV's name fails at once with what it is, rather than as a header of one
    object's text, under which nothing sensible can be sent. No CSV header starts so."""
    if _JSON_START.match(_start(raw)):
        raise UnreadableFile(f"{key}: this is JSON, not CSV; name it .jsonl (one object per line) or .json (an array)")


def _as_utf8(raw: Any) -> Any:
    """UTF-16 text with its byte order mark (Excel's "Unicode text") is read as the UTF-8 it holds."""
    if raw.peek(2)[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return io.BufferedReader(Utf16AsUtf8(raw), CHUNK)
    return raw


def _csv_encoding(raw: Any, key: str, charset: str | None, utf16: bool) -> str:
    """The codec a CSV's lines are decoded with: UTF-8, or the ``charset`` its Content-Type names when
    no BOM says UTF-8 or UTF-16. Only a charset that writes ASCII as ASCII is read, since lines and
    delimiters are found in the bytes; another (UTF-16 without its BOM, say) fails the file at once."""
    if charset is None or utf16 or raw.peek(3)[:3] == BOM:
        return "utf-8"
    try:
        codec = codecs.lookup(charset).name
        ascii_kept = _ASCII.decode(codec) == _ASCII_TEXT
    except LookupError:  # unknown, or no text encoding (base64, say)
        raise UnreadableFile(f"{key}: its Content-Type names charset {charset!r}, which is not known;"
                             " name another (windows-1252, iso-8859-1) or save the file as UTF-8") from None
    except UnicodeError:
        ascii_kept = False
    if not ascii_kept:
        raise UnreadableFile(f"{key}: its Content-Type names charset {charset!r}, which is not read here;"
                             " save the file as UTF-8 (or UTF-16 with its BOM)")
    # ASCII text is UTF-8 too, and a byte past it then says what it would be in Windows-1252.
    return "utf-8" if codec in ("ascii", "utf-8-sig") else codec


_UNLOADED_PART = re.compile(r"\d{4}_part_\d{2,}$")  # Redshift's UNLOAD: <prefix>0000_part_00



def _objects_over_lines(raw: Any) -> bool:
    """Whether a JSON Lines file holds objects written over several lines each, one after another, as jq
    prints them without -c and json.dump with an indent writes them: its first line opens an object it
    does not close. (A first line that is a whole record gone wrong ends in its closing brace.)"""
    head = _start(raw)
    first_line, newline, _ = head.partition(b"\n")
    if head[:1] != b"{" or not newline or first_line.rstrip().endswith(b"}"):
        return False
    try:
        json.JSONDecoder().raw_decode(first_line.decode("utf-8", "replace"))
    except ValueError:
        return True
    return False  # a whole object, a comma after it, say


def _json_lines_inside(raw: Any) -> bool:
    """Whether a .json file holds one object per line: its first line, past a BOM and blanks, is a
    whole JSON object, and not one holding an array alone (``{"records": [...]}`` on one line).
    (One object written over several lines is not, and fails as a whole.)"""
    head = _start(raw)
    if head[:1] != b"{":
        return False
    first_line, newline, _ = head.partition(b"\n")
    try:
        first = orjson.loads(first_line)
    except orjson.JSONDecodeError:
        # A line longer than what was looked at is JSON Lines, unless it opens an object holding an array.
        return not newline and not HOLDER_OPENING.match(first_line)
    return isinstance(first, dict) and not (len(first) == 1 and isinstance(next(iter(first.values())), list))
