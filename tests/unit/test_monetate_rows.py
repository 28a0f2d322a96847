"""Converting records to Monetate rows by each field's data_type."""

import pytest

from martech.monetate_rows import RowConverter, Schema, to_boolean, to_datetime, to_multi_string, to_number

SCHEMA = Schema.from_api({
    "name": "customers",
    "fields": {
        "id": {"data_type": "STRING", "identifier": True, "unique_key": True},
        "tier": {"data_type": "STRING"},
        "tags": {"data_type": "MULTI_STRING"},
        "spend": {"data_type": "NUMBER"},
        "vip": {"data_type": "BOOLEAN"},
        "joined": {"data_type": "DATETIME"},
    },
})


@pytest.mark.parametrize("raw, expected", [
    ("2024-05-01", "2024-05-01"), ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
    ("2024-05-01 10:15:00", "2024-05-01T10:15:00"), ("05/02/2024", "2024-05-02"),
    ("05/02/2024 14:30", "2024-05-02T14:30:00"), ("2024/05/02", "2024-05-02"), ("02.05.2024", "2024-05-02"),
    ("1 May 2024", "2024-05-01"), (1714557600, "2024-05-01T10:00:00+00:00"),
    (1714557600000, "2024-05-01T10:00:00+00:00"),
])
def test_datetimes_in_common_formats_become_iso_8601(raw, expected):
    assert to_datetime(raw) == expected


@pytest.mark.parametrize("raw", ["not a date", "2024-13-01", "31/31/2024", True])
def test_unreadable_datetimes_are_refused(raw):
    with pytest.raises(ValueError):
        to_datetime(raw)


@pytest.mark.parametrize("raw, expected", [("true", True), ("FALSE", False), ("1", True), ("0", False),
                                           ("yes", True), ("No", False), (True, True)])
def test_booleans(raw, expected):
    assert to_boolean(raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "2", ""])
def test_unreadable_booleans_are_refused(raw):
    with pytest.raises(ValueError):
        to_boolean(raw)


@pytest.mark.parametrize("raw, expected", [("12", 12), ("12.5", 12.5), (" -3 ", -3), (7, 7), ("1e3", 1000.0)])
def test_numbers(raw, expected):
    assert to_number(raw) == expected and type(to_number(raw)) is type(expected)


@pytest.mark.parametrize("raw", ["lots", "nan", "inf", True, "1,5"])
def test_unreadable_numbers_are_refused(raw):
    with pytest.raises(ValueError):
        to_number(raw)


@pytest.mark.parametrize("raw, expected", [("a, b ,c", "a,b,c"), (["x", " y "], "x,y"), ("solo", "solo"),
                                           ("a,,b", "a,b")])
def test_multi_strings_from_lists_or_comma_strings(raw, expected):
    assert to_multi_string(raw) == expected


def test_multi_string_list_items_cannot_hold_commas():
    with pytest.raises(ValueError):
        to_multi_string(["a,b", "c"])


def test_a_good_record_converts_with_strings_trimmed_and_blanks_dropped():
    row, reasons = RowConverter(SCHEMA).convert(
        {"id": " c1 ", "tier": "", "tags": "a, b", "spend": "10.5", "vip": "yes", "joined": "2024-05-01"})
    assert reasons == []
    assert row == {"id": "c1", "tags": "a,b", "spend": 10.5, "vip": True, "joined": "2024-05-01"}


def test_every_reason_is_given_at_once():
    row, reasons = RowConverter(SCHEMA).convert({"id": "", "spend": "x", "vip": "maybe"})
    assert row is None
    assert {r.split(":")[0] for r in reasons} == {"id", "spend", "vip"}


def test_unknown_columns_reject_the_row_by_default():
    row, reasons = RowConverter(SCHEMA).convert({"id": "c1", "shoe_size": "42"})
    assert row is None and reasons == ["shoe_size: not a field of schema customers"]


def test_unknown_columns_can_be_dropped_instead():
    row, reasons = RowConverter(SCHEMA, unknown_columns="drop").convert({"id": "c1", "shoe_size": "42"})
    assert row == {"id": "c1"} and reasons == []


def test_required_fields_beyond_identifier_and_unique_key():
    schema = Schema.from_api({"name": "s", "fields": {"id": {"data_type": "STRING", "identifier": True},
                                                      "email": {"data_type": "STRING", "required": True}}})
    _, reasons = RowConverter(schema).convert({"id": "c1"})
    assert reasons == ["email: required but empty or missing"]
