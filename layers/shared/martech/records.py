"""What every reader yields and raises: a record with the line it starts on, and the error of a
file that cannot be read at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class UnreadableFile(Exception):
    """The file as a whole cannot be read (unknown format, broken gzip, not UTF-8, no header)."""


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
