"""A CSV's cells as the JSON values they read as, and dicts made for many rows alike."""

import orjson
import pytest

from martech.csv_values import typed_row, typed_value
from martech.dict_makers import dict_maker


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("-3", -3), ("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000.0), ("1E-2", 0.01),
    ("12345678901234567890", 12345678901234567890), ("18446744073709551615", 18446744073709551615),
    ("-9223372036854775808", -9223372036854775808), ("89014103211118510720", "89014103211118510720"),
    ("-9223372036854775809", "-9223372036854775809"), ("1" * 5000, "1" * 5000), ("007", "007"),
    ("1,234", "1,234"), ("1e400", "1e400"),
    (" 5", " 5"), (".5", ".5"), ("5.", "5."), ("+5", "+5"), ("-", "-"), ("nan", "nan"), ("0x1F", "0x1F"), ("²", "²"),
])
def test_only_plain_numbers_become_numbers(text, value):
    assert typed_value(text) == value and type(typed_value(text)) is type(value)


def test_every_typed_value_can_be_sent():
    row = {"sim": "89014103211118510720", "big": "18446744073709551615", "low": "-9223372036854775808"}
    assert orjson.loads(orjson.dumps(typed_row(row))) == typed_row(row)


def test_a_typed_row_leaves_out_blank_cells_and_keeps_its_key_as_written():
    row = {"id": "42", "points": "150", "zip": "02134", "note": " "}
    assert typed_row(row, keep={"id"}) == {"id": "42", "points": 150, "zip": "02134"}
    assert typed_row(row, keep={"id"}, numbers=False) == {"id": "42", "points": "150", "zip": "02134"}


def test_dict_maker_takes_text_keys_only():
    class Sneaky(str):
        def __repr__(self):
            return "__import__('os').getpid()"

    assert dict_maker(("a", "b"))(1, 2) == {"a": 1, "b": 2}
    with pytest.raises(TypeError):
        dict_maker((Sneaky("a"),))
