"""Records to Mona messages: contextId, timestamps, actions, reserved fields."""

import pytest

from martech.mona_messages import MessageBuilder, check_export_message, to_epoch_seconds
from martech.settings import Settings


@pytest.mark.parametrize("value, expected", [
    (1714557600, 1714557600.0), (1714557600.5, 1714557600.5), (1714557600123, 1714557600.123),
    ("1714557600", 1714557600.0), ("2024-05-01T10:00:00Z", 1714557600.0), ("2024-05-01T12:00:00+02:00", 1714557600.0),
    ("2024-05-01 10:00:00", 1714557600.0), ("2024-05-01 10:00:00 UTC", 1714557600.0),
    ("2024-05-01 03:00:00.000 -0700", 1714557600.0),
    ("5/1/2024 10:00", 1714557600.0), ("05/01/2024 10:00:00 AM", 1714557600.0), ("01.05.2024 10:00", 1714557600.0),
    ("2024-5-1", 1714521600.0), ("1 May 2024", 1714521600.0),  # as spreadsheets write them, as DATETIME reads them
    ("20240501", 1714521600.0), ("20240501100000", 1714557600.0), ("/Date(1714557600000)/", 1714557600.0),
])
def test_timestamps(value, expected):
    assert to_epoch_seconds(value) == pytest.approx(expected)


def test_dates_with_slashes_are_read_day_first_when_asked():
    assert to_epoch_seconds("01/05/2024 10:00", day_first=True) == pytest.approx(1714557600.0)  # 1 May
    assert to_epoch_seconds("01/05/2024 10:00") == pytest.approx(1704448800.0)  # 5 January, month first
    with pytest.raises(ValueError, match="'25/12/2024' is not .*, which reads day first: set DATE_ORDER=day-first$"):
        to_epoch_seconds("25/12/2024")


@pytest.mark.parametrize("value, reason", [
    ("45413", "'45413' is not Unix seconds (10 digits) or milliseconds (13 digits), which looks like a spreadsheet's"
              " date serial, '2024-05-01': format the column as a date before saving the file"),
    ("5/1/24 10:15", "whose year has two digits, which could be of any century: write all four, '5/1/2024 10:15'"),
    (45413, "45413 is not Unix seconds (10 digits) or milliseconds (13 digits)"),  # a JSON number: no guess at a spreadsheet
    ("N/A", "which means no value: leave it out, or name it in CSV_NULLS to read such CSV cells as empty"),
    ("NaN", "'NaN' is not Unix seconds (10 digits) or milliseconds (13 digits), which means no value: leave it out,"
            " or name it in CSV_NULLS to read such CSV cells as empty"),
    ("last tuesday", "'last tuesday' is not Unix seconds or milliseconds, ISO-8601 or a common date format (05/01/2024 10:15)"),
])
def test_a_timestamp_that_does_not_read_says_what_it_looks_like(value, reason):
    with pytest.raises(ValueError) as refused:
        to_epoch_seconds(value)
    assert str(refused.value).endswith(reason)


def test_a_time_sent_as_mona_reads_it_names_only_the_forms_mona_reads():
    with pytest.raises(ValueError) as refused:
        to_epoch_seconds("5/1/2024", common_forms=False)
    assert str(refused.value) == "'5/1/2024' is not Unix seconds, milliseconds or ISO-8601"


@pytest.mark.parametrize("value", [12345, 17145576001234567, "yesterday", True, float("nan"), -1714557600, "5/1/24",
                                   "20241301", 12345678])
def test_bad_timestamps(value):
    with pytest.raises(ValueError):
        to_epoch_seconds(value)


def build(record, **settings):
    return MessageBuilder(Settings(**settings)).build(record, "orders", 1700000000.0)


def test_a_time_written_without_an_offset_is_read_in_the_time_zone_set_else_in_utc():
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    assert to_epoch_seconds("2024-05-01 12:00", zone=paris) == pytest.approx(1714557600.0)  # 10:00 UTC, summer time
    assert to_epoch_seconds("2024-01-15T11:00:00", zone=paris) == pytest.approx(1705312800.0)  # 10:00 UTC in winter
    assert to_epoch_seconds("2024-05-01T10:00:00Z", zone=paris) == pytest.approx(1714557600.0)  # an offset wins
    assert to_epoch_seconds(1714557600, zone=paris) == 1714557600.0
    assert to_epoch_seconds("2024-05-01 10:00") == pytest.approx(1714557600.0)  # no zone set: UTC
    record = {"id": "o-1", "exportTimestamp": "2024-05-01 12:00", "score": 1}
    assert build(record, time_zone=paris)[0]["exportTimestamp"] == pytest.approx(1714557600.0)


def test_a_message_in_monas_form_has_a_time_without_an_offset_read_in_the_time_zone_set():
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    message = {"arcClass": "orders", "contextId": "o-1", "message": {"score": 1},
               "exportTimestamp": "2024-05-01T12:00:00", "sendTimestamp": "2024-01-15 11:00:00"}
    sent, reasons = build(message, time_zone=paris)
    assert reasons == []
    assert sent["exportTimestamp"] == pytest.approx(1714557600.0) and sent["sendTimestamp"] == pytest.approx(1705312800.0)
    kept = {**message, "exportTimestamp": "2024-05-01T10:00:00Z", "sendTimestamp": 1714557600}  # unambiguous: as written
    assert build(kept, time_zone=paris)[0] | {"action": None} == kept | {"action": None}
    assert build({**message, "exportTimestamp": "1714557600"}, time_zone=paris)[0]["exportTimestamp"] == "1714557600"
    assert build(message)[0]["exportTimestamp"] == "2024-05-01T12:00:00"  # no zone set: as Mona reads it, UTC


def test_a_file_time_written_with_slashes_is_read_day_first_when_date_order_says_so():
    record = {"id": "o-1", "exportTimestamp": "01/05/2024 10:00", "score": 1}
    assert build(record, date_order="day-first")[0]["exportTimestamp"] == pytest.approx(1714557600.0)  # 1 May
    assert build(record)[0]["exportTimestamp"] == pytest.approx(1704448800.0)  # 5 January


def test_context_id_from_the_first_configured_field_present():
    message, _ = build({"id": "o-1", "score": 1})
    assert message == {"arcClass": "orders", "contextId": "o-1", "message": {"score": 1}, "action": "OVERWRITE",
                       "exportTimestamp": 1700000000.0}
    message, _ = build({"contextId": "c", "id": "o-1", "score": 1})
    assert message["contextId"] == "c" and message["message"] == {"id": "o-1", "score": 1}


def test_a_context_id_with_spaces_around_it_is_the_id_and_blank_cells_are_not_given():
    message, reasons = build({"contextId": " o-1 ", "score": 1})
    assert reasons == [] and message["contextId"] == "o-1"
    message, reasons = MessageBuilder(Settings()).build({"contextId": " ", "id": "o-2", "exportTimestamp": "  ",
                                                         "action": " ", "score": "1"}, "orders", 1.0, from_csv=True)
    assert reasons == [] and message == {"arcClass": "orders", "contextId": "o-2", "message": {"score": 1},
                                         "action": "OVERWRITE", "exportTimestamp": 1.0}


def test_configured_fields_and_defaults():
    message, _ = build({"order": "o9", "when": "2024-05-01T10:00:00Z", "kind": "ADD", "v": 1},
                       mona_context_fields="order", mona_timestamp_field="when", mona_action_field="kind")
    assert (message["contextId"], message["exportTimestamp"], message["action"]) == ("o9", 1714557600.0, "ADD")
    assert build({"v": 1}, mona_default_action="NEW")[0]["action"] == "NEW"


def test_a_warehouse_exports_fields_in_capitals_are_the_configured_ones():
    builder = MessageBuilder(Settings())
    for i in range(2):  # the second record of the same shape takes what the first worked out
        message, reasons = builder.build({"ID": f"o{i}", "EXPORTTIMESTAMP": "1714557600", "ACTION": "add", "SCORE": "1"},
                                         "orders", 1.0, from_csv=True)
        assert reasons == [] and message == {"arcClass": "orders", "contextId": f"o{i}", "message": {"SCORE": 1},
                                             "action": "ADD", "exportTimestamp": 1714557600.0}
    message, _ = builder.build({"contextId": "c", "ID": "x"}, "orders", 1.0)  # another shape: as configured
    assert (message["contextId"], message["message"]) == ("c", {"ID": "x"})


def test_a_field_written_in_two_other_cases_is_not_guessed():
    message, _ = build({"Id": "a", "ID": "b", "v": 1})
    assert "contextId" not in message and message["message"] == {"Id": "a", "ID": "b", "v": 1}


@pytest.mark.parametrize("written", ["add", " Add ", "ADD"])
def test_an_action_is_read_in_any_case(written):
    message, reasons = build({"id": "o1", "v": 1, "action": written})
    assert reasons == [] and message["action"] == "ADD"


def test_nulls_can_be_dropped_and_mona_fields_are_renamed():
    message, _ = build({"id": 1, "a": None, "MONA_VALID_CONTEXT": False}, mona_drop_nulls=True)
    assert message["message"] == {"MY_MONA_VALID_CONTEXT": False}
    assert build({"id": 1, "a": None, "b": 2})[0]["message"] == {"a": None, "b": 2}


def test_every_reason_at_once():
    message, reasons = build({"id": 1, "exportTimestamp": "soon", "action": "MERGE", "x": float("inf")})
    assert message is None and len(reasons) == 3


CSV_ROW = {"id": "0042", "exportTimestamp": "1714557600", "score": "0.93", "count": "-3", "big": "1e3", "zip": "02134",
           "amount": "1,234", "label": "fraud", "empty": "", "padded": " 5", "huge": "1e400"}


def test_a_csv_rows_plain_numbers_become_numbers_and_its_blank_cells_are_left_out():
    message, _ = MessageBuilder(Settings()).build(CSV_ROW, "orders", None, from_csv=True)
    assert (message["contextId"], message["exportTimestamp"]) == ("0042", 1714557600.0)  # read as written
    assert message["message"] == {"score": 0.93, "count": -3, "big": 1000.0, "zip": "02134", "amount": "1,234",
                                  "label": "fraud", "padded": " 5", "huge": "1e400"}


def test_a_csv_rows_values_can_stay_text():
    message, _ = MessageBuilder(Settings(csv_values="text")).build(CSV_ROW, "orders", None, from_csv=True)
    assert message["message"] == {k: v for k, v in CSV_ROW.items() if k not in ("id", "exportTimestamp", "empty")}


def test_json_text_stays_text():
    assert build({"id": 1, "score": "0.93", "empty": ""})[0]["message"] == {"score": "0.93", "empty": ""}


def test_a_record_with_nothing_but_its_context_id_is_refused():
    assert build({"id": 1})[1] == ["the message has no fields left to send"]


@pytest.mark.parametrize("message, count", [
    ({"arcClass": "a", "message": {"v": 1}}, 0),
    ({"arcClass": "a", "message": {"v": 1}, "contextId": None, "action": None, "exportTimestamp": None}, 0),
    ({"arcClass": "a b", "message": {}}, 2),
    ({"arcClass": "a", "message": {"v": 1}, "action": "x", "sendTimestamp": 5}, 2),
    ({"arcClass": "a", "message": {"v": 1}, "exportTimestamp": "5/1/2024 10:00"}, 1),  # sent as it is: Mona's forms only
    ("text", 1),
])
def test_export_shaped_messages(message, count):
    assert len(check_export_message(message)) == count


def test_a_record_that_is_a_message_already_is_taken_as_it_is():
    exported = {"arcClass": "orders", "contextId": "o-1", "message": {"label": "fraud", "MONA_x": None}, "action": "ADD",
                "sendTimestamp": None}
    assert build(exported) == ({"arcClass": "orders", "contextId": "o-1", "message": {"label": "fraud", "MONA_x": None},
                                "action": "ADD", "exportTimestamp": 1700000000.0}, [])
    assert build({"arcClass": "orders", "message": {"v": 1}, "exportTimestamp": 1714557600}, mona_default_action="NEW")[0] == {
        "arcClass": "orders", "message": {"v": 1}, "exportTimestamp": 1714557600, "action": "NEW"}


def test_a_message_of_another_context_class_or_not_as_mona_takes_it_is_refused_with_why():
    assert build({"arcClass": "refunds", "message": {"v": 1}}) == (None, [
        "arcClass: 'refunds', where the folder or path says 'orders'; a message of another context class goes under"
        " its own, or to /mona/export"])
    assert build({"arcClass": "orders", "message": {}, "action": "x"})[1] == [
        "message: required, a non-empty JSON object", "action: must be one of OVERWRITE, ADD, NEW"]
    # A field named message alone, or text in it, is a field like any other.
    assert build({"id": "o-1", "message": {"v": 1}})[0]["message"] == {"message": {"v": 1}}
