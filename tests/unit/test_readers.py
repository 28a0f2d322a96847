"""Streaming readers: formats, compression, encodings, line numbers, bad records."""

import bz2
import gzip
import io
import json
import lzma
import tracemalloc
import zipfile

import orjson
import pytest

from martech.readers import CsvOptions, Record, UnreadableFile, detect_format, lines_between, read_records


HINT = " in Windows-1252: save the file as UTF-8; Excel calls it CSV UTF-8"
CSV_HINT = HINT + ", or upload it with Content-Type text/csv; charset=windows-1252)"  # a CSV's charset can be named
E9_AT_4 = "not UTF-8 text: byte 4 of the line is 0xe9 (it would be 'é'" + CSV_HINT


def read(data: bytes, key: str) -> list[Record]:
    return list(read_records(io.BytesIO(data), key))


def refusal(data: bytes, key: str = "x.csv") -> str:
    """Why the file cannot be read: the UnreadableFile it fails with."""
    with pytest.raises(UnreadableFile) as caught:
        read(data, key)
    return str(caught.value)


@pytest.mark.parametrize("key, expected", [
    ("monetate/s/a.csv", ("csv", False)), ("a.CSV.GZ", ("csv", True)), ("a.json", ("json", False)),
    ("a.jsonl", ("jsonl", False)), ("a.ndjson.gz", ("jsonl", True)), ("a.tsv", ("csv", False)),
    ("Export.TXT", ("csv", False)),
])
def test_format_comes_from_the_key(key, expected):
    assert detect_format(key) == expected


@pytest.mark.parametrize("key, named", [("monetate/customers/day_0000_part_00", "0000_part_00"),
                                        ("mona/orders/0012_part_00.gz", "0012_part_00")])
def test_a_file_redshift_unloaded_without_an_extension_says_how_to_have_one(key, named):
    with pytest.raises(UnreadableFile) as caught:
        detect_format(key)
    assert str(caught.value) == (f"{key}: unknown file type; use .csv, .tsv, .txt, .json, .jsonl or .ndjson, optionally"
                                 f" .gz; Redshift's UNLOAD names its files {named}: add EXTENSION 'csv' to it (or"
                                 " 'csv.gz', with FORMAT CSV HEADER)")


@pytest.mark.parametrize("data, values", [
    (b"C-1,gold,12.5\nC-2,silver,3\n", "'12.5'"), (b"o-1,a@b.com,-3\n", "'a@b.com', '-3'"),
    (b"2024-05-01,C-1\n", "'2024-05-01'"), (b"C-1|5/1/2024 10:15|x\n", "'5/1/2024 10:15'"),
])
def test_a_csv_written_without_its_header_fails_saying_its_first_line_holds_values(data, values):
    assert refusal(data) == (f"the CSV header (line 1) holds values, not column names ({values}): the file's first"
                             " line must name its columns (unloads leave it out unless told: HEADER = TRUE in"
                             " Snowflake's COPY INTO, HEADER in Redshift's UNLOAD and in COPY ... TO with psql)")


@pytest.mark.parametrize("data, shown", [
    (b'"customer_id,tier"\n"C-1,gold"\n', "commas ('customer_id,tier')"),
    (b'\xef\xbb\xbf"id;score"\r\n"1;2"\r\n', "semicolons ('id;score')"),
])
def test_a_csv_whose_every_line_was_saved_as_one_quoted_cell_fails_saying_so(data, shown):
    assert refusal(data) == (f"the CSV header (line 1) is one quoted cell holding {shown}: each line was saved as one"
                             " cell, as a spreadsheet saves CSV text pasted into one column; split it into columns"
                             " first (Excel: Data > Text to Columns)")
    assert read(b'"customer_id"\n"C-1,2"\n', "x.csv") == [Record(2, {"customer_id": "C-1,2"})]  # one column, quoted


@pytest.mark.parametrize("header", ["id,2023,2024", "id,v1.2,score-3,e-mail", "customer_id,last_purchase"])
def test_names_that_hold_digits_or_a_year_are_a_header(header):
    names = header.split(",")
    [record] = read(f"{header}\n{','.join(map(str, range(len(names))))}\n".encode(), "x.csv")
    assert record.error is None and list(record.data) == names


def test_unknown_extension_is_an_unreadable_file():
    with pytest.raises(UnreadableFile, match="unknown file type"):
        detect_format("a/b/data.dat")


@pytest.mark.parametrize("key, what", [
    ("a/Book1.xlsx", "an Excel workbook"), ("a/b.xls", "an Excel workbook"), ("a/part-0.snappy.parquet", "a Parquet file"),
    ("a/rows.csv.zip", "a zip archive"), ("a/rows.csv.bz2", "a bzip2-compressed file"),
])
def test_a_file_named_as_a_workbook_archive_or_columnar_file_says_what_to_drop_instead(key, what):
    with pytest.raises(UnreadableFile) as caught:
        detect_format(key)
    assert str(caught.value) == (f"{key}: this is {what}, which is not read here; save or export it as CSV (UTF-8),"
                                 " JSON Lines or a JSON array, gzipped or not")


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


@pytest.mark.parametrize("content, what", [
    (_zip_bytes(), "a zip archive or an Excel workbook (.xlsx)"),
    (bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504), "an Excel workbook (.xls)"),
    (b"PAR1\x15\x00\x15\x8c\x01", "a Parquet file"),
    (bz2.compress(b"id\n1\n"), "a bzip2-compressed file"),
    (lzma.compress(b"id\n1\n"), "an xz-compressed file"),
])
@pytest.mark.parametrize("key", ["in/renamed.csv", "in/renamed.jsonl", "in/renamed.json.gz"])
def test_a_workbook_archive_or_columnar_file_under_a_text_name_is_told_by_its_first_bytes(content, what, key):
    with pytest.raises(UnreadableFile) as caught:
        read(gzip.compress(content) if key.endswith(".gz") else content, key)
    assert str(caught.value).startswith(f"{key}: this is {what}, which is not read here; save or export it as CSV")


def test_text_that_starts_like_a_binary_signature_is_still_text():
    assert read(b"PAR1,Obj\nBZh9,ORC\n", "x.csv") == [Record(2, {"PAR1": "BZh9", "Obj": "ORC"})]
    assert read(b"PK,x\n1,2\n", "x.csv") == [Record(2, {"PK": "1", "x": "2"})]


# -- CSV -----------------------------------------------------------------------------------
def test_csv_records_carry_their_line_numbers():
    records = read(b"id,name\n1,ann\n2,bob\n", "x.csv")
    assert records == [Record(2, {"id": "1", "name": "ann"}), Record(3, {"id": "2", "name": "bob"})]


def test_csv_rows_can_come_as_lists_under_the_header_given_back():
    columns = []
    records = list(read_records(io.BytesIO(b'id,name\n1,ann\n2,bob,x\n3,"c,\nd"\n'), "x.csv", columns=columns))
    assert columns == ["id", "name"]
    assert records[0] == Record(2, ["1", "ann"]) and records[2] == Record(4, ["3", "c,\nd"])
    assert records[1].line == 3 and records[1].error and records[1].data == "2,bob,x"  # still its text
    json_columns = []
    assert read_records(io.BytesIO(b'{"a": 1}\n'), "x.jsonl", columns=json_columns).__next__().data == {"a": 1}
    assert json_columns == []


def test_csv_with_bom_and_crlf():
    records = read("\ufeffid,name\r\n1,ann\r\n2,bob\r\n".encode(), "x.csv")
    assert [r.data for r in records] == [{"id": "1", "name": "ann"}, {"id": "2", "name": "bob"}]


def test_csv_quoted_fields_with_newlines_keep_the_starting_line():
    records = read(b'id,note\n1,"two\nlines"\n2,plain\n', "x.csv")
    assert records[0] == Record(2, {"id": "1", "note": "two\nlines"})
    assert records[1] == Record(4, {"id": "2", "note": "plain"})


def test_csv_row_with_the_wrong_width_is_a_bad_record_and_reading_goes_on():
    records = read(b"id,name\n1,ann,extra\r\n2,bob\n", "x.csv")
    assert records[0].line == 2 and "expected 2 columns" in records[0].error
    assert records[0].data == "1,ann,extra"  # the line as written, to mend and send again
    assert records[1] == Record(3, {"id": "2", "name": "bob"})


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_with_no_comma_in_the_header_takes_the_delimiter_it_has(delimiter):
    data = f'id{delimiter}name\n1{delimiter}"Ann, Jr."\n2{delimiter}"open\n3{delimiter}c\n'.encode()
    records = read(data, "x.csv")
    assert records[0] == Record(2, {"id": "1", "name": "Ann, Jr."})
    assert records[1].line == 3 and records[1].error.endswith("so line 4 is read again as a row of its own")
    assert records[2] == Record(4, {"id": "3", "name": "c"})  # read again with the same delimiter


def test_a_txt_file_is_tab_separated_when_its_header_holds_a_tab_as_excel_exports_text():
    assert read(b"name\tcity, state\r\nAnn\tAlbany, NY\r\n", "exports/Book1.txt") == [
        Record(2, {"name": "Ann", "city, state": "Albany, NY"})]
    assert read("\ufeffid\tname\r\n1\tZoë\r\n".encode("utf-16-le"), "Book1.txt") == [Record(2, {"id": "1", "name": "Zoë"})]
    assert read(b"id|name\n1|a,b\n", "x.txt") == [Record(2, {"id": "1", "name": "a,b"})]  # otherwise as a CSV
    assert read(b"id,name\n1,a\n", "x.txt.gz") == [Record(2, {"id": "1", "name": "a"})]


def test_csv_with_a_comma_in_the_header_is_comma_separated_whatever_the_values_hold():
    assert read(b"id,name\n1;2,a|b\n", "x.csv") == [Record(2, {"id": "1;2", "name": "a|b"})]
    assert read(b"id\n1;2\n", "x.csv") == [Record(2, {"id": "1;2"})]


@pytest.mark.parametrize("data", [b'{"id": 1}\n{"id": 2}\n', b'\xef\xbb\xbf\n [\n  {"id": 1}\n]', b'["a", "b"]\n'])
def test_json_named_as_a_csv_fails_at_once_saying_what_it_is(data):
    with pytest.raises(UnreadableFile) as caught:
        read(data, "mona/orders/export.csv")
    assert str(caught.value) == ("mona/orders/export.csv: this is JSON, not CSV; name it .jsonl (one object per line)"
                                 " or .json (an array)")


def test_a_csv_header_in_brackets_is_no_json():
    assert read(b"[CustomerID],[Tier]\n1,gold\n", "x.csv") == [Record(2, {"[CustomerID]": "1", "[Tier]": "gold"})]


@pytest.mark.parametrize("data", [b"sep=;\r\nid;city, state\r\n1;Albany, NY\r\n",
                                  b"\xef\xbb\xbfsep=;\nid;city, state\n1;Albany, NY"])
def test_excels_separator_line_names_the_delimiter_and_is_no_header(data):
    assert read(data, "x.csv") == [Record(3, {"id": "1", "city, state": "Albany, NY"})]


@pytest.mark.parametrize("data", [
    b'id, tags, score\r\n1, "shoes, bags", 5\r\n2, hats,6\r\n',
    b'sep=;\nid; tags; score\n1; "shoes, bags"; 5\n2;hats; 6\n',
    b'id, tags, score\n1, "shoes, bags", 5\nid, tags, score\n2, hats, 6\n',  # joined with its header
])
def test_a_csv_written_with_a_space_after_each_delimiter_reads_its_values_without_it(data):
    first = 3 if data.startswith(b"sep=") else 2
    assert [r.data for r in read(data, "x.csv")] == [{"id": "1", "tags": "shoes, bags", "score": "5"},
                                                     {"id": "2", "tags": "hats", "score": "6"}]
    assert read(data, "x.csv")[0].line == first


def test_a_space_after_a_delimiter_is_the_values_when_the_header_has_none():
    assert read(b'id,name\n1, Ann\n', "x.csv") == [Record(2, {"id": "1", "name": " Ann"})]
    # A quoted name holding ", " does not make a header written so.
    assert read(b'"Last, First",Age\n"Doe, J", 5\n', "x.csv") == [Record(2, {"Last, First": "Doe, J", "Age": " 5"})]


def test_a_quote_left_open_in_a_csv_written_with_spaces_is_set_aside_and_the_rows_after_it_read_so():
    records = read(b'id, tags\n1, "open\n2, "a, b"\n', "x.csv")
    assert [(r.line, r.error is None) for r in records] == [(2, False), (3, True)]
    assert records[1].data == {"id": "2", "tags": "a, b"}


def test_header_names_lose_the_spaces_and_invisible_characters_around_them():
    data = "\u200bid\u200b, name\u00a0,\u2060tier\ufeff \n1,Ann,gold\n".encode()  # as copied from a web page
    assert read(data, "x.csv") == [Record(2, {"id": "1", "name": "Ann", "tier": "gold"})]


def test_the_header_after_a_separator_line_is_named_by_its_line_in_errors():
    with pytest.raises(UnreadableFile, match=r"the CSV header \(line 2\) must name every column once: id is columns 1 and 2"):
        read(b"sep=,\nid,id\n1,2\n", "x.csv")


def test_csv_blank_lines_are_skipped_but_counted():
    assert read(b"id\n1\n\n2\n", "x.csv") == [Record(2, {"id": "1"}), Record(4, {"id": "2"})]
    assert read(b'id\n1\n""\n2\n', "x.csv") == [Record(2, {"id": "1"}), Record(4, {"id": "2"})]


@pytest.mark.parametrize("data", [b"id\n1\n  \n\t\n2\n", b"id,tier\n1,a\n , \n\t,\n2,b\n"])
def test_csv_lines_of_spaces_alone_are_blank_lines_whatever_the_width(data):
    assert [record.line for record in read(data, "x.csv")] == [2, 5]


def test_csv_rows_of_delimiters_alone_are_blank_lines():
    """Spreadsheets write an empty row as its delimiters: no record, and nothing to set aside."""
    data = b"id,tier,points\r\n1,gold,3\r\n,,\r\n;,\r\n,,,\r\n2,,\r\n,silver,\r\n  \r\n\t, \r\n"
    assert read(data, "x.csv") == [
        Record(2, {"id": "1", "tier": "gold", "points": "3"}),
        Record(4, ";,", "expected 3 columns as in the header, found 2"),
        Record(6, {"id": "2", "tier": "", "points": ""}),
        Record(7, {"id": "", "tier": "silver", "points": ""}),
    ]


def test_the_csv_header_found_again_is_no_record():
    """Files joined with their headers (``cat day1.csv day2.csv``): the second header is not a row."""
    data = b"id,tier\r\n1,gold\r\nid,tier\r\n2,silver\r\nid, tier\r\n"
    assert read(data, "x.csv") == [Record(2, {"id": "1", "tier": "gold"}), Record(4, {"id": "2", "tier": "silver"}),
                                   Record(5, {"id": "id", "tier": " tier"})]  # not the header as written


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_files_joined_with_their_byte_order_marks_read_as_one(newline):
    """Excel's "CSV UTF-8" starts each file with a BOM: ``cat`` leaves the second one mid-file."""
    day = b"\xef\xbb\xbfid,name" + newline + b"%s,Zo\xc3\xab" + newline
    records = read(day % b"1" + day % b"2", "x.csv")
    assert records == [Record(2, {"id": "1", "name": "Zoë"}), Record(4, {"id": "2", "name": "Zoë"})]
    lines = b'\xef\xbb\xbf{"id": 1}\n\xef\xbb\xbf{"id": 2}\n'
    assert read(lines, "x.jsonl") == [Record(1, {"id": 1}), Record(2, {"id": 2})]


def test_files_joined_with_their_byte_order_marks_read_as_one_though_a_line_is_not_utf8():
    data = b"\xef\xbb\xbfid,name\n1,M\xe4nner\n\xef\xbb\xbfid,name\n\xef\xbb\xbf2,Zo\xc3\xab\n"
    records = read(data, "x.csv")
    assert records[0].line == 2 and records[0].error.startswith("not UTF-8 text: byte 4 of the line is 0xe4")
    assert records[1:] == [Record(4, {"id": "2", "name": "Zoë"})]


def test_a_bom_inside_a_value_is_kept():
    assert read(b"id,note\n1,a\xef\xbb\xbfb\n", "x.csv") == [Record(2, {"id": "1", "note": "a\ufeffb"})]


def test_a_csv_column_the_header_does_not_name_is_left_out_where_it_is_empty():
    """A trailing delimiter on every line, as some exporters write: the records are the named columns'."""
    assert read(b"id,tier,\n1,gold,\n2,silver,\n", "x.csv") == [
        Record(2, {"id": "1", "tier": "gold"}), Record(3, {"id": "2", "tier": "silver"})]
    columns: list[str] = []
    rows = list(read_records(io.BytesIO(b",id,,tier,\n,1,,gold,\n"), "x.csv", columns=columns))
    assert columns == ["id", "tier"] and rows == [Record(2, ["1", "gold"])]


def test_a_csv_row_with_a_value_in_a_column_the_header_does_not_name_is_set_aside():
    data = b",id,tier,\n0,c1,gold,\n,c2,silver,\n2,c3,bronze,x\n"  # pandas' index, and a stray value
    records = read(data, "x.csv")
    assert records[1] == Record(3, {"id": "c2", "tier": "silver"})
    assert records[0].line == 2 and records[0].data == {"column 1": "0", "id": "c1", "tier": "gold", "column 4": ""}
    assert records[0].error.startswith("column 1 has no name in the header but a value here; name the column")
    assert records[2].error.startswith("columns 1 and 4 have no name in the header but a value")
    dropped = list(read_records(io.BytesIO(data), "x.csv", options=CsvOptions(unnamed_values="drop")))
    assert dropped == [Record(2, {"id": "c1", "tier": "gold"}), Record(3, {"id": "c2", "tier": "silver"}),
                       Record(4, {"id": "c3", "tier": "bronze"})]


def test_cells_named_as_nulls_are_read_as_empty_and_others_as_written():
    data = b"id,score,note,\nc1,NULL,\\N,\nc2,null,NULL ,\nc3,\\N,x,NULL\n"
    nulls = CsvOptions(nulls=frozenset({"NULL", "\\N"}))
    records = list(read_records(io.BytesIO(data), "x.csv", options=nulls))
    assert records[:2] == [Record(2, {"id": "c1", "score": "", "note": ""}),
                           Record(3, {"id": "c2", "score": "null", "note": "NULL "})]  # as written: not a null
    assert records[2] == Record(4, {"id": "c3", "score": "", "note": "x"})  # an unnamed column's NULL is empty too
    columns: list[str] = []
    rows = list(read_records(io.BytesIO(data), "x.csv", columns=columns, options=nulls))
    assert columns == ["id", "score", "note"] and rows[0] == Record(2, ["c1", "", ""])
    assert read(data, "x.csv")[0] == Record(2, {"id": "c1", "score": "NULL", "note": "\\N"})  # none by default


def test_a_csv_header_may_leave_several_columns_unnamed_but_name_each_other_once():
    assert read(b"id,,,\n1,,,\n", "x.csv") == [Record(2, {"id": "1"})]
    with pytest.raises(UnreadableFile) as caught:
        read(b",id,,id\n1,2,3,4\n", "x.csv")
    assert str(caught.value) == "the CSV header (line 1) must name every column once: id is columns 2 and 4"


def good_ids(records: list[Record]) -> list[str]:
    return [r.data["id"] for r in records if not r.error]


def test_a_csv_header_with_a_quote_never_closed_fails_the_file_saying_so():
    with pytest.raises(UnreadableFile, match="^the CSV header cannot be read: a quote opened in it is never closed$"):
        read(b'id,"note\n1,a\n', "x.csv")


def test_csv_quote_left_open_to_the_end_sets_aside_its_line_only():
    rows = [f"r{i},plain\n" for i in range(2, 500)]
    rows[1] = 'r3,"open\n'
    records = read(b"id,note\n" + "".join(rows).encode(), "x.csv")
    bad = [r for r in records if r.error]
    assert [r.line for r in bad] == [3]
    assert "unexpected end of data" in bad[0].error and "lines 4-499 are read again" in bad[0].error
    assert good_ids(records) == [f"r{i}" for i in range(2, 500) if i != 3]
    assert all(r.line == int(r.data["id"][1:]) for r in records if not r.error)


def test_csv_quote_left_open_past_the_longest_record_loses_no_row_after_it():
    # The open field outgrows the longest record (8 MiB) across many 64 KiB chunks.
    rows = [f"r{i},{'x' * 100}\n" for i in range(2, 90_000)]
    rows[0] = 'r2,"open\n'
    records = read(b"id,note\n" + "".join(rows).encode(), "x.csv")
    bad = [r for r in records if r.error]
    assert [r.line for r in bad] == [2] and bad[0].error.startswith(
        "malformed CSV: a cell runs over 8 MiB, larger than any record can be sent in a record that runs on to line")
    assert good_ids(records) == [f"r{i}" for i in range(3, 90_000)]
    assert all(r.line == int(r.data["id"][1:]) for r in records if not r.error)


@pytest.mark.parametrize("open_line", [990, 1020, 1025, 1026, 1060])
def test_csv_quote_left_open_near_where_a_chunk_of_text_ends(open_line):
    # 64-byte rows: the reader's first 64 KiB of text ends at line 1025.
    rows = [f"r{i:05d},{'x' * 56}\n" for i in range(2, 6000)]
    rows[open_line - 2] = f'r{open_line:05d},"{"x" * 55}\n'
    records = read(b"id,note\n" + "".join(rows).encode(), "x.csv")
    assert [r.line for r in records if r.error] == [open_line]
    assert good_ids(records) == [f"r{i:05d}" for i in range(2, 6000) if i != open_line]


def test_csv_quote_left_open_until_a_later_quote_and_again_in_the_rows_read_again():
    records = read(b'id,note\n1,"a\n2,b\n3,"c\n4,d\n5,"e,f"\n', "x.csv")
    assert [(r.line, r.data) for r in records if not r.error] == [
        (3, {"id": "2", "note": "b"}), (5, {"id": "4", "note": "d"}), (6, {"id": "5", "note": "e,f"})]
    assert [r.line for r in records if r.error] == [2, 4]


@pytest.mark.parametrize("data, key, said", [
    (b"name,tier\nSmith, John,gold\n", "x.csv", "; a value holding a comma is written in double quotes (\"Smith, John\")"),
    (b"name;tier\n1;234;gold\n", "x.csv", "; a value holding a semicolon is written in double quotes (\"Smith; John\")"),
    (b"name\ttier\na\tb\tc\n", "x.tsv", "; a value holding a tab is written in double quotes"),
])
def test_a_row_with_more_cells_than_the_header_says_a_value_holding_the_delimiter_is_quoted(data, key, said):
    records = read(data, key)
    assert records[0].error == f"expected 2 columns as in the header, found 3{said}"


@pytest.mark.parametrize("data, header_line, above, first", [
    (b"Customer report May 2024\n\ncustomer_id,tier\nG-1,gold\n", 3, 1, "Customer report May 2024"),
    (b"# ----\n# Customers\n# 20240501-20240531\n\ncustomer_id,tier\nG-1,gold\nG-2,x\n", 5, 3, "# ----"),  # as GA exports
])
def test_a_title_or_comments_above_the_csv_header_fail_the_file_saying_where_the_header_is(data, header_line, above, first):
    with pytest.raises(UnreadableFile) as failed:
        read(data, "x.csv")
    assert str(failed.value) == (f"line {header_line} looks like the header ('customer_id,tier'), and the {above} line(s)"
                                 f" with text above it hold one column each, the first {first!r}: a title or comments"
                                 " above the header? The header must be the file's first line: remove the lines above it")


@pytest.mark.parametrize("data, expected", [
    (b"customer_id\nA\nB\n", [(2, {"customer_id": "A"}), (3, {"customer_id": "B"})]),
    (b'customer_id\n"a,b"\nc\n', [(2, {"customer_id": "a,b"}), (3, {"customer_id": "c"})]),  # a quoted comma
    (b"customer_id\nA\nSmith, John\nB\n",  # one row too wide: that row alone is set aside
     [(2, {"customer_id": "A"}), (3, "Smith, John"), (4, {"customer_id": "B"})]),
    (b"sep=;\nid;tier\n1;gold\n", [(3, {"id": "1", "tier": "gold"})]),
    (b"id\n1;2\n3;4\n", [(2, {"id": "1;2"}), (3, {"id": "3;4"})]),  # a header of one name: values with a ; are its
    (b"Customer ID\nA\nB\n", [(2, {"Customer ID": "A"}), (3, {"Customer ID": "B"})]),
])
def test_a_file_of_one_column_or_with_excels_delimiter_line_is_read_as_it_is(data, expected):
    assert [(r.line, r.data) for r in read(data, "x.csv")] == expected


def test_csv_record_over_several_lines_with_the_wrong_width_is_set_aside_and_its_lines_read_again():
    records = read(b'id,note\n1,"two\n2,lines",extra\n3,c\n', "x.csv")
    assert records[0].line == 2 and records[0].error.startswith("expected 2 columns as in the header, found 3 in a record")
    assert records[1].line == 3 and records[1].error  # the rest of the record, read again: still bad
    assert records[2] == Record(4, {"id": "3", "note": "c"})


def test_csv_header_names_are_trimmed_and_must_be_unique():
    assert read(b" id , name \n1,a\n", "x.csv")[0].data == {"id": "1", "name": "a"}
    with pytest.raises(UnreadableFile) as caught:
        read(b"id,email,id,email,name,email\n1,2,3,4,5,6\n", "x.csv")
    assert str(caught.value) == ("the CSV header (line 1) must name every column once:"
                                 " id is columns 1 and 3; email is columns 2, 4 and 6")


@pytest.mark.parametrize("above", [b"\n", b"\r\n \r\n", b";;;\n", b'"";""\n\n', b"\xe2\x80\x8b\n"])
def test_blank_lines_and_empty_spreadsheet_rows_above_the_header_are_skipped(above):
    lines = above.count(b"\n")
    records = read(above + b"id;name\n1;a, b\n", "x.csv")  # the delimiter, too, is the header's
    assert records == [Record(lines + 2, {"id": "1", "name": "a, b"})]


@pytest.mark.parametrize("data", [b"\n\n", b" , \n", b",,,\r\n;;\r\n"])
def test_a_csv_of_blank_lines_alone_holds_no_records(data):
    assert read(data, "x.csv") == []


def test_a_tsv_file_is_tab_separated_though_its_header_holds_a_comma():
    records = read(b"name\tcity, state\nAnn\tAlbany, NY\n", "exports/x.tsv.gz")
    assert records == [Record(2, {"name": "Ann", "city, state": "Albany, NY"})]


def test_csv_header_names_are_taken_as_written_whatever_they_hold():
    header = ["it's", '"say ""hi"""', "back\\slash", '"new\nline"', "{v0}", "v0", "\"x: 1}, 'y\""]
    data = (",".join(header) + "\n" + ",".join(str(i) for i in range(len(header))) + "\n").encode()
    names = ["it's", 'say "hi"', "back\\slash", "new\nline", "{v0}", "v0", "x: 1}, 'y"]
    assert read(data, "x.csv") == [Record(3, {name: str(i) for i, name in enumerate(names)})]


def test_empty_csv_has_no_records():
    assert read(b"", "x.csv") == []


def test_gzip_is_told_by_its_magic_bytes_whatever_the_name():
    data = gzip.compress(b"id\n1\n")
    assert read(data, "x.csv.gz")[0].data == {"id": "1"}
    assert read(data, "x.csv")[0].data == {"id": "1"}
    assert read(b"id\n1\n", "x.csv.gz")[0].data == {"id": "1"}  # named .gz, decompressed already


def test_broken_gzip_is_an_unreadable_file():
    with pytest.raises(UnreadableFile, match="decompress"):
        read(gzip.compress(b"id\n1\n")[:-8] + b"garbage!", "x.csv.gz")


@pytest.mark.parametrize("key", ["x.csv", "x.csv.gz", "x.jsonl"])
def test_a_line_that_is_not_utf8_is_set_aside_and_reading_goes_on(key):
    rows = [json.dumps({"id": str(i), "name": "Zoë"}, ensure_ascii=False) if key == "x.jsonl" else f"{i},Zoë"
            for i in range(1, 4000)]
    first = "" if key == "x.jsonl" else "id,name\n"
    data = (first + "\n".join(rows) + "\n").encode()
    at = data.index(b"2500,") if key != "x.jsonl" else data.index(b'{"id": "2500"')
    data = data[:at] + data[at:].replace("ë".encode(), "ë".encode("latin-1"), 1)  # one row from another encoding
    records = read(gzip.compress(data) if key.endswith(".gz") else data, key)
    bad = [r for r in records if r.error]
    line = 2501 if key != "x.jsonl" else 2500
    byte = rows[2499].index("ë") + 1
    hint = HINT + ")" if key == "x.jsonl" else CSV_HINT
    assert [(r.line, r.error) for r in bad] == [(line, f"not UTF-8 text: byte {byte} of the line is 0xeb (it would be 'ë'{hint}")]
    assert [r.data["id"] for r in records if not r.error] == [str(i) for i in range(1, 4000) if i != 2500]
    assert all(r.data["name"] == "Zoë" for r in records if not r.error)


def test_a_byte_that_is_no_character_in_windows_1252_gets_no_guess():
    records = read(b"id,name\n1,a\x81b\n2,c\n", "x.csv")
    assert records[0].error == "not UTF-8 text: byte 4 of the line is 0x81"
    assert records[1] == Record(3, {"id": "2", "name": "c"})


def test_a_csv_record_over_several_lines_is_set_aside_when_one_of_them_is_not_utf8():
    records = read('id,note\n1,"two\nlinés"\n2,b\n'.encode("latin-1"), "x.csv")
    assert records == [Record(2, '1,"two\nlin\ufffds"', "line 3: " + E9_AT_4),
                       Record(4, {"id": "2", "note": "b"})]


def test_a_quote_left_open_before_a_line_that_is_not_utf8_still_sets_that_line_aside():
    records = read('id,note\n1,"open\n2,bé\n3,c\n'.encode("latin-1"), "x.csv")
    assert [r.line for r in records if r.error] == [2, 3]
    assert records[0].data == '1,"open'  # the first line alone: the others are read again
    assert (records[1].data, records[1].error) == ("2,b\ufffd", E9_AT_4)
    assert records[2] == Record(4, {"id": "3", "note": "c"})


@pytest.mark.parametrize("encoding, compress", [("utf-16", False), ("utf-16-le", True), ("utf-16-be", False)])
def test_utf16_text_with_its_byte_order_mark_is_read_as_utf8(encoding, compress):
    # Excel's "Unicode text" is UTF-16 with a BOM, tab-separated.
    rows = "".join(f"C{i}\tété {'x' * (i % 90)}\r\n" for i in range(30_000))  # several 64 KiB chunks
    data = "id\tname\r\n" + rows
    body = (b"" if encoding == "utf-16" else "\ufeff".encode(encoding)) + data.encode(encoding)
    records = read(gzip.compress(body) if compress else body, "x.tsv")
    assert len(records) == 30_000 and records[-1] == Record(30_001, {"id": "C29999", "name": "été " + "x" * 29})


@pytest.mark.parametrize("bad, message", [(b"\x00\xd8", "illegal UTF-16 surrogate"), (b"x", "truncated data")])
def test_utf16_text_that_goes_wrong_makes_the_file_unreadable_after_the_rows_before(bad, message):
    data = ("\ufeffid\n" + "".join(f"C{i}\n" for i in range(50_000))).encode("utf-16-le") + bad
    records = read_records(io.BytesIO(data + "C2\n".encode("utf-16-le")), "x.csv")
    read_before = []
    with pytest.raises(UnreadableFile, match=f"starts as UTF-16 text but is not: {message}"):
        read_before += records
    assert 0 < len(read_before) < 50_000 and read_before == [Record(i + 2, {"id": f"C{i}"}) for i in range(len(read_before))]


def test_a_csv_header_with_nul_characters_is_said_to_be_utf16_without_a_bom():
    with pytest.raises(UnreadableFile, match="probably UTF-16 without a byte order mark"):
        read("id,name\nC1,x\n".encode("utf-16-be"), "x.csv")


def test_a_csv_header_that_is_not_utf8_makes_the_file_unreadable():
    with pytest.raises(UnreadableFile, match="the CSV header is not UTF-8 text: byte 3 of the line is 0xe9"):
        read("idé,name\n1,a\n".encode("latin-1"), "x.csv")


WINDOWS_1252_ROWS = "id,name\r\n1,Müller\r\n2,Café “Zoë”\r\n3,x\r\n4,Strauß\r\n".encode("cp1252")


@pytest.mark.parametrize("key, gzipped", [("x.csv", False), ("x.csv.gz", True), ("x.tsv", False)])
def test_a_csv_is_read_in_the_charset_its_content_type_names(key, gzipped):
    data = WINDOWS_1252_ROWS.replace(b",", b"\t") if key.endswith(".tsv") else WINDOWS_1252_ROWS
    records = list(read_records(io.BytesIO(gzip.compress(data) if gzipped else data), key,
                                options=CsvOptions(charset="Windows-1252")))
    assert [(r.data["name"], r.error) for r in records] == [
        ("Müller", None), ("Café “Zoë”", None), ("x", None), ("Strauß", None)]
    # Without it, the lines past ASCII are set aside, saying how to name the charset.
    unnamed = read(data, key.removesuffix(".gz"))
    assert [r.line for r in unnamed if r.error] == [2, 3, 5]
    assert unnamed[0].error.endswith(", or upload it with Content-Type text/csv; charset=windows-1252)")


@pytest.mark.parametrize("ascii_lines", [0, 20_000])  # the first text past ASCII in the first chunk, or a later one
def test_a_utf8_file_labelled_with_another_charset_fails_rather_than_send_mojibake(ascii_lines):
    data = b"id,name\n" + b"0,plain\n" * ascii_lines + "1,Müller\n2,Café\n".encode()
    with pytest.raises(UnreadableFile, match="^x.csv: its Content-Type names charset 'windows-1252', but its text is UTF-8:"
                                             r" upload it again without the charset \(or with charset=utf-8\)$"):
        list(read_records(io.BytesIO(data), "x.csv", options=CsvOptions(charset="windows-1252")))


def test_a_line_with_a_byte_the_named_charset_lacks_is_set_aside_alone():
    data = WINDOWS_1252_ROWS.replace(b"3,x", b"3,x\x81y")  # 0x81: no character in Windows-1252
    records = list(read_records(io.BytesIO(data), "x.csv", options=CsvOptions(charset="windows-1252")))
    assert [(r.line, r.error) for r in records if r.error] == [(4, "not cp1252 text: byte 4 of the line is 0x81")]
    assert [r.data["name"] for r in records if not r.error] == ["Müller", "Café “Zoë”", "Strauß"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])  # each writes its BOM first
def test_a_byte_order_mark_outweighs_the_charset_named(encoding):
    data = "id,name\r\n1,Müller\r\n".encode(encoding)
    records = list(read_records(io.BytesIO(data), "x.csv", options=CsvOptions(charset="windows-1252")))
    assert [(r.data, r.error) for r in records] == [({"id": "1", "name": "Müller"}, None)]


@pytest.mark.parametrize("charset", ["us-ascii", "UTF-8", "utf8", "utf-8-sig"])
def test_a_charset_naming_utf8_or_ascii_reads_utf8(charset):
    records = list(read_records(io.BytesIO("id,name\n1,Müller\n".encode()), "x.csv", options=CsvOptions(charset=charset)))
    assert [(r.data, r.error) for r in records] == [({"id": "1", "name": "Müller"}, None)]


@pytest.mark.parametrize("charset, message", [
    ("klingon", "names charset 'klingon', which is not known"),
    ("base64", "names charset 'base64', which is not known"),  # a codec, but not of text
    ("utf-16", "names charset 'utf-16', which is not read here; save the file as UTF-8 \\(or UTF-16 with its BOM\\)"),
])
def test_a_charset_that_cannot_be_read_fails_the_file_at_once_saying_so(charset, message):
    with pytest.raises(UnreadableFile, match=f"^x.csv: its Content-Type {message}"):
        list(read_records(io.BytesIO(b"id,name\n1,a\n"), "x.csv", options=CsvOptions(charset=charset)))


def test_a_charset_named_is_for_csv_alone_json_being_utf8_by_its_standard():
    records = list(read_records(io.BytesIO('{"name": "Müller"}\n'.encode()), "x.jsonl", options=CsvOptions(charset="latin-1")))
    assert [(r.data, r.error) for r in records] == [({"name": "Müller"}, None)]


@pytest.mark.parametrize("bad, message", [("é".encode("latin-1"), "0xe9"), ("é".encode()[:1], "0xc3")])
def test_a_json_array_that_is_not_utf8_is_unreadable_and_the_error_names_the_line(bad, message):
    items = [f'  {{"id": "{i}"}},\n'.encode() for i in range(5000)]
    items[3000] = b'  {"id": "' + bad + b'"},\n'
    with pytest.raises(UnreadableFile, match=f"^line 3002: not UTF-8 text \\(byte {message}\\)$"):
        read(b"[\n" + b"".join(items) + b'  {"id": "last"}\n]\n', "x.json")
    with pytest.raises(UnreadableFile, match="^line 1: not UTF-8 text \\(byte 0xc3\\)$"):
        read(b'["a", "' + "é".encode()[:1], "x.json")  # cut short in a character at the end


def test_a_line_longer_than_many_chunks_is_read_whole():
    long = "x" * 300_000
    data = f'{{"a": "{long}"}}\r\n{{"b": 1}}\n'.encode()
    assert read(data, "x.jsonl") == [Record(1, {"a": long}), Record(2, {"b": 1})]


def test_csv_lines_may_end_in_cr_alone_and_in_crlf_cut_across_chunks():
    rows = "".join(f"{i},{'x' * 60}\r" for i in range(3000))
    assert [r.line for r in read(("id,note\r" + rows).encode(), "x.csv")] == list(range(2, 3002))
    rows = "".join(f"{i},{'x' * (i % 7)}\r\n" for i in range(30000))
    assert [r.line for r in read(("id,note\r\n" + rows).encode(), "x.csv")] == list(range(2, 30002))


# -- JSON Lines ----------------------------------------------------------------------------
def test_json_lines_skip_blank_lines_and_reject_bad_ones():
    records = read(b'{"a":1}\n\nnot json\n[1]\n{"a":2}\r\n', "x.jsonl")
    assert records[0] == Record(1, {"a": 1})
    assert (records[1].line, records[1].data) == (3, "not json")
    assert records[1].error == "invalid JSON: invalid literal, expected 'null' at column 1"
    assert records[2].line == 4 and "expected a JSON object" in records[2].error and records[2].data == [1]
    assert records[3] == Record(5, {"a": 2})


def test_a_json_lines_record_followed_by_a_comma_says_so():
    records = read(b'{"a": 1},\n{"a": 2}\n', "x.jsonl")
    assert records[0].error == ("invalid JSON: unexpected content after document at column 9: a comma after the object;"
                                " a line of JSON Lines holds one object and nothing after it")
    assert records[1] == Record(2, {"a": 2})
    doubled = read(b'{"a": 1,, "b": 2}\n', "x.jsonl")[0].error  # a comma inside the object is no comma after it
    assert doubled == "invalid JSON: unexpected character, expected a string key at column 9"


def test_a_json_lines_record_holding_nan_says_what_to_write_instead():
    records = read(b'{"a": NaN}\n{"a": 1e400}\n{"a": 2}\n', "x.jsonl")
    assert records[0].error == ("invalid JSON: unexpected character, expected a JSON value at column 7:"
                                " NaN and Infinity are not JSON; write null or a number")
    assert records[1].error == "invalid JSON: number is infinity when parsed as double at column 7"
    assert records[2] == Record(3, {"a": 2})


# -- JSON array ----------------------------------------------------------------------------
@pytest.mark.parametrize("item, reason", [
    (b'{"a": NaN}', "NaN is not JSON: write null or a number"),
    (b'{"a": [-Infinity]}', "-Infinity is not JSON: write null or a number"),
    (b'{"a": 1e400, "b": Infinity}', "1e400 is beyond the range of a double; Infinity is not JSON: write null or a number"),
    (b'{"a": ' + b"9" * 5000 + b'}', "99999999999999999999\u2026 (5000 characters) is beyond the range of a double"),
    (b'{"a": "\\ud800"}', "no low surrogate in string"),  # half a UTF-16 pair: no UTF-8 text can hold it
])
def test_a_json_array_item_holding_what_json_has_not_is_set_aside_and_reading_goes_on(item, reason):
    # Python's json reads these; sent on, orjson would write NaN as null or refuse the batch.
    records = read(b'[\n{"a": 1},\n' + item + b',\n{"a": 2}\n]', "x.json")
    assert records[0] == Record(2, {"a": 1}) and records[2] == Record(4, {"a": 2})
    assert (records[1].line, records[1].error) == (3, "invalid JSON: " + reason)
    assert json.loads(json.dumps(records[1].data, allow_nan=False)) == records[1].data  # a rejected row is written as JSON


def test_json_array_integers_are_read_as_orjson_reads_them():
    data = b'[{"big": 18446744073709551615, "low": -9223372036854775808, "past": 123456789012345678901234567890}]'
    assert read(data, "x.json")[0].data == orjson.loads(data)[0]
    assert type(read(data, "x.json")[0].data["past"]) is float


def test_json_array_items_carry_the_line_they_start_on():
    data = b'[\n  {"a": 1},\n  {"a": 2,\n   "b": [1, 2]},\n  3\n]\n'
    records = read(data, "x.json")
    assert records[0] == Record(2, {"a": 1})
    assert records[1] == Record(3, {"a": 2, "b": [1, 2]})
    assert records[2].line == 5 and "expected a JSON object" in records[2].error


def test_json_array_items_on_one_line_carry_their_place_in_the_array():
    # json.dump and pandas' to_json(orient="records") write the whole array on line 1.
    records = read(b'{"records": [{"a": 1}, 2, {"a": 3}]}', "x.json")
    assert [(record.line, record.line.index) for record in records] == [(1, 0), (1, 1), (1, 2)]


def test_a_batch_of_array_items_is_placed_by_item_and_line():
    items = read(b'[{"a": 1}, {"a": 2},\n {"a": 3}]', "x.json")
    assert lines_between(items[0].line, items[1].line) == "items 0-1 of the array (line 1)"
    assert lines_between(items[0].line, items[2].line) == "items 0-2 of the array (lines 1-2)"
    assert lines_between(3, 502) == "lines 3-502"


@pytest.mark.parametrize("data, message", [
    (b'[{"a": 1}, {"a": 2}, {"a": 3', "line 1 (the array's item at index 2): invalid JSON in the array"),
    # a quote left out on a line of several items: where the item ends cannot be told, so nothing after it is guessed at
    (b'[{"a": "x}, {"a": 2}]', "line 1 (the array's item at index 0): invalid JSON in the array"),
    (b'[\n{"a": 1}, {"a": "x}, {"a": 2}\n]', "line 2 (the array's item at index 1): invalid JSON in the array"),
    (b'[{"a": 1}, {"a": 2} {"a": 3}]', "line 1, after 2 items of the array: expected ',' or ']' between array items"),
    (b'[{"a": 1}, {"a": 2}', "line 1, after 2 items of the array: the JSON array is not closed"),
])
def test_a_broken_json_array_says_at_which_item(data, message):
    with pytest.raises(UnreadableFile) as caught:
        read(data, "x.json")
    assert str(caught.value) == message


@pytest.mark.parametrize("line, found", [(b"3", "a number"), (b'"x"', "text"), (b"null", "null"), (b"true", "true/false"),
                                         (b"[1, 2]", "an array")])
def test_a_json_lines_line_that_is_no_object_says_what_it_is_in_json_terms(line, found):
    assert read(line + b"\n", "x.jsonl")[0].error == f"expected a JSON object, found {found}"


def test_json_array_across_many_chunks_is_read_whole():
    items = [{"id": i, "text": "x" * (i % 300)} for i in range(5000)]
    records = read(json.dumps(items, indent=1).encode(), "x.json")
    assert [r.data for r in records] == items


def test_json_array_numbers_cut_at_a_chunk_edge_are_not_truncated():
    # A long run of digits straddles the 64 KiB buffer edge.
    item = {"pad": "p" * 65_520, "n": 123456789012345}
    assert read(json.dumps([item]).encode(), "x.json")[0].data == item


@pytest.mark.parametrize("data, message", [
    (b'"a": 1', "one JSON array"), (b'[{"a": 1}', "not closed"), (b'[{"a": 1} {"b": 2}]', "expected ','"),
])
def test_json_array_structural_errors_are_unreadable_files(data, message):
    with pytest.raises(UnreadableFile, match=message):
        read(data, "x.json")


@pytest.mark.parametrize("data, line, item, reason", [
    # a comma doubled, a quote left unescaped (its count even, then odd), a key in single quotes, a bare word
    (b'[\n{"id": "J-1"},\n{"id": "J-2",, "tier": "gold"},\n{"id": "J-3"}\n]', 3, '{"id": "J-2",, "tier": "gold"}',
     "invalid JSON: Expecting property name enclosed in double quotes at column 14 of the item"),
    (b'[\n{"id": "J-1"},\n{"name": "Bob "The Builder"", "id": "J-2"},\n{"id": "J-3"}\n]', 3,
     '{"name": "Bob "The Builder"", "id": "J-2"}', "invalid JSON: Expecting ',' delimiter at column 16 of the item"),
    (b'[\n{"id": "J-1"},\n{"desc": "5" screen", "id": "J-2"},\n{"id": "J-3"}\n]', 3,
     '{"desc": "5" screen", "id": "J-2"}', "invalid JSON: Expecting ',' delimiter at column 14 of the item"),
    (b"[{\"id\": \"J-1\"}, {'id': 'J-2'}, {\"id\": \"J-3\"}]", 1, "{'id': 'J-2'}",
     "invalid JSON: Expecting property name enclosed in double quotes at column 2 of the item"),
    (b'[{"id": "J-1"}, undefined, {"id": "J-3"}]', 1, "undefined", "invalid JSON: Expecting value at column 1 of the item"),
    (b'[{"id": "J-1"},, {"id": "J-3"}]', 1, "", "an empty item: two commas with nothing between"),
    (b'{"records": [\n  {\n    "id": "J-1"\n  },\n  {\n    "id": "J-2",\n  },\n  {\n    "id": "J-3"\n  }\n]}', 5,
     '{\n    "id": "J-2",\n  }', "invalid JSON: Expecting property name enclosed in double quotes at line 7, column 3"),
    (b'[\n{"id": "J-1"},\n{"id": "x},\n{"id": "J-3"}\n]', 3, '{"id": "x}',
     "invalid JSON: Unterminated string starting at column 8 of the item"),
])
def test_an_array_item_that_is_not_json_is_set_aside_as_written_and_the_items_after_it_are_read(data, line, item, reason):
    records = read(data, "x.json")
    assert [(r.line, r.line.index, r.data, r.error) for r in records] == [
        (records[0].line, 0, {"id": "J-1"}, None), (line, 1, item, reason), (records[2].line, 2, {"id": "J-3"}, None)]


def test_an_item_whose_end_cannot_be_told_breaks_a_large_file_there_not_past_the_longest_record():
    items = [json.dumps({"id": i, "note": "x" * 40}) for i in range(200_000)]  # one line of some 12 MB
    items[5] = '{"id": 5, "note": "x}'
    data = ("[" + ", ".join(items) + "]").encode()
    source = io.BytesIO(data)
    with pytest.raises(UnreadableFile) as caught:
        for _ in read_records(source, "x.json"):
            pass
    assert str(caught.value) == "line 1 (the array's item at index 5): invalid JSON in the array"
    assert source.tell() < 2 << 20


def test_an_array_item_that_is_not_json_far_into_a_large_file_is_set_aside_alone():
    items = [json.dumps({"id": i, "note": "x" * 40}) for i in range(20_000)]  # some 1.2 MB, many chunks
    items[15_000] = '{"id": 15000, "note": "said "hi""}'
    records = read(("[\n" + ",\n".join(items) + "\n]").encode(), "x.json")
    assert len(records) == 20_000 and [r.line.index for r in records if r.error] == [15_000]
    assert records[15_000].line == 15_002 and records[-1].data["id"] == 19_999


@pytest.mark.parametrize("data", [b'[{"a": 1}, {"a": 2},]', b'{"records": [\n {"a": 1},\n {"a": 2},\n]}\n'])
def test_a_comma_before_the_json_arrays_end_is_let_be(data):
    assert [record.data for record in read(data, "x.json")] == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize("head", [b"", b"\xef\xbb\xbf", b"\n  \n "])
def test_a_json_file_of_one_object_per_line_is_read_as_json_lines(head):
    # Spark, BigQuery, Snowflake and Redshift write JSON exports this way, named .json.
    data = head + b'{"a": 1}\n{"a": 2, "b": [1]}\nnot json\n[3]\n{"a": 4}\n'
    records = read(gzip.compress(data), "part-00000.json.gz")
    first = 1 + head.count(b"\n")
    assert records[0] == Record(first, {"a": 1}) and records[1] == Record(first + 1, {"a": 2, "b": [1]})
    assert records[2].line == first + 2 and records[2].error.startswith("invalid JSON")
    assert records[3].line == first + 3 and "expected a JSON object" in records[3].error
    assert records[4] == Record(first + 4, {"a": 4})


@pytest.mark.parametrize("name", ["x.json", "x.jsonl", "x.ndjson"])
def test_objects_written_over_several_lines_one_after_another_are_read_as_jq_and_json_dump_indent_write_them(name):
    objects = [{"id": "P-1", "tags": ["a", "b"], "address": {"city": "Lyon"}}, {"id": "P-2"}, {"id": "P-3", "n": 1.5}]
    data = "".join(json.dumps(o, indent=2) + "\n" for o in objects).encode()
    assert [(r.line, r.data, r.error) for r in read(data, name)] == [(1, objects[0], None), (11, objects[1], None),
                                                                      (14, objects[2], None)]
    assert read(json.dumps(objects[0], indent=4).encode(), name) == [Record(1, objects[0])]


def test_of_objects_one_after_another_one_that_is_not_json_is_set_aside_up_to_the_next_line_its_brace_begins():
    data = b'{\n  "id": "P-1",\n  "tier": "gold",,\n  "n": {\n    "x": 1\n  }\n}\n{\n  "id": "P-2"\n}\n'
    records = read(data, "x.jsonl")
    assert [(r.line, r.error) for r in records] == [
        (1, "invalid JSON: Expecting property name enclosed in double quotes at line 3, column 18"), (8, None)]
    assert records[0].data == '{\n  "id": "P-1",\n  "tier": "gold",,\n  "n": {\n    "x": 1\n  }\n}'
    assert records[1].data == {"id": "P-2"}


@pytest.mark.parametrize("indent", [None, 2])
def test_an_object_holding_an_array_alone_is_read_as_that_array(indent):
    # The webhooks' body, and many APIs' exports ({"data": [...]}), on one line or written over several.
    body = json.dumps({"records": [{"id": 1}, {"id": 2}, 3]}, indent=indent).encode()
    records = read(body, "x.json")
    assert [r.data for r in records] == [{"id": 1}, {"id": 2}, 3] and "expected a JSON object" in records[2].error
    assert [r.line for r in records] == ([1, 1, 1] if indent is None else [3, 6, 9])


def test_an_object_holding_an_array_alone_is_streamed_when_its_line_is_long():
    items = [{"id": i, "name": "x" * 50} for i in range(20_000)]  # about 1.4 MB on one line
    records = read(gzip.compress(json.dumps({"data": items}).encode()), "export.json.gz")
    assert [r.data for r in records] == items


@pytest.mark.parametrize("data, line, message", [
    (b'{"records": [{"id": 1}],\n "count": 1}', 1, "the object holding the array holds more than the array"),
    (b'[{"id": 1}]\n[{"id": 2}]\n', 2, "more follows the end of the JSON array"),
    (b'{"records": [{"id": 1}]}\n{"records": [{"id": 2}]}\n', 2, "more follows the end of the JSON object"),
    (b'{"count": 1,\n "records": [{"n": 1}]}', 1, "a .json file must hold one JSON array of objects"),
])
def test_what_a_json_file_holds_past_its_array_fails_the_file_after_the_records_before(data, line, message):
    # On one line, an object holding more than an array is a record of JSON Lines.
    records = read_records(io.BytesIO(data), "x.json")
    if b'"id": 1' in data:
        assert next(records) == Record(1, {"id": 1})
    with pytest.raises(UnreadableFile, match=f"^line {line}: {message}"):
        list(records)


@pytest.mark.parametrize("indent", [None, 2])
def test_a_json_array_of_objects_named_jsonl_is_read_as_the_array(indent):
    data = json.dumps([{"a": 1}, {"a": 2}], indent=indent).encode()
    assert [r.data for r in read(data, "export.jsonl")] == [{"a": 1}, {"a": 2}]


def test_json_lines_of_arrays_are_still_json_lines():
    records = list(read_records(io.BytesIO(b"[1, 2]\n[3]\n[]\n"), "keys.jsonl", objects_only=False))
    assert records == [Record(1, [1, 2]), Record(2, [3]), Record(3, [])]


def test_a_json_lines_record_holding_only_a_list_among_others_is_still_json_lines():
    assert [r.data for r in read(b'{"a": [1], "b": 2}\n{"a": [3]}\n', "x.json")] == [{"a": [1], "b": 2}, {"a": [3]}]


BIG = 9 << 20  # past the longest record a reader holds (8 MiB)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_a_line_too_long_for_any_record_is_set_aside_by_its_start_and_reading_goes_on(newline):
    data = newline.join([b'{"id": 1}', b'{"id": 2, "blob": "' + b"x" * BIG + b'"}', b'{"id": 3}', b""])
    records = read(data, "x.jsonl")
    assert records[0] == Record(1, {"id": 1}) and records[2] == Record(3, {"id": 3}) and len(records) == 3
    assert records[1].line == 2 and records[1].data == '{"id": 2, "blob": "' + "x" * 181 + "…"
    assert records[1].error == ("the line runs over 8 MiB, larger than any record can be sent;"
                                " a whole JSON array on one line belongs in a .json file")


def test_a_csv_line_too_long_for_any_record_is_set_aside_and_the_rows_after_it_arrive():
    records = read(b"id,note\n1,a\n2," + b"y" * BIG + b"\n3,c\n", "x.csv")
    assert [r.data for r in records if not r.error] == [{"id": "1", "note": "a"}, {"id": "3", "note": "c"}]
    assert [r.line for r in records if r.error] == [3]


def test_a_csv_cell_may_be_as_long_as_a_record_not_only_as_pythons_csv_allows():
    long_cell = "x" * (200 << 10)  # past csv's own 128 KiB limit
    records = read(f'id,note\n1,{long_cell}\n2,"{long_cell}\n{long_cell}"\n3,c\n'.encode(), "x.csv")
    assert [r.data for r in records] == [{"id": "1", "note": long_cell}, {"id": "2", "note": f"{long_cell}\n{long_cell}"},
                                         {"id": "3", "note": "c"}]


def test_an_item_of_a_json_array_too_long_for_any_record_fails_the_file_after_the_items_before():
    records = read_records(io.BytesIO(b'[{"id": 1},\n{"blob": "' + b"x" * BIG + b'"}]'), "x.json")
    assert next(records) == Record(1, {"id": 1})
    with pytest.raises(UnreadableFile, match=r"^line 2 \(the array's item at index 1\): an item of the JSON array runs over"):
        next(records)


def test_memory_stays_bounded_by_the_longest_record_however_long_a_line_is():
    class OneLongLine(io.RawIOBase):
        left = 64 << 20

        def readable(self):
            return True

        def readinto(self, buffer):
            n = min(len(buffer), self.left)
            buffer[:n] = b"z" * n
            self.left -= n
            return n

    tracemalloc.start()
    records = list(read_records(OneLongLine(), "one-line.jsonl"))
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(records) == 1 and records[0].error.startswith("the line runs over 8 MiB")
    assert top < 20 << 20  # the 8 MiB held, not the 64 MiB line


def test_empty_json_array_and_bom():
    assert read("\ufeff[]".encode(), "x.json") == []


# -- memory --------------------------------------------------------------------------------
class RepeatingStream(io.RawIOBase):
    """A large CSV produced on the fly, so the test itself holds no big buffer."""

    def __init__(self, rows: int, newline: bytes = b"\n", json_lines: bool = False) -> None:
        self._rows, self._done, self._newline = rows, 0, newline
        self._pending = b"" if json_lines else b"id,name,score" + newline
        self._row = b'{"id": %d, "name": "name-%d", "score": %d}%s' if json_lines else b"%d,name-%d,%d%s"

    def readable(self):
        return True

    def readinto(self, buffer):
        while len(self._pending) < len(buffer) and self._done < self._rows:
            self._pending += b"".join(self._row % (i, i, i % 97, self._newline)
                                      for i in range(self._done, self._done + 1000))
            self._done += 1000
        n = min(len(buffer), len(self._pending))
        buffer[:n], self._pending = self._pending[:n], self._pending[n:]
        return n


@pytest.mark.parametrize("key, newline", [("big.csv", b"\n"), ("big.csv", b"\r\n"), ("big.csv", b"\r"),
                                          ("big.jsonl", b"\n")])
def test_memory_stays_flat_however_many_records_are_read(key, newline):
    def peak(rows: int) -> int:
        tracemalloc.start()
        read = sum(not record.error for record in read_records(RepeatingStream(rows, newline, key.endswith(".jsonl")), key))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert read == rows
        return top

    small, large = peak(10_000), peak(100_000)
    assert large < small * 1.5 + 256 * 1024


@pytest.mark.parametrize("name, value, alike", [
    ("1", "2", True), ("C-1", "C-22", True), ("user1", "user2", True), ("ann@example.com", "bob@example.org", True),
    ("customer_id", "C-1", False), ("username", "alice", False), ("id2", "C-1", False), ("1", 2, False),
])
def test_a_csv_columns_name_is_taken_for_a_value_when_it_is_written_as_the_value_under_it_is(name, value, alike):
    from martech.csv_records import written_alike

    assert written_alike(name, value) is alike
