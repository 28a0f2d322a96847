"""A CSV row's cells as the JSON values they read as, for vendors with no schema to convert by
(Mona, Optimove). A CSV holds only text, where a JSON file would carry numbers and leave
fields out.

Example::

    typed_row({"id": "007", "score": "0.93", "zip": "02134", "note": ""}, keep={"id"})
    # {"id": "007", "score": 0.93, "zip": "02134"}
"""

from __future__ import annotations

import math
import re
from collections.abc import Container
from typing import Any

from martech.strict_json import ORJSON_INTEGERS

# A number as JSON writes one: no leading zeros (a zip code or an id stays text), no thousands separators.
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def typed_value(text: str) -> Any:
    """A plain number as a number, anything else as the text it is. An integer past 64 bits (a
    20-digit card or SIM number, say) stays text: JSON has no exact number for it, and orjson
    refuses to write one."""
    if _PLAIN_NUMBER.fullmatch(text):
        if text.isdigit() or (text[0] == "-" and text[1:].isdigit()):
            return int(text) if len(text) <= 20 and int(text) in ORJSON_INTEGERS else text
        number = float(text)
        if math.isfinite(number):
            return number
    return text


def typed_row(row: dict[str, str], keep: Container[str] = (), numbers: bool = True) -> dict[str, Any]:
    """The row without its blank cells, and with ``numbers`` its plain numbers as numbers, except in
    the columns ``keep`` names (keys, read as written)."""
    if not numbers:
        return {name: value for name, value in row.items() if value.strip()}
    return {name: value if name in keep else typed_value(value) for name, value in row.items() if value.strip()}
