"""What a value that does not read looks like, added to the reason its row is set aside: the
words and signs spreadsheets and exports put where a number, a date or a yes/no belongs, and the
keys they mangle (#N/A, 1.23457E+11, pandas' 1001.0). What varies with the value is quoted, as the
value is, so that a report counts rows refused alike as one reason.

Example::

    number_hint("€12.50")  # ", a currency sign: write the number alone, '12.50'"
    no_value_hint("N/A")   # ", which means no value: leave it out, or name it in CSV_NULLS to read such CSV cells as empty"
"""

from __future__ import annotations

import re
from decimal import Decimal

# Written for a missing value by people and exports (pandas writes NaN, R and Excel NA, Hive \N).
_NO_VALUE_WORDS = frozenset({"n/a", "na", "nan", "null", "none", "nil", "-", "--", "?", "\\n"})
# What a spreadsheet saves in a cell whose formula failed.
_SPREADSHEET_ERRORS = frozenset({"#n/a", "#value!", "#ref!", "#div/0!", "#name?", "#num!", "#null!", "#spill!",
                                 "#calc!", "#error!"})

_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
# A number as spreadsheets show it in many countries, with a decimal comma or grouped thousands
# (12,50; 1.234,50; 1 234): which is meant is not guessed at, but the way to write it is named.
_WRITTEN_LOCALLY = re.compile(r"[+-]?[0-9]+(?:[,.' _][0-9]+)+")
_CURRENCY_SIGNS = re.compile(r"\s*[$€£¥₹]\s*")
_WRITE_PLAINLY = "write digits and a decimal point alone (1234.50)"
# A number of 12 digits or more as Excel shows it, and so saves it in a CSV: 123456789012 is 1.23457E+11.
_SPREADSHEET_ROUNDED = re.compile(r"-?[0-9](?:\.[0-9]{1,5})?E\+[0-9]{2}")
# A whole number written as pandas writes a column of them that holds a blank: as floats, 1001.0.
_FLOAT_ID = re.compile(r"-?[0-9]+\.0")


def key_hint(text: str) -> str:
    """As ``text_hint``, for a key (a customer id, a context id), which is also refused as pandas writes
    an integer column holding a blank: 1001.0, another key than 1001. Else nothing."""
    if hint := text_hint(text):
        return hint
    if text.endswith(".0") and _FLOAT_ID.fullmatch(text):
        return (", a whole number written as a float, as pandas writes an integer column that holds a blank:"
                " write the ids as integers (in pandas, as the dtype Int64)")
    return ""


def text_hint(text: str) -> str:
    """For text no field should take as it is: a spreadsheet's error (#N/A: every failed lookup would
    be one customer "#N/A"), or a long number a spreadsheet rounded to what it shows (1.23457E+11: ids
    that differ past six figures would be one); what is wrong and how to mend it. Else nothing."""
    if text[:1] == "#" and text.lower() in _SPREADSHEET_ERRORS:
        return no_value_hint(text)
    if "E+" in text and _SPREADSHEET_ROUNDED.fullmatch(text):
        return (", a long number as a spreadsheet shows it, rounded to six figures: format the column as text"
                " before saving the file, which holds what the sheet shows")
    return ""


def no_value_hint(text: str) -> str:
    """For text that stands for no value (N/A, NULL, #DIV/0!): how to leave it out; else nothing."""
    lowered = text.lower()
    if lowered in _SPREADSHEET_ERRORS:
        what = "a spreadsheet's error: mend its formula"
    elif lowered in _NO_VALUE_WORDS:
        what = "which means no value: leave it out"
    else:
        return ""
    return f", {what}, or name it in CSV_NULLS to read such CSV cells as empty"


def number_hint(text: str) -> str:
    """For text that is no number as written: what is in the way (a currency sign, a percent sign,
    accounting's brackets, a decimal comma or grouped thousands) and how to write it; else nothing."""
    if hint := no_value_hint(text):
        return hint
    negative = text.startswith("(") and text.endswith(")")  # (1,250.00): accounting's negative
    inner = text[1:-1].strip() if negative else text
    percent = inner.endswith("%")
    inner = inner.removesuffix("%")
    bare = _CURRENCY_SIGNS.sub("", inner).strip()
    currency = bare != inner.strip()
    if not (negative or percent or currency):
        return f", a decimal comma or grouped thousands: {_WRITE_PLAINLY}" if _WRITTEN_LOCALLY.fullmatch(text) else ""
    plain = _PLAIN_NUMBER.fullmatch(bare)
    signs = [what for what, found in (("a currency sign", currency), ("a percent sign", percent),
                                      ("accounting's brackets for a negative number", negative),
                                      ("a decimal comma or grouped thousands", not plain and _WRITTEN_LOCALLY.fullmatch(bare)))
             if found]
    said = ", ".join(signs[:-1]) + (" and " if len(signs) > 1 else "") + signs[-1]
    if plain:
        number = f"-{bare.lstrip('+')}" if negative and not bare.startswith("-") else bare
        fraction = f", or as a fraction '{Decimal(number) / 100}'" if percent else ""
        return f", {said}: write the number alone, '{number}'{fraction}"  # quoted: the report counts alike reasons as one
    return f", {said}: {_WRITE_PLAINLY}" if _WRITTEN_LOCALLY.fullmatch(bare) else ""
