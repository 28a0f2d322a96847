"""Converting records to Monetate rows by each field's data_type."""

import contextlib
import re

import orjson
import pytest

from martech.monetate_rows import InvalidValue, RowConverter, Schema, to_boolean, to_datetime, to_multi_string, to_number

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
    (1714557600000, "2024-05-01T10:00:00+00:00"), ("1714557600", "2024-05-01T10:00:00+00:00"),
    (" 1714557600000 ", "2024-05-01T10:00:00+00:00"), ("1714557600.25", "2024-05-01T10:00:00.250000+00:00"),
    ("2024-05-01 10:15:00 UTC", "2024-05-01T10:15:00+00:00"),  # BigQuery
    ("2024-05-01 10:15:00.123 -0700", "2024-05-01T10:15:00.123000-07:00"),  # Snowflake
    ("2024-05-01T10:15:00.000Z", "2024-05-01T10:15:00+00:00"),  # JavaScript
    ("5/2/2024", "2024-05-02"), ("May 2, 2024", "2024-05-02"), ("20240502", "2024-05-02"),  # dates stay dates
    ("5/2/2024 0:00", "2024-05-02T00:00:00"), ("2024-05-02 00:00:00", "2024-05-02T00:00:00"),
    ("2024-5-2", "2024-05-02"), ("02-MAY-2024", "2024-05-02"), ("2 May 2024 10:15", "2024-05-02T10:15:00"),
    ("Thu, 02 May 2024 10:15:00 GMT", "2024-05-02T10:15:00+00:00"),  # HTTP, e-mail, JavaScript's toUTCString()
    ("Thu, 2 May 2024 10:15 +0200", "2024-05-02T10:15:00+02:00"),
    ("May  2 2024 10:15PM", "2024-05-02T22:15:00"),  # SQL Server's datetime as text
    ("Jan 5, 2024", "2024-01-05"), ("Friday, January 5, 2024", "2024-01-05"),  # as spreadsheets show dates
    ("Jan 5, 2024 1:05 PM", "2024-01-05T13:05:00"), ("January 5, 2024 1:05:09 AM", "2024-01-05T01:05:09"),
    ("5/1/2024, 10:15:00 PM", "2024-05-01T22:15:00"), ("Jan 5, 2024, 10:15 AM", "2024-01-05T10:15:00"),  # toLocaleString()
    ("5/1/2024, 10:15", "2024-05-01T10:15:00"),
    ("Fri Jan 05 2024 10:15:00 GMT+0100 (Central European Standard Time)", "2024-01-05T10:15:00+01:00"),  # String(date)
    ("Fri Jan 05 2024 10:15:00 GMT-0500", "2024-01-05T10:15:00-05:00"),
    ("2024-05-01 10:15:00 +0000 UTC", "2024-05-01T10:15:00+00:00"),  # Go's time.Time
    ("2024-05-01 10:15:00.5 -0700 MST", "2024-05-01T10:15:00.500000-07:00"),
    ("20240501101500", "2024-05-01T10:15:00"),  # SAP and many logs
    ("/Date(1714558500000)/", "2024-05-01T10:15:00+00:00"),  # Microsoft's JSON (ASP.NET, WCF, SharePoint)
    ("/Date(1714558500000+0200)/", "2024-05-01T10:15:00+00:00"),  # the zone it was shown in: the same instant
])
def test_datetimes_in_common_formats_become_iso_8601(raw, expected):
    assert to_datetime(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("05/01/2024", "2024-01-05"), ("25/12/2024 18:30", "2024-12-25T18:30:00"), ("5/1/2024 10:15 PM", "2024-01-05T22:15:00"),
    ("01.05.2024", "2024-05-01"), ("2024/05/01", "2024-05-01"), ("2024-05-01 10:15:00", "2024-05-01T10:15:00"),  # unchanged
])
def test_dates_with_slashes_are_read_day_first_when_asked(raw, expected):
    assert to_datetime(raw, day_first=True) == expected
    converter = RowConverter(SCHEMA, day_first=True)
    good, bad = converter.convert_rows(["id", "joined"], [["c1", raw], ["c2", "2024-05-01 10:15:00"]])
    assert bad == [] and good[0][1]["joined"] == expected


@pytest.mark.parametrize("raw, expected", [
    ("2024-05-01 10:15:00", "2024-05-01T10:15:00-04:00"), ("2024-01-15 10:15:00", "2024-01-15T10:15:00-05:00"),  # summer time
    ("2024-01-15T10:15:00", "2024-01-15T10:15:00-05:00"), ("5/1/2024 10:15 PM", "2024-05-01T22:15:00-04:00"),
    ("2024-05-01", "2024-05-01"), ("5/1/2024", "2024-05-01"),  # a date stays a date
    ("2024-05-01T10:15:00Z", "2024-05-01T10:15:00+00:00"), ("2024-05-01 10:15:00 -0700", "2024-05-01T10:15:00-07:00"),
    (1714557600, "2024-05-01T10:00:00+00:00"),  # an instant already
])
def test_a_time_written_without_an_offset_is_sent_with_the_offset_of_the_time_zone_set(raw, expected):
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/New_York")
    assert to_datetime(raw, zone=zone) == expected
    converter = RowConverter(SCHEMA, zone=zone)
    column = [raw, "2024-05-01 10:15:00"] if isinstance(raw, str) else [str(raw), "2024-05-01 10:15:00"]
    good, bad = converter.convert_rows(["id", "joined"], [["c1", column[0]], ["c2", column[1]]])
    assert bad == [] and [row["joined"] for _, row in good] == [expected, "2024-05-01T10:15:00-04:00"]
    assert converter.convert({"id": "c1", "joined": raw}) == ({"id": "c1", "joined": expected}, [])
    assert RowConverter(SCHEMA).convert_rows(["id", "joined"], [["c2", column[1]]])[0][0][1]["joined"] == \
        "2024-05-01T10:15:00"  # no zone set: sent as written


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu",
                                  "America/Santiago"])  # half-hour summer time, +05:45, changes at midnight
def test_every_local_time_of_two_years_gets_the_offset_its_zone_has_then(zone):
    import datetime as dt
    from zoneinfo import ZoneInfo

    from martech.monetate_rows import _datetime_column

    zone = ZoneInfo(zone)
    start = dt.datetime(2023, 6, 1)
    times = [(start + dt.timedelta(minutes=17 * n, seconds=n % 60)).isoformat(sep=" ") for n in range(62_000)]
    expected = [dt.datetime.fromisoformat(time).replace(tzinfo=zone).isoformat() for time in times]
    assert _datetime_column(times, zone=zone) == expected  # a column of the usual shape
    assert _datetime_column(times[:500] + [""], zone=zone) == expected[:500] + [None]  # each on its own


@pytest.mark.parametrize("raw", ["2024-05-01 10:15:00 CET", "5/1/2024 10:15 EST", "2024-05-01T10:15:00 Europe/Paris"])
def test_a_time_zone_given_by_name_is_refused_saying_to_write_its_offset(raw):
    with pytest.raises(InvalidValue, match=re.escape(f"found {raw!r}, a time zone by name, which may mean more than one"
                                                     " offset: write the offset (+01:00) or UTC")):
        to_datetime(raw)


def test_only_values_short_enough_to_be_dates_are_kept_in_the_cache():
    from martech.monetate_rows import _written_datetime

    _written_datetime.cache_clear()
    for raw in ("05/01/2024", "x" * 65, "y" * 1_000_000):
        with contextlib.suppress(InvalidValue):
            to_datetime(raw)
    assert _written_datetime.cache_info().currsize == 1


def test_dates_with_slashes_are_month_first_unless_asked():
    assert to_datetime("05/01/2024") == "2024-05-01"
    good, bad = RowConverter(SCHEMA).convert_rows(["id", "joined"], [["c1", "25/12/2024"]])
    assert good == [] and bad[0][1][0].endswith("found '25/12/2024', which reads day first: set DATE_ORDER=day-first")
    with pytest.raises(InvalidValue, match="found '12/25/2024', which reads month first: set DATE_ORDER=month-first$"):
        to_datetime("12/25/2024", day_first=True)
    with pytest.raises(InvalidValue, match="found '31/31/2024'$"):  # in neither order: no hint
        to_datetime("31/31/2024")


@pytest.mark.parametrize("raw, hint", [
    ("5/1/24", "whose year has two digits, which could be of any century: write all four, '5/1/2024'"),
    ("02-MAY-24", "whose year has two digits, which could be of any century: write all four, '02-MAY-2024'"),
    ("3/9/85 10:15 PM", "whose year has two digits, which could be of any century: write all four, '3/9/1985 10:15 PM'"),
    ("25/12/24", "whose year has two digits, which could be of any century: write all four, '25/12/2024',"
                 " which reads day first: set DATE_ORDER=day-first"),
    ("0000-00-00 00:00:00", "MySQL's zero date, which means no date: leave it out, or name it in CSV_NULLS to read"
                            " such CSV cells as empty"),
    ("45413", "which looks like a spreadsheet's date serial, '2024-05-01': format the column as a date before saving"
              " the file"),
    ("45413.4270833", "which looks like a spreadsheet's date serial, '2024-05-01'"),
])
def test_dates_no_format_reads_are_refused_saying_what_they_look_like(raw, hint):
    with pytest.raises(InvalidValue, match=f"found {re.escape(repr(raw))}, {re.escape(hint)}"):
        to_datetime(raw)


@pytest.mark.parametrize("raw", ["31/31/24", "5/1/24 10:15 XYZ", "1234", "123456", "2024-05-01 24:00:00"])
def test_a_date_no_hint_fits_is_refused_with_the_reason_alone(raw):
    with pytest.raises(InvalidValue, match=f"found {re.escape(repr(raw))}$"):
        to_datetime(raw)


@pytest.mark.parametrize("raw", ["not a date", "2024-13-01", "31/31/2024", True, "17145576000", "171455760",
                                 "Monday, January 5, 2024", "Fri Jan 05 2024 10:15:00 GMT+01",
                                 "2024-05-01 10:15:00 +0000 Europe/Paris", "5/1/2024,10:15", "20241301101500",
                                 "/Date(99999999999999999)/", "/Date(x)/",
                                 "2024-05-01 10:15:00 CET", "2024-05-01 10:15:00 +7", "02-MAY-24",
                                 "Xyz, 02 May 2024 10:15:00 GMT", "Thu, 31 Feb 2024 10:15:00 GMT",
                                 "Thu, 02 May 24 10:15:00 GMT", "Thu, 02 May 2024 10:15:00 CEST",
                                 10**20, -(10**20), 253402300800000, float("nan")])
def test_unreadable_datetimes_are_refused(raw):
    with pytest.raises(InvalidValue):
        to_datetime(raw)


@pytest.mark.parametrize("raw, expected", [("true", True), ("FALSE", False), ("1", True), ("0", False),
                                           ("yes", True), ("No", False), (True, True),
                                           ("1.0", True), ("0.0", False), (1.0, True)])  # pandas: 0/1 with NaN as floats
def test_booleans(raw, expected):
    assert to_boolean(raw) is expected


@pytest.mark.parametrize("raw", ["maybe", "2", ""])
def test_unreadable_booleans_are_refused(raw):
    with pytest.raises(ValueError):
        to_boolean(raw)


@pytest.mark.parametrize("raw, expected", [("12", 12), ("12.5", 12.5), (" -3 ", -3), (7, 7), ("1e3", 1000.0),
                                           ("18446744073709551615", 18446744073709551615),
                                           ("123456789012345678901234567890", 1.2345678901234568e+29), (2**70, 2.0**70)])
def test_numbers(raw, expected):
    assert to_number(raw) == expected and type(to_number(raw)) is type(expected)


@pytest.mark.parametrize("raw", ["lots", "nan", "inf", True, "1,5", "9" * 400, "9" * 5000, 10**400, "1_000", "12_34.5"])
def test_unreadable_numbers_are_refused(raw):
    with pytest.raises(InvalidValue):
        to_number(raw)


@pytest.mark.parametrize("raw", ["12,50", "1.234,50", "1 234", "1'234.50", "1_000", "-3,5"])
def test_a_number_written_with_a_decimal_comma_or_grouped_thousands_is_refused_saying_how_to_write_it(raw):
    with pytest.raises(InvalidValue, match=re.escape(f"found {raw!r}, a decimal comma or grouped thousands: write digits and"
                                                     " a decimal point alone (1234.50)")):
        to_number(raw)


@pytest.mark.parametrize("raw, hint", [
    ("€12.50", "a currency sign: write the number alone, '12.50'"),
    ("-$5", "a currency sign: write the number alone, '-5'"),
    ("12 €", "a currency sign: write the number alone, '12'"),
    ("$1,250.50", "a currency sign and a decimal comma or grouped thousands: write digits and a decimal point alone (1234.50)"),
    ("12.5%", "a percent sign: write the number alone, '12.5', or as a fraction '0.125'"),
    ("(100)", "accounting's brackets for a negative number: write the number alone, '-100'"),
    ("($1,250.00)", "a currency sign, accounting's brackets for a negative number and a decimal comma or grouped"
                    " thousands: write digits and a decimal point alone (1234.50)"),
    ("N/A", "which means no value: leave it out, or name it in CSV_NULLS to read such CSV cells as empty"),
    ("#DIV/0!", "a spreadsheet's error: mend its formula, or name it in CSV_NULLS to read such CSV cells as empty"),
])
def test_a_number_written_with_signs_or_no_value_is_refused_saying_what_is_in_the_way(raw, hint):
    with pytest.raises(InvalidValue, match=f"^expected a number, found {re.escape(repr(raw))}, {re.escape(hint)}$"):
        to_number(raw)
    good, bad = RowConverter(SCHEMA).convert_rows(["id", "spend"], [["c1", raw]])  # a file's column: the same reason
    assert good == [] and bad[0][1] == [f"spend: expected a number, found {raw!r}, {hint}"]


@pytest.mark.parametrize("raw", ["USD 12", "$", "%", "()", "lots", "12 apples"])
def test_a_number_no_hint_fits_is_refused_with_the_reason_alone(raw):
    with pytest.raises(InvalidValue, match=f"found {re.escape(repr(raw))}$"):
        to_number(raw)


def test_a_spreadsheet_error_in_a_text_field_sets_its_row_aside_so_failed_lookups_do_not_become_one_customer():
    good, bad = RowConverter(SCHEMA).convert_rows(["id", "tier"], [["#N/A", "gold"], ["c2", " #ref! "], ["#c3", "#vip"]])
    assert good == [(2, {"id": "#c3", "tier": "#vip"})]  # a # alone is text
    assert bad == [(0, ["id: expected text, found '#N/A', a spreadsheet's error: mend its formula, or name it in"
                        " CSV_NULLS to read such CSV cells as empty"]),
                   (1, ["tier: expected text, found '#ref!', a spreadsheet's error: mend its formula, or name it in"
                        " CSV_NULLS to read such CSV cells as empty"])]


def test_a_long_number_a_spreadsheet_rounded_to_its_display_sets_its_row_aside_so_ids_do_not_merge():
    good, bad = RowConverter(SCHEMA).convert_rows(["id", "tier"], [["123456789012", "a"], ["1.23457E+11", "b"],
                                                                  ["1.23457E+11", "c"], ["c4", "4.15555E+09"],
                                                                  ["c5", "1E+5 club"]])
    assert [row["id"] for _, row in good] == ["123456789012", "c5"]
    assert [index for index, _ in bad] == [1, 2, 3]
    assert bad[0][1] == ["id: expected text, found '1.23457E+11', a long number as a spreadsheet shows it, rounded to"
                         " six figures: format the column as text before saving the file, which holds what the sheet shows"]


def test_an_id_pandas_wrote_as_a_float_sets_its_row_aside_while_other_text_may_end_in_dot_zero():
    good, bad = RowConverter(SCHEMA).convert_rows(["id", "tier"], [["1001.0", "a"], ["1001", "10.0"], ["v1.0", "b"]])
    assert [row for _, row in good] == [{"id": "1001", "tier": "10.0"}, {"id": "v1.0", "tier": "b"}]
    assert bad == [(0, ["id: expected an id, found '1001.0', a whole number written as a float, as pandas writes an"
                        " integer column that holds a blank: write the ids as integers (in pandas, as the dtype Int64)"])]
    assert RowConverter(SCHEMA).convert({"id": 1001.0})[1][0].startswith("id: expected an id, found '1001.0'")  # JSON


def test_zero_width_characters_around_a_value_are_no_part_of_it_as_a_value_copied_from_a_page_holds_them():
    rows = [["C-1\u200b", "\ufeffgold", "1\u200b"], ["\u200b", "x", "2"], ["C-3", " \u200b ", "\u2060"],
            ["Zo\u00eb", "caf\u00e9", "3"]]
    good, bad = RowConverter(SCHEMA).convert_rows(["id", "tier", "spend"], rows)
    assert good == [(0, {"id": "C-1", "tier": "gold", "spend": 1}), (2, {"id": "C-3"}),
                    (3, {"id": "Zo\u00eb", "tier": "caf\u00e9", "spend": 3})]
    assert bad == [(1, ["id: required but empty or missing"])]
    assert [RowConverter(SCHEMA).convert(dict(zip(["id", "tier", "spend"], row, strict=True))) for row in rows] == [
        ({"id": "C-1", "tier": "gold", "spend": 1}, []), (None, ["id: required but empty or missing"]),
        ({"id": "C-3"}, []), ({"id": "Zo\u00eb", "tier": "caf\u00e9", "spend": 3}, [])]


def test_nan_text_is_refused_as_no_value_and_every_type_names_the_words_for_none():
    with pytest.raises(InvalidValue, match=re.escape("expected a finite number, found 'NaN', which means no value: leave it"
                                                     " out, or name it in CSV_NULLS to read such CSV cells as empty")):
        to_number(" NaN ")
    with pytest.raises(InvalidValue, match=re.escape("found 'NULL', which means no value: leave it out")):
        to_boolean("NULL")
    with pytest.raises(InvalidValue, match=re.escape("found '\\\\N', which means no value: leave it out, or name")):
        to_datetime("\\N")  # as Hive and MySQL write no value
    with pytest.raises(InvalidValue, match="^expected a finite number$"):  # a float, not text: nothing to quote
        to_number(float("nan"))


@pytest.mark.parametrize("raw, expected", [("a, b ,c", "a,b,c"), (["x", " y "], "x,y"), ("solo", "solo"),
                                           ("a,,b", "a,b")])
def test_multi_strings_from_lists_or_comma_strings(raw, expected):
    assert to_multi_string(raw) == expected


@pytest.mark.parametrize("raw, expected", [('["a","b"]', "a,b"), ('[ "a", 2, null, "" ]', "a,2"),  # as Snowflake unloads an ARRAY
                                           ("[beta],[alpha]", "[beta],[alpha]"), ("[x]", "[x]")])  # text with brackets of its own
def test_a_multi_string_written_as_a_json_list_is_read_as_its_items(raw, expected):
    assert to_multi_string(raw) == expected
    good, bad = RowConverter(SCHEMA).convert_rows(["id", "tags"], [["c1", raw], ["c2", "x,y"]])  # a file's column: the same
    assert bad == [] and [row["tags"] for _, row in good] == [expected, "x,y"]


@pytest.mark.parametrize("raw, reason", [
    ("['a', 'b']", "a list as Python writes it: write its items comma-separated (a,b) or as JSON ([\"a\",\"b\"])"),
    ('{a,"b c"}', "an array as Postgres writes it: write its items comma-separated (a,b), as array_to_string(column, ',')"
                  " does, or as JSON (array_to_json)"),
    ('["a", ["b"]]', "expected text, found an array"),
])
def test_a_multi_string_written_as_python_or_postgres_write_lists_is_refused_saying_how_to_write_it(raw, reason):
    with pytest.raises(InvalidValue, match=f"^{re.escape(reason)}$"):
        to_multi_string(raw)
    good, bad = RowConverter(SCHEMA).convert_rows(["id", "tags"], [["c1", raw], ["c2", "x,y"]])
    assert [row["tags"] for _, row in good] == ["x,y"] and bad == [(0, [f"tags: {reason}"])]


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


def test_unknown_columns_reject_the_row_by_default_naming_a_near_field():
    row, reasons = RowConverter(SCHEMA).convert({"id": "c1", "shoe_size": "42", "spnd": "1"})
    assert row is None
    assert reasons == ["shoe_size: not a field of schema customers",
                       "spnd: not a field of schema customers (did you mean spend?)"]


def test_a_field_named_in_another_case_is_that_field_as_warehouses_export_headers():
    converter = RowConverter(SCHEMA)
    assert converter.convert({"ID": "c1", "Spend": "2", "VIP": "y"}) == ({"id": "c1", "spend": 2, "vip": True}, [])
    assert converter.column_problems(["ID", "TIER", "SPEND"]) == []
    good, bad = converter.convert_rows(["ID", "SPEND"], [["c1", "2"], ["c2", "lots"]])
    assert good == [(0, {"id": "c1", "spend": 2})] and bad == [(1, ["spend: expected a number, found 'lots'"])]
    assert converter.convert_many([{"ID": "c1"}, {"id": "c2", "Tier": "gold"}]) == (
        [(0, {"id": "c1"}), (1, {"id": "c2", "tier": "gold"})], [])


@pytest.mark.parametrize("record, unknown", [
    ({"id": "c1", "SPEND": "1", "spend": "2"}, "SPEND"),  # named as it is too: that one holds it
    ({"id": "c1", "SPEND": "1", "Spend": "2"}, "SPEND"),  # in two other cases: neither says which
])
def test_a_field_named_in_another_case_twice_over_is_not_guessed(record, unknown):
    row, reasons = RowConverter(SCHEMA).convert(record)
    assert f"{unknown}: not a field of schema customers (did you mean spend?)" in reasons


def test_a_schema_holding_one_name_in_two_cases_matches_neither_by_case():
    schema = Schema.from_api({"name": "s", "fields": {"id": {"data_type": "STRING", "identifier": True},
                                                      "Email": {"data_type": "STRING"}, "email": {"data_type": "STRING"}}})
    assert RowConverter(schema).convert({"id": "1", "EMAIL": "a"})[1] == [
        "EMAIL: not a field of schema s (did you mean email?)"]


def test_the_names_no_field_holds_in_any_case_are_unknown_unless_unknown_columns_are_dropped():
    assert RowConverter(SCHEMA).unknown(["id", "SPEND", "points", "Tier", "vip_level"]) == ["points", "vip_level"]
    assert RowConverter(SCHEMA, unknown_columns="drop").unknown(["id", "points"]) == []


def test_unknown_columns_can_be_dropped_instead():
    row, reasons = RowConverter(SCHEMA, unknown_columns="drop").convert({"id": "c1", "shoe_size": "42"})
    assert row == {"id": "c1"} and reasons == []


def test_columns_under_which_no_row_can_be_sent_are_named_with_a_near_field():
    converter = RowConverter(SCHEMA)
    assert converter.column_problems(["id", "tier", "spend"]) == []
    assert converter.column_problems(["ids", "tiers", "shoe_size"]) == [
        "ids: not a field of schema customers (did you mean id?)",
        "tiers: not a field of schema customers (did you mean tier?)",
        "shoe_size: not a field of schema customers"
        "; UnknownColumns=drop would leave out the columns the schema does not have",
        "id: required, but no column holds it"]
    assert RowConverter(SCHEMA, unknown_columns="drop").column_problems(["id", "shoe_size"]) == []


def test_required_fields_beyond_identifier_and_unique_key():
    schema = Schema.from_api({"name": "s", "fields": {"id": {"data_type": "STRING", "identifier": True},
                                                      "email": {"data_type": "STRING", "required": True}}})
    _, reasons = RowConverter(schema).convert({"id": "c1"})
    assert reasons == ["email: required but empty or missing"]


# Values files hold, the usual and the odd: each column converter must agree with the careful one.
ODD_VALUES = {
    "id": ["c1", " c2 ", "", "  ", None, 7, True, ["x"], {"a": 1}, "#N/A", "#c3", "1.23457E+11", "E+1", "1001.0",
           1001.0, "v1.0", "c4\u200b", "\u200b"],
    "tier": ["gold", "", " silver", None, 3.5, False, "#REF!", "#vip", "\ufeffgold", "caf\u00e9", " \u200b "],
    "tags": ["a,b", "a, b", "a,,b", ",a", "a,", "solo", " x ", "", "a,\tb", ["x", "y"], ["a,b"], None, 4,
             '["a","b"]', "['a', 'b']", "{a,b}", "[beta],[alpha]", "[x]", '[["a"]]', "[]"],
    "spend": ["10", "10.5", "-3", "1e3", "1.5e3", " 7 ", "7.", ".5", "nan", "inf", "1.0e999", "x", "", "1_000",
              "٣", 12, 2.5, True, None, float("nan"), "18446744073709551615", "18446744073709551616",
              "-9223372036854775809", "9" * 400, "9" * 5000, 2**64, -(2**70), "12_34.5", "1_2", "$12.50", "12%", "(100)",
              "N/A", "NaN"],
    "vip": ["yes", "No", "TRUE", "t", "1", "0", " yes", "maybe", "", True, False, 1, 1.0, None, ["y"], "1.0", "0.0", "2.0"],
    "joined": ["2024-05-01 10:15:00", "2024-05-01T10:15:00", "2024-13-01 10:15:00", "2024-05-01T10:15:0Z",
               "2024-05-01", "2024-05-01T10:00:00Z", "2024-05-01 10:15:00.5", "05/02/2024", "2024-W01-1",
               "2024-05-01T10:15:00+02:00", "soon", "", 1714557600, True, None, "2024-02-30 10:15:00",
               "2024-05-01 10:15:00\n", "2024-05-01 10:15:0\u0663", "2024-05-01 10 15:00", " 2024-05-01 10:15:0",
               "2024-W01-1T10:15:00", "2024-05-01T10:15+02", "2024-05-01\t10:15:00", "1714557600", "1714557600000",
               "1714557600.5", "17145576000", 10**20, -(10**20), 253402300800, 2**64, float("inf"), "9999999999999",
               "Jan 5, 2024", "5/1/2024, 10:15 AM", "5/1/24", "45413", "0000-00-00 00:00:00", "N/A",
               "2024-05-01 10:15:00 +0000 UTC", "20240501101500", "/Date(1714558500000)/"],
}


def _as_json(rows):
    return orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)  # where 10 and 10.0 differ, unlike ==


def _assert_batch_converts_like_each_record(converter, records):
    good, bad = converter.convert_many(records)
    one_by_one = [converter.convert(record) for record in records]
    expected = [(i, row) for i, (row, reasons) in enumerate(one_by_one) if not reasons]
    assert _as_json(good) == _as_json(expected), records
    assert bad == [(i, reasons) for i, (row, reasons) in enumerate(one_by_one) if reasons], records


def test_converting_a_batch_column_by_column_agrees_with_converting_each_record():
    import random

    rng = random.Random(7)
    converter = RowConverter(SCHEMA)
    fields = list(ODD_VALUES)
    for _ in range(300):
        records = []
        for _ in range(rng.randint(1, 12)):
            record = {name: rng.choice(ODD_VALUES[name]) for name in fields if rng.random() < 0.9}
            if rng.random() < 0.05:
                record["shoe_size"] = "42"
            records.append(record)
        _assert_batch_converts_like_each_record(converter, records)


@pytest.mark.parametrize("unknown_columns", ["reject", "drop"])
def test_converting_csv_rows_agrees_with_converting_each_record(unknown_columns):
    import random

    rng = random.Random(11)
    converter = RowConverter(SCHEMA, unknown_columns)
    text = {name: [v for v in values if isinstance(v, str)] for name, values in ODD_VALUES.items()}
    for _ in range(300):
        columns = [name for name in text if rng.random() < 0.85] + (["shoe_size"] if rng.random() < 0.1 else [])
        rows = [[rng.choice(text.get(name, ["42"])) for name in columns] for _ in range(rng.randint(0, 12))]
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        one_by_one = [converter.convert(record) for record in records]
        good, bad = converter.convert_rows(columns, rows)
        assert _as_json(good) == _as_json([(i, row) for i, (row, reasons) in enumerate(one_by_one) if not reasons])
        assert bad == [(i, reasons) for i, (row, reasons) in enumerate(one_by_one) if reasons], (columns, rows)


def test_one_odd_value_in_an_ordinary_batch_converts_as_it_would_alone():
    # Ordinary columns take the fast paths whole: every odd value is tried in every position of one.
    converter = RowConverter(SCHEMA)
    ordinary = {"id": "c0", "tier": "gold", "tags": "a,b", "spend": "1.5", "vip": "yes", "joined": "2024-05-01 10:15:00"}
    for name, values in ODD_VALUES.items():
        for value in values:
            for position in range(3):
                records = [{**ordinary, "id": f"c{i}"} for i in range(3)]
                records[position][name] = value
                _assert_batch_converts_like_each_record(converter, records)


def test_a_batch_whose_unknown_columns_are_dropped_converts_like_each_record():
    converter = RowConverter(SCHEMA, unknown_columns="drop")
    records = [{"id": "c1", "shoe_size": "42"}, {"shoe_size": "41"}]
    assert converter.convert_many(records) == ([(0, {"id": "c1"})], [(1, ["id: required but empty or missing"])])


def test_a_batch_with_field_names_that_need_quoting_converts_like_each_record():
    names = ["it's", 'say "hi"', "back\\slash", "new\nline", "ünï{c}", "v0"]
    schema = Schema.from_api({"name": "s", "fields": {
        name: {"data_type": "STRING", **({"identifier": True} if i == 0 else {})} for i, name in enumerate(names)}})
    converter = RowConverter(schema)
    records = [{name: f" {name}-{i} " for name in names} for i in range(3)]
    good, bad = converter.convert_many(records)
    assert bad == []
    assert good == [(i, {name: f"{name}-{i}" for name in names}) for i in range(3)]
    assert list(good[0][1]) == names  # the row keeps the schema's field order


@pytest.mark.parametrize("field, values", [
    ("spend", ["$12.50", "$13", "€7.25"]), ("spend", ["12%", "7.5%"]), ("spend", ["(100)", "(2.50)"]),
    ("spend", ["N/A", "NULL", "-"]), ("joined", ["5/1/24", "12/31/99 10:15"]), ("joined", ["45413", "45414.5"]),
    ("joined", ["0000-00-00", "0000-00-00 00:00:00"]), ("vip", ["N/A", "null"]),
])
def test_rows_refused_alike_count_as_one_reason_in_the_report_whatever_their_values(field, values):
    from martech.reports import reason_kind

    good, bad = RowConverter(SCHEMA).convert_rows(["id", field], [[f"c{n}", value] for n, value in enumerate(values)])
    assert good == [] and len(bad) == len(values)
    assert len({reason_kind(reasons[0]) for _, reasons in bad}) == 1, [reasons for _, reasons in bad]
