"""The Monetate function on the local stack: moto for AWS, the Monetate sandbox with faults."""

import contextlib
import copy
import dataclasses
import json
import time
import uuid
from pathlib import Path

import pytest
import requests

from sandbox.local.stack import LocalStack
from tests.integration.files import csv_bytes, drop, jsonl
from tests.integration.webhook_contract import call
from sandbox.monetate import MetadataSizes

SCHEMA = json.loads(Path("events/monetate/customers.schema.json").read_text())


@pytest.fixture(scope="module")
def stack():
    env = {"HTTP_MAX_ATTEMPTS": "10", "HTTP_BACKOFF_FACTOR": "0.01", "HTTP_BACKOFF_MAX": "0.05",
           "MONETATE_BATCH_SIZE": "200"}
    with LocalStack(metadata=MetadataSizes(customtargets=5, pageevents=5, experiences=2), function_env=env) as stack:
        yield stack


@pytest.fixture
def schema(stack):
    """A fresh dataset per test, so tests never see each other's records."""
    body = copy.deepcopy(SCHEMA)
    body["name"] = f"customers_{uuid.uuid4().hex[:8]}"
    stack.monetate.create_schema(body)
    yield body["name"]
    stack.monetate.faults.clear()


def customers(n, start=0):
    return [{"customer_id": f"C{i}", "tier": "gold", "lifetime_value": str(i), "newsletter": "yes",
             "last_purchase": "2024-05-01"} for i in range(start, start + n)]


@contextlib.contextmanager
def changed_settings(stack, **changes):
    """The function's settings with ``changes``, for the calls made meanwhile."""
    module = stack.functions["MonetateFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, **changes)
    try:
        yield
    finally:
        module.settings = settings


def posted_keys(stack, schema):
    """Unique keys in every POST Monetate accepted (201) for the schema, repeats included."""
    keys = []
    for entry in stack.monetate.received(f"/data/{schema}/"):
        if entry["method"] == "POST" and entry["status"] == 201:
            keys += [row["customer_id"] for row in entry["body"]["schema_rows"]]
    return keys


def test_every_valid_record_arrives_exactly_once_despite_500s_and_429s(stack, schema):
    rows = customers(2000)
    rows[10]["lifetime_value"] = "lots"
    rows[1500]["customer_id"] = ""
    stack.monetate.faults.update({"rate_500": 0.2, "rate_429": 0.1, "retry_after": 0, "seed": 11})
    report = drop(stack, f"monetate/{schema}/customers.csv", csv_bytes(rows))
    assert report["status"] == "complete"
    assert (report["read"], report["sent"], report["rejected"], report["failed"]) == (2000, 1998, 2, 0)
    keys = posted_keys(stack, schema)
    assert len(keys) == len(set(keys)) == 1998
    assert stack.monetate.state()["schemas"][schema] == 1998
    assert stack.monetate.stats()["by_status"].get("500", 0) > 0  # the faults really happened


def test_a_file_whose_header_names_the_fields_in_capitals_arrives_as_a_warehouse_exports_it(stack, schema):
    rows = [{name.upper(): value for name, value in row.items()} for row in customers(3)]
    rows[2]["LIFETIME_VALUE"] = "lots"
    report = drop(stack, f"monetate/{schema}/EXPORT.csv", csv_bytes(rows))
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 2, 1)
    assert sorted(posted_keys(stack, schema)) == ["C0", "C1"]
    rejected = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read())
    assert rejected == {"line": 4, "reasons": ["lifetime_value: expected a number, found 'lots'"], "record": rows[2]}


def test_fields_named_as_bi_tools_show_them_or_as_apis_write_json_arrive(stack, schema):
    def shown(name):
        return name.replace("_", " ").title()  # Customer Id, Lifetime Value

    rows = [{shown(name): value for name, value in row.items()} for row in customers(2)]
    report = drop(stack, f"monetate/{schema}/report.csv", csv_bytes(rows))
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 2, 0)
    assert report["read_as"] == {shown(name): name for name in customers(1)[0]}  # as the report says
    assert "left_out" not in report

    def camel(name):
        first, *rest = name.split("_")
        return first + "".join(word.title() for word in rest)  # customerId, lifetimeValue

    records = [{camel(name): value for name, value in row.items()} for row in customers(2, start=2)]
    report = drop(stack, f"monetate/{schema}/api.jsonl", jsonl(records))
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 2, 0)
    assert report["read_as"] == {"customerId": "customer_id", "lifetimeValue": "lifetime_value",
                                 "lastPurchase": "last_purchase"}
    rows = [row for entry in stack.monetate.received(f"/data/{schema}/") if entry["status"] == 201
            for row in entry["body"]["schema_rows"]]
    assert sorted(row["customer_id"] for row in rows) == ["C0", "C1", "C2", "C3"]
    assert all(row["lifetime_value"] == float(row["customer_id"][1:]) for row in rows)  # a number, by the field's type


def test_numbers_and_times_out_of_any_range_set_their_row_aside_and_never_sink_the_file(stack, schema):
    rows = customers(600)
    rows[5]["lifetime_value"] = "123456789012345678901234567890"  # past 64 bits: sent as a double
    rows[6]["last_purchase"] = "9999999999999"  # milliseconds, but past year 2286: fine
    rows[400]["lifetime_value"] = "9" * 5000
    rows[401]["last_purchase"] = "99999999999999999999"
    report = drop(stack, f"monetate/{schema}/ranges.csv", csv_bytes(rows))
    assert (report["status"], report["sent"], report["rejected"], report["runs"]) == ("complete", 598, 2, 1)
    rejected = [json.loads(line) for line in stack.s3.get_object(
        Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()]
    assert [(r["line"], r["reasons"][0].split(":")[0]) for r in rejected] == [(402, "lifetime_value"), (403, "last_purchase")]
    sent = {row["customer_id"]: row for entry in stack.monetate.received(f"/data/{schema}/")
            if entry["status"] == 201 for row in entry["body"]["schema_rows"]}
    assert sent["C5"]["lifetime_value"] == 1.2345678901234568e+29


def test_rejected_rows_name_their_line_and_reason(stack, schema):
    rows = customers(3)
    rows[1]["newsletter"] = "maybe"
    report = drop(stack, f"monetate/{schema}/bad-row.csv", csv_bytes(rows))
    body = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read()
    rejected = [json.loads(line) for line in body.splitlines()]
    assert rejected == [{"line": 3, "reasons": ["newsletter: expected true/false, 1/0 or yes/no, found 'maybe'"],
                         "record": rows[1]}]


def test_rejected_items_of_a_json_array_on_one_line_name_their_place_in_it(stack, schema):
    rows = customers(4)
    rows[1]["newsletter"], rows[3]["lifetime_value"] = "maybe", "lots"
    report = drop(stack, f"monetate/{schema}/export.json", json.dumps(rows).encode())  # as json.dump writes it
    assert (report["sent"], report["rejected"]) == (2, 2)
    body = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read()
    assert [(r["line"], r["index"], r["record"]) for r in map(json.loads, body.splitlines())] == [
        (1, 1, rows[1]), (1, 3, rows[3])]


def test_dates_with_slashes_are_read_day_first_when_date_order_says_so(stack, schema):
    rows = customers(2)
    rows[0]["last_purchase"], rows[1]["last_purchase"] = "25/12/2024", "01/05/2024 18:30"
    with changed_settings(stack, date_order="day-first"):
        report = drop(stack, f"monetate/{schema}/uk.csv", csv_bytes(rows))
    assert (report["sent"], report["rejected"]) == (2, 0)
    sent = {row["customer_id"]: row["last_purchase"] for entry in stack.monetate.received(f"/data/{schema}/")
            if entry["status"] == 201 for row in entry["body"]["schema_rows"]}
    assert sent == {"C0": "2024-12-25", "C1": "2024-05-01T18:30:00"}


def test_times_written_without_an_offset_are_sent_with_the_offset_of_the_time_zone_set(stack, schema):
    from zoneinfo import ZoneInfo

    rows = customers(3)
    rows[0]["last_purchase"], rows[1]["last_purchase"] = "2024-07-04 18:30:00", "2024-12-24 18:30:00"
    rows[2]["last_purchase"] = "2024-07-04T18:30:00Z"
    with changed_settings(stack, time_zone=ZoneInfo("America/Chicago")):
        report = drop(stack, f"monetate/{schema}/stores.csv", csv_bytes(rows))
    assert (report["sent"], report["rejected"]) == (3, 0)
    sent = {row["customer_id"]: row["last_purchase"] for entry in stack.monetate.received(f"/data/{schema}/")
            if entry["status"] == 201 for row in entry["body"]["schema_rows"]}
    assert sent == {"C0": "2024-07-04T18:30:00-05:00", "C1": "2024-12-24T18:30:00-06:00", "C2": "2024-07-04T18:30:00+00:00"}


def test_rows_monetate_refuses_are_set_aside_as_read_and_the_rest_of_the_batch_is_sent(stack, schema):
    drop(stack, f"monetate/{schema}/first.csv", csv_bytes(customers(1)))  # the function now holds the schema
    del stack.monetate.datasets[schema].fields["tier"]  # changed since: Monetate refuses rows with a tier
    rows = customers(6, start=10)
    for row in rows[::2]:
        row["tier"] = ""
    report = drop(stack, f"monetate/{schema}/after-change.csv", csv_bytes(rows))
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 3, 3)
    rejected = [json.loads(line) for line in
                stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()]
    assert [(r["line"], r["record"]) for r in rejected] == [(3, rows[1]), (5, rows[3]), (7, rows[5])]
    assert all(r["reasons"][0].startswith("tier: ") for r in rejected)


def test_a_quote_left_open_sets_aside_its_row_and_every_row_after_it_arrives(stack, schema):
    data = csv_bytes(customers(3000)).replace(b"\nC1,", b'\n"C1,', 1)  # line 3 opens a quote it never closes
    report = drop(stack, f"monetate/{schema}/stray-quote.csv", data)
    assert (report["status"], report["read"], report["sent"], report["rejected"]) == ("complete", 3000, 2999, 1)
    body = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read()
    [rejected] = [json.loads(line) for line in body.splitlines()]
    assert rejected["line"] == 3 and "lines 4-3001 are read again" in rejected["reasons"][0]
    assert rejected["record"] == '"C1,gold,1,yes,2024-05-01'  # the line as written
    assert sorted(posted_keys(stack, schema)) == sorted(f"C{i}" for i in range(3000) if i != 1)


def test_a_row_in_another_encoding_is_set_aside_and_the_rest_of_the_file_arrives(stack, schema):
    rows = customers(3000)
    rows[1000]["tier"], rows[2000]["tier"] = "or\u00e9", "m\u00fcller"
    data = csv_bytes(rows)
    for text in ("or\u00e9", "m\u00fcller"):
        data = data.replace(text.encode(), text.encode("cp1252"))
    report = drop(stack, f"monetate/{schema}/cp1252-row.csv", data)
    assert (report["status"], report["read"], report["sent"], report["rejected"]) == ("complete", 3000, 2998, 2)
    body = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read()
    hint = (" in Windows-1252: save the file as UTF-8; Excel calls it CSV UTF-8, or upload it with Content-Type text/csv;"
            " charset=windows-1252)")
    assert [json.loads(line) for line in body.splitlines()] == [
        {"line": 1002, "reasons": [f"not UTF-8 text: byte 9 of the line is 0xe9 (it would be 'é'{hint}"],
         "record": "C1000,or\ufffd,1000,yes,2024-05-01"},
        {"line": 2002, "reasons": [f"not UTF-8 text: byte 8 of the line is 0xfc (it would be 'ü'{hint}"],
         "record": "C2000,m\ufffdller,2000,yes,2024-05-01"}]
    # Alike in the report, whichever byte and character: a file saved in Windows-1252 has one reason, not hundreds.
    assert report["rejected_reasons"] == {f"not UTF-8 text: byte N of the line is 0x.. (it would be '...'{hint}": 2}
    assert len(set(posted_keys(stack, schema))) == 2998


def test_a_csv_whose_content_type_names_windows_1252_arrives_whole_in_its_own_text(stack, schema):
    rows = customers(1200)
    rows[5]["tier"], rows[1100]["tier"] = "Müller", "Café “Zoë”"
    data = csv_bytes(rows).decode().encode("cp1252")
    report = drop(stack, f"monetate/{schema}/legacy.csv", data, content_type="text/csv; charset=windows-1252")
    assert (report["status"], report["read"], report["sent"], report["rejected"]) == ("complete", 1200, 1200, 0)
    tiers = {row["customer_id"]: row.get("tier") for entry in stack.monetate.received(f"/data/{schema}/")
             if entry["method"] == "POST" and entry["status"] == 201 for row in entry["body"]["schema_rows"]}
    assert (tiers["C5"], tiers["C1100"], tiers["C6"]) == ("Müller", "Café “Zoë”", "gold")


def test_a_field_added_in_monetate_since_the_schema_was_cached_is_taken_from_files_and_calls(stack, schema, monkeypatch):
    from martech import monetate_delivery

    monkeypatch.setattr(monetate_delivery, "SCHEMA_RECHECK_SECONDS", 0)  # a held copy older than that is looked up again
    assert drop(stack, f"monetate/{schema}/before.csv", csv_bytes(customers(3)))["status"] == "complete"  # cached
    stack.monetate.add_field(schema, "points", {"data_type": "NUMBER"})
    rows = [{**row, "points": "7"} for row in customers(3)]
    report = drop(stack, f"monetate/{schema}/after.csv", csv_bytes(rows))
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 3, 0)
    stack.monetate.add_field(schema, "level", {"data_type": "STRING"})
    report = drop(stack, f"monetate/{schema}/after.jsonl", b'{"customer_id": "J1", "level": "vip"}\n')
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 1, 0)
    stack.monetate.add_field(schema, "region", {"data_type": "STRING"})
    answer = call(stack, "POST", f"/monetate/{schema}/records", json={"records": [{"customer_id": "W1", "region": "EU"}]})
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    rows = {row["customer_id"]: row for entry in stack.monetate.received(f"/data/{schema}/")
            if entry["method"] == "POST" and entry["status"] == 201 for row in entry["body"]["schema_rows"]}
    assert (rows["C2"]["points"], rows["J1"]["level"], rows["W1"]["region"]) == (7, "vip", "EU")
    # A name the schema still lacks is refused as before, after one look.
    report = drop(stack, f"monetate/{schema}/typo.csv", b"customer_id,pionts\nC1,3\n")
    assert report["status"] == "failed" and "pionts: not a field of schema" in report["errors"][0]


def test_a_csv_header_no_row_can_be_sent_under_fails_the_file_once_not_every_row(stack, schema):
    rows = [{"customer_ids": f"C{i}", "tier": "gold"} for i in range(1000)]
    report = drop(stack, f"monetate/{schema}/wrong-header.csv", csv_bytes(rows))
    assert (report["status"], report["sent"], report["rejected"], report["rejected_rows"]) == ("failed", 0, 0, None)
    assert report["errors"] == ["no row of this file can be sent, whatever it holds: customer_ids: not a field of"
                                f" schema {schema} (did you mean customer_id?); UnknownColumns=drop would leave out the"
                                " columns the schema does not have; customer_id: required, but no column holds it"]
    assert posted_keys(stack, schema) == []


def test_a_csv_written_without_its_header_is_said_to_lack_one_not_to_name_unknown_fields(stack, schema):
    report = drop(stack, f"monetate/{schema}/unloaded.csv", b"C-1,gold\nC-2,silver\n")
    assert (report["status"], report["sent"]) == ("failed", 0)
    assert report["errors"] == ["the CSV header holds values, not column names ('C-1' is written as 'C-2' under it, on"
                                " line 2): the file's first line must name its columns"]


def test_a_trailing_comma_on_every_line_and_empty_spreadsheet_rows_do_not_sink_the_file(stack, schema):
    data = csv_bytes(customers(3)).replace(b"\r\n", b",\r\n") + b",,,,,,\r\n" * 3
    report = drop(stack, f"monetate/{schema}/excel.csv", data)
    assert (report["status"], report["read"], report["sent"], report["rejected"]) == ("complete", 3, 3, 0)
    assert sorted(posted_keys(stack, schema)) == ["C0", "C1", "C2"]


def test_a_value_in_a_column_the_header_does_not_name_sets_its_row_aside_unless_unknown_columns_are_dropped(
        stack, schema):
    data = b",customer_id,tier\n,C0,gold\n1,C1,gold\n"  # pandas' index, but for one row
    report = drop(stack, f"monetate/{schema}/indexed.csv", data)
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 1, 1)
    rejected = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read())
    assert rejected["line"] == 3 and rejected["record"] == {"column 1": "1", "customer_id": "C1", "tier": "gold"}
    assert rejected["reasons"][0].startswith("column 1 has no name in the header but a value here")
    with changed_settings(stack, unknown_columns="drop"):
        report = drop(stack, f"monetate/{schema}/indexed-again.csv", data)
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 2, 0)
    assert sorted(posted_keys(stack, schema)) == ["C0", "C0", "C1"]


@pytest.mark.parametrize("name, data", [
    ("typo.csv", b"customer_id,tier,lifetme_value,notes\nC0,gold,12,call back\n"),
    ("typo.jsonl", b'{"customer_id": "C0", "tier": "gold", "lifetme_value": 12}\n{"customer_id": "C1", "notes": "x"}\n'),
])
def test_the_report_names_each_column_dropped_as_unknown_and_the_nearest_field(stack, schema, name, data):
    with changed_settings(stack, unknown_columns="drop"):
        report = drop(stack, f"monetate/{schema}/{name}", data)
    assert (report["status"], report["rejected"]) == ("complete", 0)
    assert report["left_out"] == {"lifetme_value": f"not a field of schema {schema} (did you mean lifetime_value?)",
                                  "notes": f"not a field of schema {schema}"}  # its values never arrive: said so
    assert "read_as" not in report


def test_a_file_whose_metadata_asks_a_dry_run_is_checked_and_nothing_is_sent(stack, schema):
    rows = customers(3)
    rows[1]["lifetime_value"] = "lots"
    report = drop(stack, f"monetate/{schema}/new-feed.csv", csv_bytes(rows), **{"dry-run": "true"})
    assert (report["status"], report["dry_run"], report["read"], report["checked"], report["rejected"], report["sent"],
            report["batches"]) == ("complete", True, 3, 2, 1, 0, 0)
    assert report["rejected_reasons"] == {"lifetime_value: expected a number, found '...'": 1}
    report = drop(stack, f"monetate/{schema}/new-feed.jsonl", jsonl(customers(2)), dry_run="yes")  # as written otherwise
    assert (report["dry_run"], report["checked"], report["sent"]) == (True, 2, 0)
    assert posted_keys(stack, schema) == []
    report = drop(stack, f"monetate/{schema}/typo.csv", csv_bytes(rows), dryrun="true")
    assert (report["status"], report["sent"]) == ("failed", 0)
    assert report["errors"] == ["the object's metadata dryrun='true' is no option (did you mean dry-run?); nothing was sent"]
    report = drop(stack, f"monetate/{schema}/unsure.csv", csv_bytes(rows), **{"dry-run": "maybe"})
    assert report["errors"] == ["the object's metadata dry-run='maybe' is neither true nor false; nothing was sent"]
    assert posted_keys(stack, schema) == [] and "dry_run" not in report


def test_a_sql_server_export_writing_null_as_text_arrives_with_those_fields_absent_when_csv_nulls_says_so(
        stack, schema):
    data = b"customer_id,tier,lifetime_value,last_purchase\r\nC0,NULL,NULL,NULL\r\nC1,gold,12,2024-05-01\r\n"
    report = drop(stack, f"monetate/{schema}/ssms.csv", data)
    assert (report["sent"], report["rejected"]) == (1, 1)  # NULL is no number: set aside, by default
    with changed_settings(stack, csv_nulls="NULL"):
        report = drop(stack, f"monetate/{schema}/ssms-again.csv", data)
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 2, 0)
    stored = {row["customer_id"]: row for row in
              requests.get(f"{stack.monetate_server.url}/_sandbox/records/{schema}").json()}
    assert stored["C0"]["customer_id"] == "C0" and stored["C0"]["tier"] is None  # absent, not the text NULL
    assert stored["C1"]["tier"] == "gold"


def test_a_key_repeated_in_a_later_batch_ends_with_its_last_row_though_an_earlier_batch_was_retried(stack, schema):
    # Six batches of 200: each key's second row is three batches after its first. The first post is
    # throttled; the later row must still land last, as a later record replaces an earlier one.
    rows = customers(600) + [{**row, "lifetime_value": "2"} for row in customers(600)]
    for row in rows[:600]:
        row["lifetime_value"] = "1"
    stack.monetate.faults.update({"script": ["429"], "retry_after": 0.3, "paths": f"/data/{schema}/"})
    report = drop(stack, f"monetate/{schema}/updates.csv", csv_bytes(rows))
    assert (report["status"], report["sent"]) == ("complete", 1200)
    assert "duplicates" not in report and "reads" not in report  # Optimove's counts: a 0 here would say no key repeats
    assert [e["status"] for e in stack.monetate.received(f"/data/{schema}/")].count(429) == 1
    stored = stack.monetate.datasets[schema].records()
    assert len(stored) == 600
    assert {row["lifetime_value"] for row in stored} == {2}


def test_a_duplicate_s3_event_posts_nothing_twice_nor_counts_the_file_twice(stack, schema, monkeypatch):
    metrics = stack.functions["MonetateFunction"].module.metrics
    counted = []
    add_metric = metrics.add_metric
    monkeypatch.setattr(metrics, "add_metric", lambda **metric: counted.append((metric["name"], metric["value"]))
                        or add_metric(**metric))
    key = f"monetate/{schema}/twice.csv"
    first = drop(stack, key, csv_bytes(customers(50)))
    assert ("RecordsSent", 50) in counted
    counted.clear()
    version = stack.s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": stack.bucket},
                                                                   "object": {"key": key, "versionId": version}}}]}
    for _ in range(2):
        stack.sqs.send_message(QueueUrl=stack.queue_urls["MonetateQueue"], MessageBody=json.dumps(event))
    stack.wait_idle()
    assert len(posted_keys(stack, schema)) == 50
    assert stack.report(key) == first
    assert counted == []  # the dashboard's records and files are counted when the run ends, once


def test_an_event_for_a_version_deleted_before_its_turn_is_dropped_not_retried_and_keeps_the_report(stack, schema):
    key = f"monetate/{schema}/deleted.csv"
    first = drop(stack, key, csv_bytes(customers(3)))
    version = stack.s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
    stack.s3.delete_object(Bucket=stack.bucket, Key=key, VersionId=version)  # for good, not a delete marker
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": stack.bucket},
                                                                   "object": {"key": key, "versionId": version}}}]}
    stack.sqs.send_message(QueueUrl=stack.queue_urls["MonetateQueue"], MessageBody=json.dumps(event))
    stack.wait_idle()
    assert not any(stack.dead_letters().values())
    assert stack.report(key) == first and len(posted_keys(stack, schema)) == 3


def test_a_spark_output_folder_delivers_its_part_files_and_leaves_its_markers_alone_without_a_report(stack, schema):
    folder = f"monetate/{schema}/export"
    for key, body in ((f"{folder}/_temporary/0/task_1/part-00000.csv", csv_bytes(customers(2))),  # staged, then moved
                      (f"{folder}/part-00000-c000.csv", csv_bytes(customers(2))),
                      (f"{folder}/.part-00000-c000.csv.crc", b"crc\x00\x01"), (f"{folder}/_SUCCESS", b""),
                      (f"monetate/{schema}/.DS_Store", b"\x00\x00\x00\x01Bud1")):
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body)
    stack.wait_idle()
    reports = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"reports/monetate/{schema}/")
    assert [item["Key"] for item in reports.get("Contents", [])] == [f"reports/{folder}/part-00000-c000.csv.json"]
    assert sorted(posted_keys(stack, schema)) == ["C0", "C1"]  # once, from the part file in place
    assert not any(stack.dead_letters().values())


def test_a_new_version_of_the_same_key_is_delivered_again(stack, schema):
    key = f"monetate/{schema}/daily.csv"
    drop(stack, key, csv_bytes(customers(5)))
    report = drop(stack, key, csv_bytes(customers(5, start=100)))
    assert report["sent"] == 5 and len(posted_keys(stack, schema)) == 10


def test_a_key_written_again_in_a_bucket_whose_versioning_is_suspended_is_delivered_again(stack, schema):
    key = f"monetate/{schema}/daily.csv"
    stack.s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Suspended"})
    try:
        drop(stack, key, csv_bytes(customers(5)))
        report = drop(stack, key, csv_bytes(customers(5, start=100)))
    finally:
        stack.s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
    assert report["sent"] == 5 and len(posted_keys(stack, schema)) == 10


def test_keys_with_spaces_and_plus_signs_arrive_decoded(stack, schema):
    report = drop(stack, f"monetate/{schema}/May export+final.csv", csv_bytes(customers(3)))
    assert report["key"] == f"monetate/{schema}/May export+final.csv" and report["sent"] == 3


def test_json_lines_and_gzip_files_are_delivered(stack, schema):
    import gzip

    lines = "\n".join(json.dumps(r) for r in customers(20)).encode()
    report = drop(stack, f"monetate/{schema}/customers.jsonl.gz", gzip.compress(lines))
    assert report["sent"] == 20


def test_a_token_that_dies_mid_file_is_refreshed_and_nothing_is_lost(stack, schema):
    # Tokens die 0.4 s after they are issued; 25 batches, 4 at a time, 0.1 s each, take longer than that,
    # while a fresh token outlives a few requests.
    stack.monetate.faults.update({"token_ttl": 0.4, "latency": 0.1})
    stack.functions["MonetateFunction"].module.monetate().tokens.invalidate(
        stack.functions["MonetateFunction"].module.monetate().tokens._token)  # start from a fresh, short-lived token
    report = drop(stack, f"monetate/{schema}/slow.csv", csv_bytes(customers(5000)))
    assert report["status"] == "complete" and report["sent"] == 5000
    assert report["token_refreshes"] >= 2
    assert stack.monetate.stats()["by_status"].get("401", 0) >= 1


def test_an_unknown_schema_ends_in_the_report_not_in_retries(stack):
    report = drop(stack, "monetate/no_such_schema/x.csv", csv_bytes(customers(2)))
    assert report["status"] == "failed" and "no schema named 'no_such_schema'" in report["errors"][0]
    assert stack.dead_letters()["MonetateDeadLetterQueue"] == 0


def test_an_unknown_schema_names_the_nearest_schema_monetate_has(stack, schema):
    report = drop(stack, f"monetate/{schema.upper()}/x.csv", csv_bytes(customers(2)))
    assert report["errors"] == [f"Monetate has no schema named {schema.upper()!r} (did you mean {schema}?)"]
    answer = webhook(stack, schema[:-1], {"records": customers(1)})
    assert answer.status_code == 404 and f"(did you mean {schema}?)" in answer.json()["message"]


def test_an_unreadable_file_ends_in_the_report(stack, schema):
    report = drop(stack, f"monetate/{schema}/broken.json", b'[{"customer_id": "C1"}')
    assert report["status"] == "failed" and "not closed" in report["errors"][0]


def test_a_file_that_breaks_sends_what_was_read_before_the_break_and_fails(stack, schema):
    report = drop(stack, f"monetate/{schema}/half.json", b'[{"customer_id": "C1"}, {"customer_id": ""},')
    assert report["status"] == "failed"
    assert "line 1, after 2 items of the array: the JSON array is not closed" in report["errors"][0]
    assert (report["read"], report["sent"], report["rejected"], report["failed"]) == (2, 1, 1, 0)
    assert posted_keys(stack, schema) == ["C1"]


def test_a_revoked_key_stops_cleanly(stack, schema):
    stack.monetate.auth.set_active("key-1", False)
    try:
        report = drop(stack, f"monetate/{schema}/revoked.csv", csv_bytes(customers(600)))
    finally:
        stack.monetate.auth.set_active("key-1", True)
    assert report["status"] == "failed" and "deactivated" in report["errors"][0]
    posts = [e for e in stack.monetate.received(f"/data/{schema}/") if e["method"] == "POST"]
    assert len(posts) <= 1  # no retry storm
    assert stack.dead_letters()["MonetateDeadLetterQueue"] == 0


def test_a_lost_answer_without_a_unique_key_is_reported_unknown_not_resent(stack):
    name = _schema_without_unique_key(stack)
    stack.monetate.faults.update({"script": ["drop-after"], "paths": "/production/data/"})
    report = drop(stack, f"monetate/{name}/visits.csv", csv_bytes(customers(300)))
    stack.monetate.faults.clear()
    assert report["status"] == "partial" and report["unknown"] == 200  # one batch at a time: the first was lost
    assert report["sent"] == 100
    assert stack.monetate.state()["schemas"][name] == 300  # the lost batch had landed; nothing doubled


# -- webhook -------------------------------------------------------------------------------
def _schema_without_unique_key(stack):
    body = copy.deepcopy(SCHEMA)
    body["name"] = f"visits_{uuid.uuid4().hex[:8]}"
    del body["fields"]["customer_id"]["unique_key"]
    stack.monetate.create_schema(body)
    return body["name"]


def _fail_third_post(stack):
    """Batches of 200: the first two posts land, the third keeps answering 503 until the client gives up."""
    stack.monetate.faults.update({"script": ["pass", "pass"] + ["503"] * 10, "paths": "/production/data/"})


def test_a_file_retried_after_a_transient_failure_goes_on_where_it_stopped_without_a_unique_key(stack, monkeypatch):
    name = _schema_without_unique_key(stack)
    rows = customers(1000)
    rows[5]["customer_id"], rows[700]["customer_id"] = "", " "  # before and after the failure
    _fail_third_post(stack)
    metrics = stack.functions["MonetateFunction"].module.metrics
    counted = []
    add_metric = metrics.add_metric
    monkeypatch.setattr(metrics, "add_metric", lambda **metric: counted.append(metric["name"]) or add_metric(**metric))
    try:
        report = drop(stack, f"monetate/{name}/visits.csv", csv_bytes(rows))
    finally:
        stack.monetate.faults.clear()
    assert counted.count("FileRetries") == 1  # the failed run, as the dashboard shows it
    assert report["status"] == "complete" and report["runs"] == 2
    assert (report["read"], report["sent"], report["rejected"], report["failed"]) == (1000, 998, 2, 0)
    assert "transient (try 1 of 5; the next in 5 minutes): Monetate answered 503 after retries" in report["errors"]
    keys = posted_keys(stack, name)
    assert len(keys) == len(set(keys)) == 998  # the two batches that landed were not sent again
    assert stack.monetate.state()["schemas"][name] == 998  # no unique key: a second send would double them
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()
    assert [json.loads(line)["line"] for line in rejected] == [7, 702]
    assert stack.dead_letters()["MonetateDeadLetterQueue"] == 0


def test_a_file_whose_runs_failed_before_anything_was_settled_keeps_each_try_in_its_report(stack, schema):
    # Two runs in a row give up on the one batch (ten tries each): each retry starts from the top.
    stack.monetate.faults.update({"script": ["503"] * 20, "paths": f"/data/{schema}/"})
    try:
        report = drop(stack, f"monetate/{schema}/twice.csv", csv_bytes(customers(150)))
    finally:
        stack.monetate.faults.clear()
    assert (report["status"], report["runs"], report["read"], report["sent"]) == ("complete", 3, 150, 150)
    assert report["errors"] == [f"transient (try {n} of 5; the next in {m} minutes): Monetate answered 503 after retries"
                                for n, m in ((1, 5), (2, 10))]
    assert report["started_at"] < report["finished_at"]
    assert stack.monetate.state()["schemas"][schema] == 150


def webhook(stack, schema, body, headers=None, **params):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return call(stack, "POST", f"/monetate/{schema}/records", data=data, params=params, headers=headers or {})


def test_a_webhook_call_made_again_with_its_idempotency_key_gets_the_first_answer_and_sends_nothing_twice(stack):
    name = _schema_without_unique_key(stack)  # where a second post would store the rows twice
    key = {"Idempotency-Key": f"order-sync-{uuid.uuid4()}"}
    body = {"records": customers(3)}
    first = webhook(stack, name, body, key)
    again = webhook(stack, name, body, key)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers.get("Idempotency-Replayed") == "true" and "Idempotency-Replayed" not in first.headers
    assert stack.monetate.state()["schemas"][name] == 3
    other = webhook(stack, name, {"records": customers(1)}, key)
    assert other.status_code == 422 and "used before with another body or query" in other.json()["message"]
    assert webhook(stack, name, body).status_code == 200  # without a key every call is sent
    assert stack.monetate.state()["schemas"][name] == 6


def test_a_query_parameter_the_call_does_not_take_is_refused(stack, schema):
    answer = webhook(stack, schema, {"records": customers(1)}, parital="true")
    assert answer.status_code == 400 and answer.json()["message"] == (
        "this call takes no such query parameter: ?parital (did you mean partial?); it takes ?dry_run, ?partial")
    assert webhook(stack, schema, {"records": customers(1)}, partial="true").status_code == 200


def test_a_call_made_again_with_its_key_and_another_query_is_refused_not_answered_as_the_first(stack, schema):
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"records": [*customers(2), {"customer_id": ""}]}
    assert webhook(stack, schema, body, key).status_code == 400  # one invalid record: nothing sent
    partial = webhook(stack, schema, body, key, partial="true")  # then the valid ones anyway, with the same key
    assert partial.status_code == 422 and "another body or query" in partial.json()["message"]
    assert webhook(stack, schema, body, {"Idempotency-Key": str(uuid.uuid4())}, partial="true").json()["accepted"] == 2


def test_a_webhook_answer_of_503_is_not_kept_so_the_call_made_again_is_sent(stack, schema):
    key = {"Idempotency-Key": str(uuid.uuid4())}
    stack.monetate.faults.update({"script": ["503"] * 10, "paths": f"/data/{schema}/"})
    assert webhook(stack, schema, {"records": customers(2)}, key).status_code == 503
    stack.monetate.faults.clear()
    again = webhook(stack, schema, {"records": customers(2)}, key)
    assert again.status_code == 200 and again.json()["accepted"] == 2 and "Idempotency-Replayed" not in again.headers
    assert stack.monetate.state()["schemas"][schema] == 2


def test_a_503_after_part_of_the_records_were_sent_is_kept_so_the_same_call_sends_nothing_twice(stack):
    name = _schema_without_unique_key(stack)  # where a row sent twice is stored twice
    key, body = {"Idempotency-Key": str(uuid.uuid4())}, {"records": customers(700)}
    _fail_third_post(stack)
    first = webhook(stack, name, body, key)
    stack.monetate.faults.clear()
    again = webhook(stack, name, body, key)
    assert first.status_code == again.status_code == 503 and again.json() == first.json()
    assert again.headers["Idempotency-Replayed"] == "true" and stack.monetate.state()["schemas"][name] == 400


def test_webhook_answers_per_record(stack, schema):
    answer = webhook(stack, schema, {"records": customers(3)})
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 3 and [r["status"] for r in answer.json()["results"]] == ["accepted"] * 3
    assert stack.monetate.state()["schemas"][schema] == 3


def test_webhook_with_an_invalid_record_sends_nothing_and_says_why(stack, schema):
    records = customers(3)
    records[2]["newsletter"] = "perhaps"
    answer = webhook(stack, schema, {"records": records})
    assert answer.status_code == 400
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["not_sent", "not_sent", "rejected"]
    assert "newsletter" in results[2]["reasons"][0]
    assert stack.monetate.state()["schemas"][schema] == 0


def test_webhook_partial_mode_sends_the_valid_records(stack, schema):
    records = customers(3)
    records[0]["customer_id"] = ""
    answer = webhook(stack, schema, {"records": records}, partial="true")
    assert answer.status_code == 200 and answer.json()["accepted"] == 2 and answer.json()["rejected"] == 1


def test_a_webhook_answer_says_which_keys_were_read_as_fields_and_which_were_left_out(stack, schema):
    records = [{"customerId": "W1", "Tier": "gold", "lifetme_value": 3}, {"customer_id": "W2"}]
    with changed_settings(stack, unknown_columns="drop"):
        answer = webhook(stack, schema, {"records": records})
    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    assert answer.json()["read_as"] == {"customerId": "customer_id", "Tier": "tier"}
    assert answer.json()["left_out"] == {"lifetme_value": f"not a field of schema {schema} (did you mean lifetime_value?)"}
    answer = webhook(stack, schema, {"records": [{"customer_id": "W3"}]})
    assert answer.status_code == 200 and not {"read_as", "left_out"} & answer.json().keys()  # nothing to say


def test_a_dry_run_checks_every_record_against_the_schema_and_sends_none(stack, schema):
    records = customers(2)
    records[1]["Lifetime Value"] = records[1].pop("lifetime_value")
    answer = webhook(stack, schema, {"records": records}, dry_run="true")
    assert answer.status_code == 200
    valid = ["valid; not sent: dry_run=true only checks"]
    assert answer.json()["results"] == [{"index": i, "status": "not_sent", "reasons": valid} for i in range(2)]
    assert answer.json()["read_as"] == {"Lifetime Value": "lifetime_value"}
    records[0]["newsletter"] = "maybe"
    answer = webhook(stack, schema, {"records": records}, dry_run="true", partial="true")
    assert answer.status_code == 400 and [r["status"] for r in answer.json()["results"]] == ["rejected", "not_sent"]
    assert answer.json()["results"][0]["reasons"] == ["newsletter: expected true/false, 1/0 or yes/no, found 'maybe'"]
    assert posted_keys(stack, schema) == []  # nothing reached Monetate


def _send_again(stack, schema, records, answer):
    """Send the records an answer marks not_sent, as a caller would after a 503."""
    again = [records[r["index"]] for r in answer.json()["results"] if r["status"] == "not_sent"]
    return webhook(stack, schema, {"records": again})


@pytest.mark.parametrize("unique_key", [True, False])
def test_a_webhook_call_whose_vendor_fails_part_way_says_what_was_not_sent_and_those_complete_it(stack, schema, unique_key):
    name = schema if unique_key else _schema_without_unique_key(stack)
    records = customers(700)  # batches of 200: the third keeps failing
    _fail_third_post(stack)
    answer = webhook(stack, name, {"records": records})
    stack.monetate.faults.clear()
    assert answer.status_code == 503 and "not_sent" in answer.json()["message"]
    assert (answer.json()["accepted"], answer.json()["not_sent"]) == (400, 300)
    results = answer.json()["results"]
    assert results[400]["reasons"][0].startswith("not taken: Monetate answered 503")
    assert results[600]["reasons"][0].startswith("not sent: Monetate answered 503")
    again = _send_again(stack, name, records, answer)
    assert again.status_code == 200 and again.json()["accepted"] == 300
    keys = posted_keys(stack, name)
    assert len(keys) == len(set(keys)) == 700 and stack.monetate.state()["schemas"][name] == 700  # each once


def test_a_webhook_call_stops_sending_before_api_gateway_stops_waiting_and_says_what_it_did_not_send(stack, schema):
    module = stack.functions["MonetateFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, webhook_seconds=1.0)
    stack.monetate.faults.update({"latency": 0.3})  # five batches would take 1.5 s
    records = customers(1000)
    try:
        began = time.monotonic()
        answer = webhook(stack, schema, {"records": records})
        took = time.monotonic() - began
    finally:
        module.settings = settings
        stack.monetate.faults.clear()
    assert answer.status_code == 503 and "time ran out" in answer.json()["message"]
    counts = answer.json()
    assert counts["not_sent"] >= 200 and counts["accepted"] + counts["not_sent"] == 1000 and took < 1.5
    again = _send_again(stack, schema, records, answer)
    assert again.status_code == 200 and again.json()["accepted"] == counts["not_sent"]
    assert stack.monetate.state()["schemas"][schema] == 1000


@pytest.mark.parametrize("switch", ["True", "1", "yes", ""])
def test_webhook_partial_switch_reads_as_true_however_it_is_written(stack, schema, switch):
    records = customers(3)
    records[0]["customer_id"] = ""
    answer = webhook(stack, schema, {"records": records}, partial=switch)
    assert answer.status_code == 200 and answer.json()["accepted"] == 2


def test_webhook_partial_switch_that_is_neither_true_nor_false_is_refused_before_anything_is_sent(stack, schema):
    answer = webhook(stack, schema, {"records": customers(2)}, partial="maybe")
    assert answer.status_code == 400 and answer.json() == {"message": "?partial=maybe: write true or false"}
    assert stack.monetate.state()["schemas"][schema] == 0


@pytest.mark.parametrize("body, status", [(b"{not json", 400), ({"rows": []}, 400), ([1, 2], 400),
                                          ({"records": {"a": 1}}, 400), ({"schema_rows": "x"}, 400)])
def test_webhook_refuses_malformed_bodies(stack, schema, body, status):
    assert webhook(stack, schema, body).status_code == status


@pytest.mark.parametrize("body", [
    {"schema_rows": [{"customer_id": "R1"}, {"customer_id": "R2"}], "_sent_time": "2026-11-24T10:00:00Z"},  # as Monetate takes it
    [{"customer_id": "R1"}, {"customer_id": "R2"}],
])
def test_webhook_takes_monetates_own_body_and_the_list_alone(stack, schema, body):
    answer = webhook(stack, schema, body)
    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    assert sorted(posted_keys(stack, schema)) == ["R1", "R2"]


def test_webhook_body_with_a_byte_order_mark_before_it_is_read(stack, schema):
    body = b"\xef\xbb\xbf" + json.dumps({"records": customers(2)}).encode()  # as PowerShell 5 saves a file
    answer = webhook(stack, schema, body)
    assert answer.status_code == 200 and answer.json()["accepted"] == 2


def test_webhook_body_that_is_gzip_compressed_is_refused_saying_so(stack, schema):
    import gzip

    answer = webhook(stack, schema, gzip.compress(json.dumps({"records": customers(2)}).encode()),
                     headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 400 and answer.json()["message"] == (
        "the body is gzip-compressed, which the webhooks do not take: send the JSON as it is")


@pytest.mark.parametrize("body, headers, said", [
    (json.dumps({"records": customers(1)}).encode("utf-16"), {},  # as PowerShell's Out-File saves text
     "the body is UTF-16 text, as its byte order mark says, which the webhooks do not take: send it as UTF-8"),
    (b"customer_id,tier\nC-1,gold\n", {"Content-Type": "text/csv"},
     "the body is not valid JSON: unexpected character, expected a JSON value at line 1, column 1; it looks like CSV:"
     " the webhooks take JSON, and a CSV file goes into the bucket"),
    (b"customer_id,tier\nC-1,gold\n", {"Content-Type": "application/x-www-form-urlencoded"},  # as curl -d sends a file
     "the body is not valid JSON: unexpected character, expected a JSON value at line 1, column 1; it looks like CSV:"
     " the webhooks take JSON, and a CSV file goes into the bucket"),
    (b'{"customer_id": "C-1"}\n{"customer_id": "C-2"}\n', {},
     "the body is not valid JSON: unexpected content after document at line 2, column 1; it holds more than one JSON"
     ' value, as JSON Lines does: send one ({"records": [...]}), or drop the file into the bucket'),
    (b"hello", {}, "the body is not valid JSON: unexpected character, expected a JSON value at line 1, column 1"),
    (b'{"records": [}', {"Content-Type": "application/json"},
     "the body is not valid JSON: unexpected character, expected a JSON value at line 1, column 14"),
    (b'{"records": [}', {"Content-Type": "text/csv"},  # JSON mislabelled: broken JSON, not CSV
     "the body is not valid JSON: unexpected character, expected a JSON value at line 1, column 14"),
])
def test_webhook_body_in_another_format_is_refused_saying_which_and_where_its_file_goes(stack, schema, body, headers, said):
    answer = webhook(stack, schema, body, headers=headers)
    assert answer.status_code == 400 and answer.json()["message"] == said
    assert posted_keys(stack, schema) == []


def test_webhook_body_holding_nan_is_refused_with_where_it_is_and_what_to_write_instead(stack, schema):
    body = '{"records": [{"customer_id": "C-1", "lifetime_value": NaN}]}'  # as Python's json.dumps writes a missing value
    answer = webhook(stack, schema, body)
    assert answer.status_code == 400 and answer.json()["message"] == (
        f"the body is not valid JSON: unexpected character, expected a JSON value at line 1, column {body.index('NaN') + 1}:"
        " NaN and Infinity are not JSON; write null or a number")
    assert stack.monetate.state()["schemas"][schema] == 0


def test_webhook_body_that_is_not_utf8_is_refused_saying_so(stack, schema):
    body = '{"records": [{"customer_id": "M\u00fcller"}]}'.encode("cp1252")  # as a Windows client may send it
    answer = webhook(stack, schema, body)
    assert answer.status_code == 400 and answer.json() == {
        "message": f"the body is not UTF-8 text: byte {body.index(0xFC) + 1} is 0xfc"}


def test_webhook_refuses_more_records_than_an_answer_can_carry_with_413(stack, schema):
    module = stack.functions["MonetateFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, webhook_max_records=5)
    try:
        answer = webhook(stack, schema, {"records": customers(6)})
    finally:
        module.settings = settings
    assert answer.status_code == 413 and "at most 5 a call" in answer.json()["message"]
    assert stack.monetate.state()["schemas"][schema] == 0


def test_webhook_refuses_bodies_over_the_limit_with_413(stack, schema):
    big = {"records": [{"customer_id": "x" * 1000}] * 7000}
    assert webhook(stack, schema, big).status_code == 413


def test_webhook_unknown_schema_is_404(stack):
    assert webhook(stack, "no_such_schema", {"records": customers(1)}).status_code == 404


def test_webhook_needs_the_api_key(stack, schema):
    answer = requests.post(f"{stack.api.url}/monetate/{schema}/records", json={"records": []})
    assert answer.status_code == 403


def test_a_file_too_big_for_one_run_goes_on_in_later_runs_and_every_record_arrives_once(stack, schema):
    module = stack.functions["MonetateFunction"].module
    settings = module.settings
    # A margin as long as the whole timeout: every run takes the fewest records it can (a batch, 200) and hands
    # the rest on.
    module.settings = dataclasses.replace(settings, file_run_margin_seconds=900)
    rows = customers(3000)
    rows[5]["customer_id"], rows[2500]["customer_id"] = "", " "  # rejected in the first run and in a later one
    try:
        report = drop(stack, f"monetate/{schema}/big.csv", csv_bytes(rows))
    finally:
        module.settings = settings
    assert report["status"] == "complete" and report["runs"] == 15  # 200 records a run
    assert (report["read"], report["sent"], report["rejected"]) == (3000, 2998, 2)
    assert report["rejected_reasons"] == {"customer_id: required but empty or missing": 2}
    keys = posted_keys(stack, schema)
    assert len(keys) == len(set(keys)) == 2998  # nothing sent twice across runs
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()
    assert [json.loads(line)["line"] for line in rejected] == [7, 2502]
