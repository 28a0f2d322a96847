"""The records of JSON Lines, and of a JSON array read an item at a time (or objects written one after
another): an item that is not JSON set aside as written, and the items after it read."""

from __future__ import annotations

import json
import re
from typing import Any
from collections.abc import Iterator
from itertools import chain

import orjson

from martech.records import ItemLine, Record, UnreadableFile
from martech.strict_json import ItemDecoder, json_error, json_kind
from martech.text_lines import CHUNK, LONGEST_RECORD, Lines, Utf8Text

_LOOKED_PAST_A_BAD_ITEM = 1 << 20  # text read on past a JSON array's item that is not JSON, to find where it ends
HOLDER_OPENING = re.compile(rb'\{\s*"(?:[^"\\]|\\.)*"\s*:\s*\[')  # {"records": [
_HOLDER_OPENING_TEXT = re.compile(HOLDER_OPENING.pattern.decode())


def json_lines_records(lines: Lines, objects_only: bool = True) -> Iterator[Record]:
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


def json_array_records(text: Utf8Text, objects_only: bool = True) -> Iterator[Record]:
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
        chunk = text.read(CHUNK)
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
                    if bad_end is None and (eof or wrong or len(buffer) - pos > LONGEST_RECORD) \
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
            if len(buffer) - pos > LONGEST_RECORD:
                raise UnreadableFile(f"{where(start_line)}: an item of the JSON array runs over {LONGEST_RECORD >> 20} MiB,"
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
