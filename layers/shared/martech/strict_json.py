"""JSON as the vendors take it, and what to say when a text is not.

Python's ``json`` reads ``NaN``, ``Infinity`` and numbers past a double's range (``1e400``, as
``inf``), none of which is JSON, and integers of any size. orjson, which writes what is sent,
writes the first two as ``null`` and refuses an integer past 64 bits: a value silently
changed, or a whole file failing at its first batch. So what is read is read by orjson: webhook
bodies whole, a JSON array's items one at a time through :class:`ItemDecoder`, which flags what
orjson refuses.

Example::

    decoder = ItemDecoder()
    value, end = decoder.decode_item('{"score": NaN}', 0)
    decoder.problems  # ['NaN is not JSON: write null or a number']
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

_NOT_JSON = ("NaN", "Infinity", "-Infinity")
ORJSON_INTEGERS = range(-(1 << 63), 1 << 64)  # what orjson reads and writes as an integer (signed or unsigned 64 bits)


_KINDS = {dict: "an object", list: "an array", str: "text", int: "a number", float: "a number", bool: "true/false",
          type(None): "null"}


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words: ``an array``, not Python's ``list``."""
    return _KINDS.get(type(value), type(value).__name__)


class BadJson(ValueError):
    """A text that is not strict JSON; the message says what and where."""


_AFTER_THE_VALUE = ("unexpected content after document", "Extra data")  # orjson's and json's


def json_error(exc: json.JSONDecodeError, one_line: bool = False) -> str:
    """What is wrong and where, for a text orjson or json refused: its message, line (unless the
    text is ``one_line`` of a file) and column, and for NaN or Infinity (as Python's json.dumps and
    pandas write them) what to write instead."""
    where = f"{exc.msg} at column {exc.colno}" if one_line else f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    if exc.doc and isinstance(exc.doc, str) and exc.doc.startswith(_NOT_JSON, exc.pos):
        return f"{where}: NaN and Infinity are not JSON; write null or a number"
    if one_line and exc.msg in _AFTER_THE_VALUE and isinstance(exc.doc, str) and exc.doc[exc.pos:].lstrip().startswith(","):
        return f"{where}: a comma after the object; a line of JSON Lines holds one object and nothing after it"
    return where


def loads(text: str | bytes) -> Any:
    """``text`` as strict JSON, by orjson: the webhooks' body reader. Raises BadJson. A byte order mark
    before it, as Windows tools may write one, is no part of it (RFC 8259 lets a reader ignore it)."""
    text = text.removeprefix("\ufeff") if isinstance(text, str) else text.removeprefix(b"\xef\xbb\xbf")
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadJson(f"the body is not valid JSON: {json_error(exc)}") from None


def body_of(event: Any) -> Any:
    """A webhook event's body, read by the resolver's deserializer (``loads``). Raises BadJson for a
    body that is not JSON, or not UTF-8 text (Powertools decodes it first, and would raise)."""
    try:
        return event.json_body
    except UnicodeDecodeError as exc:
        if exc.object[:2] == b"\x1f\x8b":
            raise BadJson("the body is gzip-compressed, which the webhooks do not take: send the JSON as it is") from None
        if exc.object[:2] in (b"\xff\xfe", b"\xfe\xff"):  # as PowerShell's Out-File and Windows tools save text
            raise BadJson("the body is UTF-16 text, as its byte order mark says, which the webhooks do not take:"
                          " send it as UTF-8") from None
        raise BadJson(f"the body is not UTF-8 text: byte {exc.start + 1} is {exc.object[exc.start]:#04x}") from None
    except BadJson as exc:
        raise BadJson(f"{exc}{_what_the_body_looks_like(event, str(exc))}") from None


_AT_THE_START = re.compile(r"line 1, column 1\b")  # not column 14: JSON broken later is JSON


def _what_the_body_looks_like(event: Any, problem: str) -> str:
    """For a body that is no JSON value: the file format it looks like, and where such a file goes."""
    body = event.decoded_body or ""
    if "unexpected content after document" in problem and body.lstrip()[:1] in ("{", "["):
        return ("; it holds more than one JSON value, as JSON Lines does: send one ({\"records\": [...]}),"
                " or drop the file into the bucket")
    content_type = event.headers.get("content-type") or ""  # Powertools' headers match in any case
    first_line = body.lstrip("\ufeff").split("\n", 1)[0]
    if _AT_THE_START.search(problem) and ("csv" in content_type.lower() or "," in first_line):
        return "; it looks like CSV: the webhooks take JSON, and a CSV file goes into the bucket"
    return ""


class ItemDecoder:
    """Decodes one JSON value at a time from a longer text as orjson reads it (an integer past 64
    bits as the nearest double). What orjson refuses, ``NaN``, ``Infinity`` or a number past a
    double's range, comes as its text, with the reason in ``problems`` (reset at each value)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._plain = json.JSONDecoder()
        self._strict = json.JSONDecoder(parse_constant=self._constant, parse_float=self._real, parse_int=self._integer)

    def decode_item(self, text: str, pos: int) -> tuple[Any, int]:
        """(value, end) of the value starting at ``pos``; raises ValueError as ``json`` does."""
        self.problems.clear()
        try:
            _, end = self._plain.raw_decode(text, pos)
        except ValueError:  # maybe an integer too long for int(): the strict decoder reads it as a double
            return self._strict.raw_decode(text, pos)
        # json finds where the item ends and orjson reads it again: +30% of the reader's time, where the
        # strict decoder, called back on every number, cost +45%. Only an item orjson refuses goes to it.
        try:
            return orjson.loads(text[pos:end]), end
        except orjson.JSONDecodeError as exc:
            value, end = self._strict.raw_decode(text, pos)
            if not self.problems:  # a lone surrogate, say
                self.problems.append(exc.msg)  # where: the record's line
            return value, end

    def _constant(self, name: str) -> str:
        self.problems.append(f"{name} is not JSON: write null or a number")
        return name

    def _real(self, text: str) -> float | str:
        number = float(text)
        if math.isfinite(number):
            return number
        shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text)} characters)"
        self.problems.append(f"{shown} is beyond the range of a double")
        return text

    def _integer(self, text: str) -> int | float | str:
        if len(text) <= 20 and int(text) in ORJSON_INTEGERS:  # 20 digits at most: int() stays cheap and within its limits
            return int(text)
        return self._real(text)
