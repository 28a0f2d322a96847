"""A file's report: its errors and its rows set aside, counted by reason."""

import io


def test_a_report_shows_its_first_and_last_errors_and_counts_the_others():
    from martech.reports import RunReport

    report = RunReport("inbox", "monetate/s/f.csv", None, "monetate")
    report.errors = [f"lines {i}-{i + 499}: the answer was lost" for i in range(0, 300_000, 500)] + ["the key was revoked"]
    shown = report.as_dict()["errors"]
    assert len(shown) == 50 and shown[0] == "lines 0-499: the answer was lost"
    assert shown[40] == "and 552 more errors like those above" and shown[-1] == "the key was revoked"
    few = RunReport("inbox", "k", None, "monetate", errors=["one", "two"])
    assert few.as_dict()["errors"] == ["one", "two"]


def test_rows_set_aside_are_counted_by_reason_whatever_value_each_quotes():
    from martech.reports import OTHER_REASONS, REASONS_COUNTED, RejectedRows

    rows = RejectedRows(None, "inbox", "monetate/s/f.csv")
    for line, value in enumerate(["lots", "many", 'it\'s "x"']):
        rows.add(line, [f"lifetime_value: expected a number, found {value!r}", "customer_id: required"])
    rows.add(9, ["Optimove's reason: the key's 'C1' is unknown"])
    for line, number in enumerate(["99999999999999999", "-1.5e300", "12345"]):  # numbers, as JSON files hold them
        rows.add(line, [f"exportTimestamp: {number} is not Unix seconds (10 digits) or milliseconds (13 digits)"])
        rows.add(line, [f"vip: expected true/false, 1/0 or yes/no, found {number}"])
    assert rows.reasons == {"lifetime_value: expected a number, found '...'": 3, "customer_id: required": 3,
                            "Optimove's reason: the key's '...' is unknown": 1,
                            "exportTimestamp: N is not Unix seconds (10 digits) or milliseconds (13 digits)": 3,
                            "vip: expected true/false, 1/0 or yes/no, found N": 3}
    for line in range(REASONS_COUNTED + 5):
        rows.add(line, [f"reason {line}"])
    assert len(rows.reasons) == REASONS_COUNTED + 1 and rows.reasons[OTHER_REASONS] == 10


def test_rows_set_aside_are_counted_by_reason_whatever_line_column_or_byte_it_names():
    from martech.readers import read_records
    from martech.reports import RejectedRows

    lines = [b"id,tier", b"1,gold", b'2,"silver', b"3,gold", b"4,gold,x", b"4b,gold,x,y", b"5,gr\xfcn", b"6,m\xfcller",
             b"7,caf\xe9"]
    jsonl = [b'{"id": 1}', b'{"id": 2', b'{"id": 3, "x": tru}', b'{"id": 4}']
    rows = RejectedRows(None, "inbox", "mona/a/f.csv")
    for key, data in (("f.csv", lines), ("f.jsonl", jsonl)):
        for record in read_records(io.BytesIO(b"\n".join(data)), key):
            if record.error:
                rows.add(record.line, [record.error])
    hint = ("(it would be '...' in Windows-1252: save the file as UTF-8; Excel calls it CSV UTF-8, or upload it with"
            " Content-Type text/csv; charset=windows-1252)")
    assert rows.reasons == {
        f"not UTF-8 text: byte N of the line is 0x.. {hint}": 3,
        "expected 2 columns as in the header, found N; a value holding a comma is written in double quotes ('...')": 2,
        "malformed CSV: unexpected end of data in a record that runs on to line N; a quote opened on this line is"
        " probably never closed, so lines N are read again as rows of their own": 1,
        "invalid JSON: unexpected end of data at column N": 1, "invalid JSON: invalid literal, expected '...' at column N": 1}
