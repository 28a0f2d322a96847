"""Streaming record readers: CSV with a header, a JSON array, JSON Lines; gzip or not.

A reader takes a binary stream (an S3 object body, a file) and yields one
:class:`Record` at a time, so memory stays flat however large the file. Each record
carries the line it starts on; a record that cannot be read carries the reason instead
of data, and reading goes on with the next one.

Example::

    for record in read_records(stream, "monetate/customers/2024-05-01.csv.gz"):
        if record.error:
            reject(record.line, record.error)
        else:
            use(record.data)
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import deque
from dataclasses import dataclass
from typing import IO, Any
from collections.abc import Iterator
from itertools import chain

import orjson

from martech.dict_makers import dict_maker

CSV, JSON_ARRAY, JSON_LINES = "csv", "json", "jsonl"
_EXTENSIONS = {".csv": CSV, ".json": JSON_ARRAY, ".jsonl": JSON_LINES, ".ndjson": JSON_LINES}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 16


class UnreadableFile(Exception):
    """The file as a whole cannot be read (unknown format, broken gzip, not UTF-8, no header)."""


@dataclass(slots=True)  # not frozen: a frozen dataclass costs three times as much to make, per record
class Record:
    line: int
    data: Any = None  # an object, or with objects_only=False any JSON value
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
    raise UnreadableFile(f"{key}: unknown file type; use .csv, .json, .jsonl or .ndjson, optionally .gz")


def read_records(stream: IO[bytes], key: str, objects_only: bool = True, fmt: str | None = None) -> Iterator[Record]:
    """Records of the file named ``key``; with ``objects_only=False`` JSON scalars are records too
    (a list of primary keys, say). ``fmt`` overrides the format the key's extension names."""
    if fmt is None:
        fmt, gzipped = detect_format(key)
    else:
        gzipped = key.lower().endswith(".gz")
    raw = _maybe_gunzip(stream, gzipped)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")  # a BOM is dropped if present
    readers = {CSV: _csv_records, JSON_LINES: _json_lines_records, JSON_ARRAY: _json_array_records}
    try:
        yield from readers[fmt](text, objects_only)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"{key}: not UTF-8 text ({exc.reason} at byte {exc.start} of a chunk)") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UnreadableFile(f"{key}: cannot decompress: {exc}") from None


def _maybe_gunzip(stream: IO[bytes], gzipped: bool) -> IO[bytes]:
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(_Readable(stream), _CHUNK)
    if gzipped or buffered.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


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


class _KeptLines:
    """The text's lines for ``csv.reader``, a chunk at a time, keeping those from ``keep_from`` on
    so that a record that went wrong can be read again from its second line."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._chunks: deque[tuple[int, list[str]]] = deque()  # (number of the chunk's first line, lines)
        self._next = 1
        self.keep_from = 1

    def __iter__(self) -> Iterator[list[str]]:
        while lines := self._text.readlines(_CHUNK):
            while self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) <= self.keep_from:
                self._chunks.popleft()
            self._chunks.append((self._next, lines))
            self._next += len(lines)
            yield lines

    def between(self, first: int, last: int) -> list[str]:
        """Lines ``first`` to ``last``, read already and not before ``keep_from``."""
        kept = [line for _, lines in self._chunks for line in lines]
        offset = first - self._chunks[0][0]
        return kept[offset:offset + last - first + 1]


def _csv_records(text: IO[str], objects_only: bool = True) -> Iterator[Record]:
    lines = _KeptLines(text)
    source = chain.from_iterable(lines)
    reader = csv.reader(source, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise UnreadableFile(f"the CSV header cannot be read: {exc}") from None
    header = [name.strip() for name in header]
    if not any(header) or len(set(header)) != len(header):
        raise UnreadableFile("the CSV header must name every column once")
    width = len(header)
    as_dict = dict_maker(tuple(header))
    base = 0  # lines read before ``reader`` began: a line's number is base + reader.line_num
    line = reader.line_num + 1
    while True:
        lines.keep_from = line
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problem = f"malformed CSV: {exc}"
        else:
            if len(row) == width and (width > 1 or row[0]):  # [""] is a blank line too
                yield Record(line, as_dict(*row))
                line = base + reader.line_num + 1
                continue
            if not row or row == [""]:  # a blank line
                line = base + reader.line_num + 1
                continue
            problem = f"expected {width} columns as in the header, found {len(row)}"
        last = base + reader.line_num
        if last > line:
            # A record running over several lines that is wrong is most likely a quote left open,
            # which swallows the rows after it: they are read again, as rows of their own.
            problem += (f" in a record that runs on to line {last}; a quote opened on this line is probably never"
                        f" closed, so lines {line + 1}-{last} are read again as rows of their own")
            reader = csv.reader(chain(lines.between(line + 1, last), source), strict=True)
            base = line
        yield Record(line, error=problem)
        line = base + reader.line_num + 1


def _json_lines_records(text: IO[str], objects_only: bool = True) -> Iterator[Record]:
    for line, content in enumerate(text, start=1):
        content = content.strip()
        if not content:
            continue
        try:
            value = orjson.loads(content)  # strict JSON, several times faster than json.loads
        except orjson.JSONDecodeError as exc:
            yield Record(line, error=f"invalid JSON: {exc}")
            continue
        yield _object_record(line, value, objects_only)


def _object_record(line: int, value: Any, objects_only: bool) -> Record:
    if isinstance(value, dict) or not objects_only:
        return Record(line, value)
    return Record(line, error=f"expected a JSON object, found {type(value).__name__}")


def _json_array_records(text: IO[str], objects_only: bool = True) -> Iterator[Record]:
    """Elements of a top-level JSON array, decoded one at a time from a sliding buffer."""
    decoder = json.JSONDecoder()
    buffer, pos, line, eof = "", 0, 1, False

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

    skip_blank()
    if pos >= len(buffer):
        return
    if buffer[pos] != "[":
        raise UnreadableFile(f"line {line}: a .json file must hold one JSON array of objects")
    pos += 1
    expect_item = True
    while True:
        skip_blank()
        if pos >= len(buffer):
            raise UnreadableFile(f"line {line}: the JSON array is not closed")
        char = buffer[pos]
        if char == "]" and expect_item is not None:
            return
        if expect_item is False:
            if char != ",":
                raise UnreadableFile(f"line {line}: expected ',' or ']' between array items")
            pos += 1
            expect_item = None  # an item must follow a comma
            continue
        start_line = line
        while True:
            try:
                value, end = decoder.raw_decode(buffer, pos)
                if end < len(buffer) or eof:
                    break  # a value ending at the buffer's edge may be cut short: read on
            except ValueError:
                if eof:
                    raise UnreadableFile(f"line {start_line}: invalid JSON in the array") from None
            if not fill():
                if eof and pos >= len(buffer):
                    raise UnreadableFile(f"line {start_line}: the JSON array is not closed")
        line += buffer.count("\n", pos, end)
        pos = end
        yield _object_record(start_line, value, objects_only)
        expect_item = False
