"""Streaming record readers: CSV with a header, a JSON array, JSON Lines; gzip or not.

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
import csv
import gzip
import io
import json
import re
from collections import deque
from dataclasses import dataclass
from typing import IO, Any
from collections.abc import Callable, Iterator, Mapping
from itertools import chain

import orjson

from martech.dict_makers import dict_maker
from martech.strict_json import ItemDecoder, json_error, json_kind

CSV, JSON_ARRAY, JSON_LINES = "csv", "json", "jsonl"
# .txt is delimited text as spreadsheets export it: Excel's "Text (Tab delimited)" and "Unicode Text".
_EXTENSIONS = {".csv": CSV, ".tsv": CSV, ".txt": CSV, ".json": JSON_ARRAY, ".jsonl": JSON_LINES, ".ndjson": JSON_LINES}
# The delimiters a CSV's header is looked at for, the first it holds winning; none found, the first.
# Spreadsheets set to some locales write semicolons; .tsv is tab-separated whatever its header holds.
_DELIMITERS = {".csv": (",", ";", "\t", "|"), ".txt": ("\t", ",", ";", "|"), ".tsv": ("\t",)}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16
# No record can be sent larger than this (a vendor's whole post is at most a few MB): a line or a JSON
# array item past it is set aside or fails the file, instead of filling the memory.
_LONGEST_RECORD = 8 << 20
_LOOKED_PAST_A_BAD_ITEM = 1 << 20  # text read on past a JSON array's item that is not JSON, to find where it ends
_SHOWN_OF_TOO_LONG = 200  # bytes of such a line kept, to say which it was
# A CSV cell may be as long as a record (Python's csv stops at 128 KiB). Only a cell running over many
# lines can reach it: a longer line is set aside before the csv module sees it.
csv.field_size_limit(_LONGEST_RECORD)
_BOM = b"\xef\xbb\xbf"
_ASCII = bytes(range(128))
_ASCII_TEXT = _ASCII.decode("ascii")
_BOM_AT_LINE_START = re.compile("(^|[\r\n])\ufeff")
# Characters that show as nothing, which a header copied from a web page or a document may hold around a name.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"
_BLANK_LINE = " \t\r\n,;|\"" + _INVISIBLE  # what a line holding no value may hold: spaces, delimiters, empty quotes
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_LINES_LOOKED_AT = 50  # for a title or comments above a CSV header
# Excel's first line naming the delimiter (sep=;), which some exports add so that Excel opens them right.
_SEPARATOR_HINT = re.compile(r"sep=([^\r\n\"])\r?\n?")
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


class UnreadableFile(Exception):
    """The file as a whole cannot be read (unknown format, broken gzip, not UTF-8, no header)."""


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


class ItemLine(int):
    """The line a JSON array's item begins on, knowing the item's place in the array (``index``, from
    0, as ``jq '.[5]'`` counts): ``json.dump`` and pandas write a whole array on line 1. It is the line
    wherever a line is used; the rejected rows show the index beside it."""

    index: int  # set once made: ItemLine(line), then .index, costs half of a __new__ doing both


def lines_between(first: int, last: int) -> str:
    """Where a batch of records lies, for an error: ``lines 3-502``, or for a JSON array's items also
    their places, which tell more when the array is on one line."""
    if isinstance(first, ItemLine) and isinstance(last, ItemLine):
        lines = f"line {first}" if first == last else f"lines {first}-{last}"
        return f"items {first.index}-{last.index} of the array ({lines})"
    return f"lines {first}-{last}"


@dataclass(slots=True)  # not frozen: a frozen dataclass costs three times as much to make, per record
class Record:
    line: int
    data: Any = None  # an object, or with objects_only=False any JSON value; with an error, what was read
    error: str | None = None


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
            yield from _json_array_records(_Text(raw), objects_only)
        elif fmt == CSV:
            _refuse_json(raw, key)
            name = key.lower().removesuffix(".gz")
            delimiters = next((found for suffix, found in _DELIMITERS.items() if name.endswith(suffix)), _DELIMITERS[".csv"])
            lines = _Lines(raw, of_csv=True, encoding=_csv_encoding(raw, key, options.charset, utf16),
                           mislabelled=f"{key}: its Content-Type names charset {options.charset!r}, but its text is UTF-8:"
                                       " upload it again without the charset (or with charset=utf-8)")
            yield from _csv_records(lines, delimiters, columns, options)
        else:  # JSON Lines, and .json files of one object per line, as Spark, BigQuery or Snowflake write them
            yield from _json_lines_records(_Lines(raw), objects_only)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UnreadableFile(f"{key}: cannot decompress: {exc}") from None
    except UnicodeError as exc:  # from UTF-16 only: UTF-8 is decoded by the readers, line by line
        raise UnreadableFile(f"{key}: starts as UTF-16 text but is not: {exc.reason}") from None


def _maybe_gunzip(stream: IO[bytes]) -> IO[bytes]:
    """Gzip is told by its first bytes, whatever the name says: a file named .gz that some tool
    has already decompressed is read as it is."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(_Readable(stream), _CHUNK)
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
    return raw.peek(_CHUNK)[:_CHUNK].removeprefix(_BOM).lstrip()  # type: ignore[no-any-return]


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
        return io.BufferedReader(_Utf16AsUtf8(raw), _CHUNK)
    return raw


def _csv_encoding(raw: Any, key: str, charset: str | None, utf16: bool) -> str:
    """The codec a CSV's lines are decoded with: UTF-8, or the ``charset`` its Content-Type names when
    no BOM says UTF-8 or UTF-16. Only a charset that writes ASCII as ASCII is read, since lines and
    delimiters are found in the bytes; another (UTF-16 without its BOM, say) fails the file at once."""
    if charset is None or utf16 or raw.peek(3)[:3] == _BOM:
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


class _Utf16AsUtf8(io.RawIOBase):
    """UTF-16 bytes read as UTF-8 bytes; text that is not UTF-16, or cut short, raises UnicodeError."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-16")()  # takes the byte order from the BOM
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            data = self._raw.read(len(buffer))
            self._pending = self._decoder.decode(data, final=not data).encode("utf-8")
            if not data:
                break
        n = min(len(buffer), len(self._pending))
        buffer[:n], self._pending = self._pending[:n], self._pending[n:]
        return n


_UNLOADED_PART = re.compile(r"\d{4}_part_\d{2,}$")  # Redshift's UNLOAD: <prefix>0000_part_00
_HOLDER_OPENING = re.compile(rb'\{\s*"(?:[^"\\]|\\.)*"\s*:\s*\[')  # {"records": [
_HOLDER_OPENING_TEXT = re.compile(_HOLDER_OPENING.pattern.decode())


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
        return not newline and not _HOLDER_OPENING.match(first_line)
    return isinstance(first, dict) and not (len(first) == 1 and isinstance(next(iter(first.values())), list))


class _Readable(io.RawIOBase):
    """Adapts any object with ``read(n)`` (a botocore StreamingBody, say) to io.RawIOBase."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


class _Text:
    """A binary stream read as UTF-8 text (a BOM dropped); text that is not UTF-8 makes the file
    unreadable, with the line it is on."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._line = 1  # the line the text read next starts on

    def read(self, size: int) -> str:
        data = self._raw.read(size)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:  # exc.object: the bytes not yet decoded, this chunk's and any before
            line = self._line + exc.object.count(b"\n", 0, exc.start)
            raise UnreadableFile(f"line {line}: not UTF-8 text (byte {exc.object[exc.start]:#04x})") from None
        self._line += text.count("\n")
        return text


class _Lines:
    """A binary stream's lines of text, a chunk at a time, numbered from 1 and ending as written
    (``\\n``, ``\\r\\n`` or ``\\r``). A BOM is dropped. A line that is not UTF-8 (or not the
    ``encoding`` given, one that writes ASCII as ASCII) is decoded with replacement characters and
    noted in ``undecodable`` with what is wrong, so that its record alone is set aside. A CSV's (``of_csv``)
    lines from ``keep_from`` on are kept, to be read again (``between``), and a line that is not UTF-8
    says that the file's charset can be named."""

    def __init__(self, raw: IO[bytes], of_csv: bool = False, encoding: str = "utf-8", mislabelled: str = "") -> None:
        self._raw = raw
        self._of_csv = of_csv
        self._encoding = encoding
        self._chunks: deque[tuple[int, list[str]]] = deque()  # (number of the chunk's first line, lines)
        self._next = 1
        self.keep_from = 1
        self.undecodable: dict[int, str] = {}
        self._mislabelled = mislabelled  # what to say if the text is UTF-8 after all (see _check_label)
        self._label_checked = encoding == "utf-8"

    def __iter__(self) -> Iterator[list[str]]:
        pieces: list[bytes] = []  # of a line that goes on past the chunks read so far
        held = 0  # their length
        chunk = self._raw.read(_CHUNK).removeprefix(_BOM)
        while chunk:
            # The lines end where the last one does: a UTF-8 character never holds a newline byte.
            # A \r at the very end may yet be followed by \n, so it is left for the next chunk.
            cut = chunk.rfind(b"\n") + 1 or chunk.rfind(b"\r", 0, len(chunk) - 1) + 1
            if cut:
                pieces.append(chunk[:cut])
                yield self._numbered(self._decode(b"".join(pieces)))
                pieces = [chunk[cut:]]
                held = len(pieces[0])
            else:
                pieces.append(chunk)
                held += len(chunk)
                if held > _LONGEST_RECORD:  # its start is kept to say which line it was; the rest is skipped
                    yield self._numbered([self._too_long(b"".join(pieces[:2]))])  # a chunk holds more than is kept
                    pieces, held = [], 0
                    chunk = self._after_line(self._raw.read(_CHUNK)) or self._raw.read(_CHUNK)
                    continue
            chunk = self._raw.read(_CHUNK)
        if rest := b"".join(pieces):
            yield self._numbered(self._decode(rest))

    def _too_long(self, start: bytes) -> str:
        self.undecodable[self._next] = (f"the line runs over {_LONGEST_RECORD >> 20} MiB, larger than any record can be"
                                        " sent; a whole JSON array on one line belongs in a .json file")
        return start[:_SHOWN_OF_TOO_LONG].decode(self._encoding, errors="replace") + "…"

    def _after_line(self, chunk: bytes) -> bytes:
        """What follows the end of the line under way, reading on from ``chunk``; empty at the stream's end."""
        while chunk:
            ends = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
            if ends:
                end = min(ends)
                rest = chunk[end + 1:]
                if chunk[end] == 13:  # \r, perhaps of \r\n
                    rest = (rest or self._raw.read(_CHUNK)).removeprefix(b"\n")
                return rest
            chunk = self._raw.read(_CHUNK)
        return b""

    def _numbered(self, lines: list[str]) -> list[str]:
        if self._of_csv:
            while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) <= self.keep_from:
                self._chunks.popleft()
            self._chunks.append((self._next, lines))
        self._next += len(lines)
        return lines

    def _decode(self, data: bytes) -> list[str]:
        if not self._label_checked and not data.isascii():
            self._check_label(data)
        try:
            text = data.decode(self._encoding)
        except UnicodeDecodeError:
            pass
        else:
            # Files joined with their BOMs (Excel's "CSV UTF-8" writes one): each starts the line it is at.
            # Looking costs nothing in text of Latin-1 alone, where no BOM can be.
            if "\ufeff" in text:
                text = _BOM_AT_LINE_START.sub(r"\1", text)
            return io.StringIO(text, newline="").readlines()
        lines = io.StringIO(data.decode("latin-1"), newline="").readlines()  # the bytes, split where text would be
        for number, line in enumerate(lines, start=self._next):
            raw = line.encode("latin-1").removeprefix(_BOM)
            try:
                lines[number - self._next] = raw.decode(self._encoding)
            except UnicodeDecodeError as exc:
                self.undecodable[number] = _undecodable(raw, exc.start, self._encoding, self._of_csv)
                lines[number - self._next] = raw.decode(self._encoding, errors="replace")
        return lines

    def _check_label(self, data: bytes) -> None:
        """A file its Content-Type says is in another charset, whose first text past ASCII is UTF-8, is
        UTF-8 mislabelled (text in Windows-1252 and the like is next to never also UTF-8): read as
        labelled, each é would be sent as Ã©."""
        self._label_checked = True
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return
        raise UnreadableFile(self._mislabelled)

    def between(self, first: int, last: int) -> list[str]:
        """Lines ``first`` to ``last``, read already and not before ``keep_from``."""
        found: list[str] = []
        for start, lines in self._chunks:
            if start <= last and first < start + len(lines):
                found += lines[max(0, first - start):last - start + 1]
        return found


def _undecodable(line: bytes, at: int, encoding: str, of_csv: bool) -> str:
    """Why a line is not text in ``encoding``. For UTF-8, also the character the byte would be in
    Windows-1252, which is what Excel and older tools write unless told to save UTF-8; a CSV may say
    so in its Content-Type."""
    reason = f"not {'UTF-8' if encoding == 'utf-8' else encoding} text: byte {at + 1} of the line is {line[at]:#04x}"
    character = line[at:at + 1].decode("cp1252", errors="ignore")
    if encoding == "utf-8" and character.isprintable() and character.strip():
        reason += f" (it would be {character!r} in Windows-1252: save the file as UTF-8; Excel calls it CSV UTF-8"
        reason += ", or upload it with Content-Type text/csv; charset=windows-1252)" if of_csv else ")"
    return reason


def _csv_records(lines: _Lines, delimiters: tuple[str, ...] = _DELIMITERS[".csv"], columns: list[str] | None = None,
                 options: CsvOptions = CsvOptions()) -> Iterator[Record]:
    """``delimiters``: the first of them the header holds separates the columns (see ``_DELIMITERS``).
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


def _csv_rows(reader: Any, lines: _Lines, source: Iterator[str], header: list[str],
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
                f"malformed CSV: a cell runs over {_LONGEST_RECORD >> 20} MiB, larger than any record can be sent"
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
    """Rows of all the header's columns as records of its named ones (see ``_csv_records``)."""
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


def _json_lines_records(lines: _Lines, objects_only: bool = True) -> Iterator[Record]:
    undecodable = lines.undecodable
    for line, content in enumerate(chain.from_iterable(lines), start=1):
        if undecodable and line in undecodable:
            yield Record(line, content.strip(), undecodable.pop(line))
            continue
        try:
            value = orjson.loads(content)  # strict JSON, several times faster than json.loads
        except orjson.JSONDecodeError as exc:
            if content.strip():  # else a blank line
                yield Record(line, content.strip(), f"invalid JSON: {json_error(exc, one_line=True)}")
            continue
        yield _object_record(line, value, objects_only)


def _object_record(line: int, value: Any, objects_only: bool) -> Record:
    if isinstance(value, dict) or not objects_only:
        return Record(line, value)
    return Record(line, value, f"expected a JSON object, found {json_kind(value)}")


# Where a JSON array's item that is not JSON ends: strings (one ending at its line's end when its closing quote
# is missing, or cut at the text's end), brackets, and the comma or bracket that closes the item.
_ITEM_TOKENS = re.compile(r'"(?:[^"\\\n]|\\.)*(?:"|(?=\n)|\Z)|[{}\[\],]')


def _bad_item_end(text: str, pos: int) -> int | None:
    """Where the array's item starting at ``pos``, which does not read as JSON, ends: at the comma or the
    array's ``]`` after it, brackets matched and strings skipped. None when the text ends first (the item
    may only be cut short: read on)."""
    depth = 0
    for token in _ITEM_TOKENS.finditer(text, pos):
        first = token.group()[0]
        if first == '"':
            if token.end() == len(text):
                return None
        elif first in "{[":
            depth += 1
        elif first in "}]":
            depth -= 1
            if depth < 0:
                return token.start()
        elif not depth:
            return token.start()
    return None


def _bad_item_reason(item: str, first_line: int) -> str:
    """Why an array's item is not JSON, and where: the line of the file, and the column when the item is
    one line of its own."""
    try:
        json.loads(item)
    except json.JSONDecodeError as exc:
        what = exc.msg.removesuffix(" at")  # "Unterminated string starting at"
        if exc.lineno == 1:
            return f"invalid JSON: {what} at column {exc.colno} of the item"
        return f"invalid JSON: {what} at line {first_line + exc.lineno - 1}, column {exc.colno}"
    return "invalid JSON"


def _wrong_before_the_end(exc: ValueError, length: int) -> bool:
    """Whether JSON refused in a text of ``length`` is wrong where it stopped, rather than cut short at the
    text's end: a literal or number cut short (``tr``, ``1e``) stops within a few characters of it."""
    at = getattr(exc, "pos", None)
    return at is not None and at < length - 16 and not str(getattr(exc, "msg", "")).startswith("Unterminated string")


def _line_end(text: str, pos: int) -> int | None:
    """The end of the line ``pos`` is on, before a comma that ends it; None when the text ends first."""
    end = text.find("\n", pos)
    if end < 0:
        return None
    item = text[pos:end].rstrip(" \t\r")
    return pos + len(item) - item.endswith(",")


class _BadItem(Exception):
    def __init__(self, end: int) -> None:
        self.end = end


def _json_array_records(text: _Text, objects_only: bool = True) -> Iterator[Record]:
    """Items of a top-level JSON array, or of the array an object holds alone (``{"records": [...]}``,
    the webhooks' body and many APIs' exports), decoded one at a time from a sliding buffer. An item
    that is not JSON (a comma doubled, a quote left unescaped) is set aside as its text, and the items
    after it are read: its end is the comma after it, brackets matched; failing that, when it began a
    line, its line's end (one item a line, an unescaped quote in it)."""
    decoder = ItemDecoder()
    buffer, pos, line, eof = "", 0, 1, False
    index: int | None = None  # the array's item being read, once in the array
    separated_on = 0  # the line of the comma before the item being read: on an earlier one, the item begins its line

    def fill() -> bool:
        nonlocal buffer, pos, eof
        chunk = text.read(_CHUNK)
        if not chunk:
            eof = True
            return False
        buffer = buffer[pos:] + chunk
        pos = 0
        return True

    def skip_blank() -> None:
        nonlocal pos, line
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                if buffer[pos] == "\n":
                    line += 1
                pos += 1
            if pos < len(buffer) or not fill():
                return

    def where(at_line: int) -> str:  # reading an item
        return f"line {at_line}" if index is None else f"line {at_line} (the array's item at index {index})"

    def after(at_line: int) -> str:  # between items
        return f"line {at_line}" if not index else f"line {at_line}, after {index} item{'s' * (index > 1)} of the array"

    def next_value(in_array: bool = False, in_stream: bool = False) -> Any:
        """The value at ``pos``; in the array, or of objects one after another, _BadItem (where it ends) for
        an item that is not JSON."""
        nonlocal pos, line
        start_line = line
        while True:
            try:
                value, end = decoder.decode_item(buffer, pos)
                if end < len(buffer) or eof:
                    break  # a value ending at the buffer's edge may be cut short: read on
            except ValueError as exc:
                # Not cut short at the buffer's edge, and read far enough on to find where the item ends if anything can.
                wrong = _wrong_before_the_end(exc, len(buffer)) and len(buffer) - pos > _LOOKED_PAST_A_BAD_ITEM
                if in_array:
                    bad_end = _bad_item_end(buffer, pos)
                    if bad_end is None and (eof or wrong or len(buffer) - pos > _LONGEST_RECORD) \
                            and start_line > separated_on:
                        bad_end = _line_end(buffer, pos)
                    if bad_end is not None:
                        raise _BadItem(bad_end) from None
                if in_stream:  # the next object begins a line with its brace, as printed; else the rest is the item
                    bad_end = buffer.find("\n{", pos) + 1 or (len(buffer) if eof else None)
                    if bad_end is not None:
                        raise _BadItem(bad_end) from None
                if eof or wrong:
                    raise UnreadableFile(f"{where(start_line)}: invalid JSON in the array") from None
            if len(buffer) - pos > _LONGEST_RECORD:
                raise UnreadableFile(f"{where(start_line)}: an item of the JSON array runs over {_LONGEST_RECORD >> 20} MiB,"
                                     " larger than any record can be sent")
            if not fill():
                if eof and pos >= len(buffer):
                    raise UnreadableFile(f"{where(start_line)}: the JSON array is not closed")
        line += buffer.count("\n", pos, end)
        pos = end
        return value

    def expect(char: str, what: str) -> None:
        nonlocal pos
        skip_blank()
        if buffer[pos:pos + 1] != char:
            raise UnreadableFile(f"line {line}: {what}")
        pos += 1

    def set_aside(place: int, end: int) -> Record:
        """The item from ``pos`` to ``end`` that is not JSON, as written; reading goes on after it."""
        nonlocal pos, line
        item = buffer[pos:end].rstrip()
        line += buffer.count("\n", pos, end)
        pos = end
        return Record(place, item, _bad_item_reason(item, place) if item else "an empty item: two commas with nothing between")

    def as_record(place: int, value: Any) -> Record:
        if decoder.problems:  # read, but not as JSON the vendors take: set aside, not changed
            return Record(place, value, "invalid JSON: " + "; ".join(decoder.problems))
        return _object_record(place, value, objects_only)

    def objects_one_after_another() -> Iterator[Record]:
        """Objects written over several lines each, one after another; one that is not JSON is set aside as
        written, up to the next line that begins with a brace."""
        first = True
        while True:
            skip_blank()
            if pos >= len(buffer):
                break
            place = line
            try:
                value = next_value(in_stream=True)
            except _BadItem as bad:
                yield set_aside(place, bad.end)
                continue
            if first and isinstance(value, dict):
                holds = [name for name, held in value.items() if isinstance(held, list) and held
                         and all(isinstance(item, dict) for item in held)]
                skip_blank()
                if holds and pos >= len(buffer):  # {"count": 2, "records": [...]}, as some APIs answer
                    raise UnreadableFile(f"line {place}: {shapes}; this object holds the array {holds[0]!r}"
                                         " beside other fields: keep the array alone")
            first = False
            yield as_record(place, value)

    shapes = 'a .json file must hold one JSON array of objects, an object holding one alone ({"records": [...]}),' \
             " or objects one after another"
    skip_blank()
    if pos >= len(buffer):
        return
    if buffer[pos] == "{" and not _HOLDER_OPENING_TEXT.match(buffer, pos):
        yield from objects_one_after_another()
        return
    holder = buffer[pos] == "{"
    if holder:
        pos += 1
        skip_blank()
        if buffer[pos:pos + 1] != '"' or not isinstance(next_value(), str):
            raise UnreadableFile(f"line {line}: {shapes}")
        expect(":", shapes)
    expect("[", shapes)
    after_item, index, separated_on = False, 0, line
    while True:
        skip_blank()
        if pos >= len(buffer):
            raise UnreadableFile(f"{after(line)}: the JSON array is not closed")
        char = buffer[pos]
        if char == "]":  # after a comma too: hand-written exporters leave one, and no value is in doubt
            pos += 1
            break
        if after_item:
            if char != ",":
                raise UnreadableFile(f"{after(line)}: expected ',' or ']' between array items")
            pos += 1
            separated_on = line
            after_item = False
            continue
        place = ItemLine(line)
        place.index = index
        try:
            value = next_value(in_array=True)
        except _BadItem as bad:
            yield set_aside(place, bad.end)
            after_item = True
            index += 1
            continue
        yield as_record(place, value)
        after_item = True
        index += 1
    if holder:
        expect("}", f"the object holding the array holds more than the array; {shapes}")
    skip_blank()
    if pos < len(buffer):  # a second array, say, appended to the first: not left unread unsaid
        raise UnreadableFile(f"line {line}: more follows the end of the JSON {'object' if holder else 'array'}; {shapes}")
