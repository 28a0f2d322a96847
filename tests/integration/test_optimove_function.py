"""The Optimove function on the local stack: moto for AWS, the Optimove sandbox with faults."""

import dataclasses
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests

from sandbox.local.stack import LocalStack
from tests.integration.files import csv_bytes, drop
from tests.integration.webhook_contract import call
from sandbox.monetate import MetadataSizes


@pytest.fixture(scope="module")
def stack():
    env = {"HTTP_MAX_ATTEMPTS": "10", "HTTP_BACKOFF_FACTOR": "0.01", "HTTP_BACKOFF_MAX": "0.05"}
    with LocalStack(metadata=MetadataSizes(customtargets=5, pageevents=5, experiences=2), function_env=env) as stack:
        yield stack


def optimove_call(stack, method, path, body=None):
    creds = stack.optimove.credentials()
    return requests.request(method, f"{stack.optimove_server.url}/api/data-connections/v1{path}", json=body,
                            headers={"x-api-key": creds["api_key"], "x-brand-key": creds["brand_key"]})


@pytest.fixture
def connection(stack):
    name = f"customers-{uuid.uuid4().hex[:8]}"
    answer = optimove_call(stack, "POST", "/connections", {"name": name, "primary_key": "customer_id"})
    yield {"uuid": answer.json()["data_connection_uuid"], "name": name}
    stack.optimove.faults.clear()


def held(stack, conn):
    return requests.get(f"{stack.optimove_server.url}/_sandbox/records/{conn['uuid']}").json()["records"]


def uploads(stack, conn):
    return [e["body"] for e in stack.optimove.received(f"/connections/{conn['uuid']}/upload_data") if e["status"] == 200]


def test_a_12001_row_file_is_three_requests_of_one_batch_completed_by_the_last(stack, connection):
    rows = [{"customer_id": str(i), "tier": "gold"} for i in range(12001)]
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/big.csv", csv_bytes(rows))
    assert report["status"] == "complete" and report["sent"] == 12001 and report["batches"] == 3
    bodies = uploads(stack, connection)
    assert [len(b["data"]) for b in bodies] == [5000, 5000, 2001]
    assert [b["batch_completed"] for b in bodies] == [False, False, True]
    assert len({b["batch_uuid"] for b in bodies}) == 1
    assert len(held(stack, connection)) == 12001


def test_uploads_of_a_key_in_a_bucket_whose_versioning_is_suspended_are_batches_of_their_own(stack, connection):
    key = f"optimove/{connection['uuid']}/upsert/daily.csv"
    stack.s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Suspended"})
    try:
        drop(stack, key, csv_bytes([{"customer_id": "1", "tier": "gold"}]))
        drop(stack, key, csv_bytes([{"customer_id": "2", "tier": "gold"}]))
    finally:
        stack.s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
    first, second = uploads(stack, connection)
    assert first["batch_uuid"] != second["batch_uuid"]  # a completed batch is not opened again
    assert set(held(stack, connection)) == {"1", "2"}


def test_a_webhook_call_with_the_optimove_secret_unusable_answers_502_saying_so_and_sends_nothing(stack, connection):
    from aws_lambda_powertools.utilities import parameters

    name, secrets = stack.template.parameters["OptimoveSecretName"], boto3.client("secretsmanager")
    good = secrets.get_secret_value(SecretId=name)["SecretString"]
    secrets.put_secret_value(SecretId=name, SecretString="not json")
    parameters.clear_caches()  # as a new container finds it
    try:
        answer = call(stack, "POST", f"/optimove/connections/{connection['uuid']}/delete", json={"primary_keys": ["1"]})
    finally:
        secrets.put_secret_value(SecretId=name, SecretString=good)
        parameters.clear_caches()
    assert answer.status_code == 502
    assert answer.json() == {"message": "the Optimove secret must be JSON with api_key and brand_key; nothing was sent"}
    assert not stack.optimove.received(f"/connections/{connection['uuid']}/delete_data")


def test_connections_can_be_named_instead_of_by_uuid(stack, connection):
    report = drop(stack, f"optimove/{connection['name']}/upsert/by-name.jsonl", b'{"customer_id": 1, "tier": "x"}\n')
    assert report["sent"] == 1 and held(stack, connection) == {"1": {"customer_id": 1, "tier": "x"}}


def test_a_repeated_key_is_sent_once_with_its_last_row_and_counted(stack, connection):
    rows = [{"customer_id": "1", "tier": "bronze"}, {"customer_id": "2", "tier": "x"}, {"customer_id": "1", "tier": "gold"}]
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/dupes.csv", csv_bytes(rows))
    assert report["sent"] == 2 and report["duplicates"] == 1
    assert "token_refreshes" not in report  # Optimove takes API keys: no token a 0 could speak of
    assert held(stack, connection)["1"]["tier"] == "gold"


def test_a_key_a_spreadsheet_mangled_sets_its_row_aside_in_uploads_and_deletes(stack, connection):
    sheet = b"customer_id,tier\n123456789012,gold\n1.23457E+11,x\n1.23457E+11,y\n#N/A,z\n1001.0,w\n"
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/sheet.csv", sheet)
    assert (report["sent"], report["rejected"], report["duplicates"]) == (1, 4, 0)
    rejected = [json.loads(line) for line in stack.s3.get_object(
        Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()]
    assert [(row["line"], row["reasons"]) for row in rejected][0] == (3, [
        "customer_id: the primary key '1.23457E+11', a long number as a spreadsheet shows it, rounded to six figures:"
        " format the column as text before saving the file, which holds what the sheet shows"])
    assert rejected[2]["reasons"][0].startswith("customer_id: the primary key '#N/A', a spreadsheet's error")
    assert rejected[3]["reasons"][0].startswith("customer_id: the primary key '1001.0', a whole number written as a float")
    assert list(held(stack, connection)) == ["123456789012"]
    report = drop(stack, f"optimove/{connection['uuid']}/delete/sheet.csv", b"customer_id\n1.23457E+11\n123456789012\n")
    assert (report["sent"], report["rejected"]) == (1, 1) and held(stack, connection) == {}


@pytest.mark.parametrize("name, data", [
    ("zero-width.csv", "customer_id,tier\n1,bronze\n1\u200b,gold\n".encode()),  # as copied from a web page
    ("padded.csv", b"customer_id,tier\n1,bronze\n 1 ,gold\n"),
    ("padded.jsonl", b'{"customer_id": "1", "tier": "bronze"}\n{"customer_id": " 1 ", "tier": "gold"}\n'),
])
def test_a_key_written_with_spaces_around_it_is_sent_as_the_key_it_repeats(stack, connection, name, data):
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/{name}", data)
    assert (report["sent"], report["duplicates"]) == (1, 1)
    assert held(stack, connection) == {"1": {"customer_id": "1", "tier": "gold"}}
    report = drop(stack, f"optimove/{connection['uuid']}/delete/{name}.csv", b"customer_id\n 1 \n")
    assert report["sent"] == 1 and held(stack, connection) == {}


def test_a_csv_files_numbers_arrive_as_numbers_and_its_blank_cells_are_left_out(stack, connection):
    data = b"customer_id,points,zip,tier\n007,150,02134,\n"
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/points.csv", data)
    assert report["status"] == "complete"
    assert uploads(stack, connection)[0]["data"] == [{"customer_id": "007", "points": 150, "zip": "02134"}]


def test_a_column_the_header_does_not_name_is_never_sent_and_a_value_in_it_sets_its_row_aside(stack, connection):
    data = b"customer_id,tier,\n1,gold,\n2,silver,oops\n,,\n"
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/trailing.csv", data)
    assert (report["status"], report["read"], report["sent"], report["rejected"]) == ("complete", 2, 1, 1)
    assert held(stack, connection) == {"1": {"customer_id": "1", "tier": "gold"}}
    rejected = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read())
    assert rejected["line"] == 3 and rejected["reasons"][0].startswith("column 3 has no name in the header")


def test_files_joined_with_their_headers_send_no_record_of_the_header(stack, connection):
    day = b"\xef\xbb\xbfcustomer_id,tier\r\n%s,gold\r\n"  # as Excel saves "CSV UTF-8"
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/joined.csv", day % b"1" + day % b"2")
    assert (report["status"], report["read"], report["sent"], report["rejected"]) == ("complete", 2, 2, 0)
    assert sorted(held(stack, connection)) == ["1", "2"]


def test_a_csv_in_the_charset_its_content_type_names_is_read_so_in_both_passes(stack, connection):
    data = "customer_id,name\r\nJürgen,Schäfer\r\nJürgen,Schäfer-Müller\r\n2,Zoë\r\n".encode("cp1252")  # the key repeated
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/legacy.csv", data, content_type="text/csv; charset=cp1252")
    assert (report["status"], report["sent"], report["rejected"], report["duplicates"]) == ("complete", 2, 0, 1)
    assert held(stack, connection) == {"Jürgen": {"customer_id": "Jürgen", "name": "Schäfer-Müller"},
                                       "2": {"customer_id": "2", "name": "Zoë"}}


def test_csv_nulls_leave_fields_out_and_a_null_key_sets_its_row_aside(stack, connection):
    module = stack.functions["OptimoveFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, csv_nulls="NULL,\\N")
    try:
        data = b"customer_id,tier,points\n1,NULL,\\N\nNULL,gold,3\n2,gold,NULL\n"
        report = drop(stack, f"optimove/{connection['uuid']}/upsert/nulls.csv", data)
    finally:
        module.settings = settings
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 2, 1)
    assert held(stack, connection) == {"1": {"customer_id": "1"}, "2": {"customer_id": "2", "tier": "gold"}}


def test_rows_without_the_primary_key_are_rejected_with_a_reason(stack, connection):
    rows = [{"customer_id": "1", "tier": "a"}, {"customer_id": "", "tier": "b"}]
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/missing-key.csv", csv_bytes(rows))
    assert report["sent"] == 1 and report["rejected"] == 1
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read()
    assert json.loads(rejected)["reasons"] == ["customer_id: the primary key is missing or empty"]



def test_a_csv_header_without_the_primary_key_fails_the_file_once_not_every_row(stack, connection):
    rows = [{"CustomerNo": str(i), "tier": "gold"} for i in range(100)]
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/wrong-header.csv", csv_bytes(rows))
    assert (report["status"], report["sent"], report["rejected"]) == ("failed", 0, 0)
    assert report["errors"] == ["no row of this file can be sent, whatever it holds: the header has no column"
                                " customer_id, the connection's primary key (did you mean CustomerNo?)"]
    assert held(stack, connection) == {}


def test_lines_that_cannot_be_read_are_rejected_with_their_text_and_the_rest_is_uploaded(stack, connection):
    data = 'customer_id,tier\n1,a\n2,"open\n3,g\xf6ld\n4,d\n'.encode("latin-1")
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/unreadable-lines.csv", data)
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 2, 2)
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read()
    assert [(r["line"], r["record"]) for r in map(json.loads, rejected.splitlines())] == [(3, '2,"open'), (4, "3,g\ufffdld")]
    assert sorted(held(stack, connection)) == ["1", "4"]

def test_ttl_from_object_metadata_expires_on_the_sandbox_clock(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/ttl.csv", csv_bytes([{"customer_id": "1", "tier": "a"}]), ttl="60")
    assert uploads(stack, connection)[-1]["ttl_seconds"] == 60
    assert "1" in held(stack, connection)
    stack.optimove.clock.advance(61)
    assert held(stack, connection) == {}


@pytest.mark.parametrize("name, data", [
    ("keys.csv", b"customer_id\n1\n3\n1\n"),
    ("keys.json", b'["1", 3, "1"]'),
    ("keys.jsonl", b'1\n"3"\n1\n'),
    ("webhook-body.json", b'{"primary_keys": ["1", "3", 1]}'),
])
def test_delete_by_keys_from_csv_json_or_json_lines_each_key_once(stack, connection, name, data):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": str(i), "tier": "t"} for i in range(1, 5)]))
    report = drop(stack, f"optimove/{connection['uuid']}/delete/{name}", data)
    assert report["status"] == "complete" and report["sent"] == 2 and report["duplicates"] == 1
    assert set(held(stack, connection)) == {"2", "4"}


@pytest.mark.parametrize("data, first", [(b"1\n3\n", "'1'"), (b"C-1\nC-3\n", "'C-1'")])  # e-mail addresses: readers
def test_a_delete_file_of_keys_without_a_first_line_naming_the_column_deletes_nothing_and_says_why(stack, connection,
                                                                                                    data, first):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": key, "tier": "t"} for key in ("1", "3", "C-1", "C-3")]))
    report = drop(stack, f"optimove/{connection['uuid']}/delete/keys.csv", data)
    assert (report["status"], report["sent"]) == ("failed", 0)
    assert report["errors"] == [f"the only column of this file is named {first}, which looks like one of the keys under"
                                " it: without a first line naming the column (customer_id), the first key would be"
                                " taken for its name and not deleted"]
    assert len(held(stack, connection)) == 4
    named = drop(stack, f"optimove/{connection['uuid']}/delete/named.csv", b"key\n1\n")  # any name, a key under it
    assert (named["status"], named["sent"]) == ("complete", 1)


def test_an_upload_written_without_its_header_is_said_to_lack_one(stack, connection):
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/unloaded.csv", b"C-1,gold\nC-2,silver\n")
    assert (report["status"], report["sent"]) == ("failed", 0) and held(stack, connection) == {}
    assert report["errors"] == ["the CSV header holds values, not column names ('C-1' is written as 'C-2' under it, on"
                                " line 2): the file's first line must name its columns"]


def test_a_key_repeated_in_a_json_array_on_one_line_is_sent_once_with_its_last_row(stack, connection):
    rows = [{"customer_id": "1", "tier": "bronze"}, {"customer_id": "2", "tier": "x"}, {"customer_id": "1", "tier": "gold"}]
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/minified.json", json.dumps(rows).encode())
    assert report["sent"] == 2 and report["duplicates"] == 1
    assert [row["tier"] for row in uploads(stack, connection)[0]["data"] if row["customer_id"] == "1"] == ["gold"]


@pytest.mark.parametrize("upsert, tier, delete", [
    (b"CUSTOMER_ID,TIER\n1,gold\n2,silver\n", "TIER", ("GONE.csv", b"Customer_Id,REASON\n1,closed\n")),  # warehouses
    (b"Customer ID,Tier\n1,gold\n2,silver\n", "Tier", ("gone.jsonl", b'{"customerId": "1"}\n')),  # BI tools, APIs
])
def test_a_file_naming_the_primary_key_written_otherwise_is_upserted_and_deleted_by_it(stack, connection, upsert, tier,
                                                                                         delete):
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/export.csv", upsert)
    assert (report["status"], report["sent"]) == ("complete", 2)
    assert report["read_as"] == {upsert.split(b",")[0].decode(): "customer_id"}  # the report says what it took
    assert held(stack, connection) == {"1": {"customer_id": "1", tier: "gold"}, "2": {"customer_id": "2", tier: "silver"}}
    report = drop(stack, f"optimove/{connection['uuid']}/delete/{delete[0]}", delete[1])
    assert (report["status"], report["sent"]) == ("complete", 1) and list(held(stack, connection)) == ["2"]
    assert list(report["read_as"].values()) == ["customer_id"]


@pytest.mark.parametrize("operation, data", [("upsert", b"customer_id,tier\n1,gold\n2,silver\n,bronze\n"),
                                             ("update", b"customer_id,tier\n1,gold\n2,silver\n,bronze\n"),
                                             ("delete", b"customer_id\n1\n2\n#N/A\n")])
def test_a_file_whose_metadata_asks_a_dry_run_is_checked_and_nothing_is_sent(stack, connection, operation, data):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv", b"customer_id,tier\n1,silver\n")
    before = held(stack, connection)
    asked = {"dry-run" if operation != "delete" else "dry_run": "true", "merge": "true"}  # dry_run, as written otherwise
    report = drop(stack, f"optimove/{connection['uuid']}/{operation}/check.csv", data, **asked)
    assert (report["status"], report["dry_run"], report["checked"], report["sent"]) == ("complete", True, 2, 0)
    assert report["rejected"] == 1  # set aside as it would be: no key, or a spreadsheet's #N/A
    assert held(stack, connection) == before


def test_metadata_a_job_adds_beside_the_options_is_let_be(stack, connection):
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/job.csv", b"customer_id,tier\n1,gold\n", run="42")
    assert (report["status"], report["sent"]) == ("complete", 1)  # not a near miss of dry-run, nor sent as one


def test_update_replaces_whole_records_unless_merge_mode_is_asked(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": "1", "tier": "gold", "city": "Lyon"}, {"customer_id": "2", "tier": "x", "city": "Nice"}]))
    plain = drop(stack, f"optimove/{connection['uuid']}/update/plain.jsonl", b'{"customer_id": "1", "tier": "silver"}\n')
    merged = drop(stack, f"optimove/{connection['uuid']}/update/merged.jsonl", b'{"customer_id": "2", "tier": "vip"}\n',
                  merge="true")
    records = held(stack, connection)
    assert records["1"] == {"customer_id": "1", "tier": "silver"}  # the vendor replaced the whole record
    assert records["2"] == {"customer_id": "2", "tier": "vip", "city": "Nice"}  # merge kept city
    assert plain["reads"] == 0 and merged["reads"] == 1


def test_an_update_of_keys_optimove_does_not_hold_sets_those_rows_aside_and_updates_the_rest(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": str(i), "tier": "gold"} for i in range(1000)]))
    rows = [{"customer_id": str(i), "tier": "vip"} for i in range(1000)]
    rows[10]["customer_id"], rows[777]["customer_id"] = "gone-1", "gone-2"  # deleted since, say
    report = drop(stack, f"optimove/{connection['uuid']}/update/tiers.csv", csv_bytes(rows))
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 998, 2)
    rejected = [json.loads(line) for line in stack.s3.get_object(
        Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()]
    assert [(r["line"], r["record"]["customer_id"]) for r in rejected] == [(12, "gone-1"), (779, "gone-2")]
    assert rejected[0]["reasons"] == [
        "Optimove refused the update: Invalid primary key: 'gone-1' does not exist in this data connection"]
    assert report["rejected_reasons"] == {  # the key quoted: one reason, however many keys
        "Optimove refused the update: Invalid primary key: '...' does not exist in this data connection": 2}
    records = held(stack, connection)
    assert sum(record["tier"] == "vip" for record in records.values()) == 998 and "gone-1" not in records


def test_an_update_file_of_keys_optimove_mostly_does_not_hold_fails_saying_where_they_belong(stack, connection,
                                                                                            monkeypatch):
    monkeypatch.setattr("martech.optimove_delivery.MOST_UPDATES_REFUSED", 3)
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv", csv_bytes([{"customer_id": "1", "tier": "gold"}]))
    report = drop(stack, f"optimove/{connection['uuid']}/update/new.csv",
                  csv_bytes([{"customer_id": f"new-{i}", "tier": "vip"} for i in range(50)]))
    assert (report["status"], report["sent"], report["rejected"], report["failed"]) == ("failed", 0, 3, 47)
    assert report["errors"][0].startswith("Optimove refused the update of over 3 rows one by one") and \
        report["errors"][0].endswith("if the records are new, drop the file under upsert/")


@pytest.mark.parametrize("metadata, wrong", [({"ttl": "1 day", "merge": "true"}, "ttl='1 day'"),
                                             ({"merge": "sure"}, "merge='sure'"),
                                             ({"Marge": "true"}, "marge='true' is no option (did you mean merge?)")])
def test_a_file_whose_metadata_ttl_or_merge_means_nothing_fails_and_sends_nothing(stack, connection, metadata, wrong):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": "1", "tier": "gold", "city": "Lyon"}]))
    report = drop(stack, f"optimove/{connection['uuid']}/update/odd-metadata.jsonl", b'{"customer_id": "1", "tier": "vip"}\n',
                  **metadata)
    assert report["status"] == "failed" and report["sent"] == 0 and wrong in report["errors"][0]
    assert held(stack, connection)["1"] == {"customer_id": "1", "tier": "gold", "city": "Lyon"}  # not replaced whole


def test_a_duplicate_s3_event_uploads_nothing_twice(stack, connection):
    key = f"optimove/{connection['uuid']}/upsert/once.csv"
    drop(stack, key, csv_bytes([{"customer_id": "1", "tier": "a"}]))
    version = stack.s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": stack.bucket},
                                                                   "object": {"key": key, "versionId": version}}}]}
    stack.sqs.send_message(QueueUrl=stack.queue_urls["OptimoveQueue"], MessageBody=json.dumps(event))
    stack.wait_idle()
    assert len(uploads(stack, connection)) == 1


def test_429_and_5xx_bursts_lose_nothing(stack, connection):
    stack.optimove.faults.update({"rate_429": 0.2, "rate_500": 0.2, "rate_503": 0.1, "retry_after": 0, "seed": 5,
                                  "paths": "/connections/", "script": ["429", "500", "503", "429-bare", "500"]})
    rows = [{"customer_id": str(i), "tier": "t"} for i in range(12001)]
    report = drop(stack, f"optimove/{connection['uuid']}/upsert/bursty.csv", csv_bytes(rows))
    stack.optimove.faults.clear()
    assert report["status"] == "complete" and len(held(stack, connection)) == 12001
    assert stack.optimove.stats()["by_status"].get("500", 0) + stack.optimove.stats()["by_status"].get("429", 0) > 0


def test_a_file_retried_from_the_top_counts_its_records_once_and_keeps_the_try_that_failed(stack, connection):
    # The second upload keeps answering 503 past the client's ten tries: the run fails after the first batch,
    # and the retry uploads the file again from the top (an upsert stores a row once however often sent).
    stack.optimove.faults.update({"script": ["pass"] + ["503"] * 10, "paths": "/upload_data"})
    rows = [{"customer_id": "", "tier": "t"}] + [{"customer_id": str(i), "tier": "t"} for i in range(12000)]
    try:
        report = drop(stack, f"optimove/{connection['uuid']}/upsert/again.csv", csv_bytes(rows))
    finally:
        stack.optimove.faults.clear()
    assert (report["status"], report["runs"], report["read"], report["sent"], report["rejected"]) == (
        "complete", 2, 12001, 12000, 1)
    assert report["errors"] == ["transient (try 1 of 5; the next in 5 minutes): Optimove answered 503 after retries"]
    assert len(held(stack, connection)) == 12000


def test_an_unknown_connection_ends_in_the_report(stack):
    report = drop(stack, "optimove/no-such-connection/upsert/x.csv", b"customer_id\n1\n")
    assert report["status"] == "failed" and "no-such-connection" in report["errors"][0]


def test_a_misspelt_connection_or_operation_names_the_nearest(stack, connection):
    report = drop(stack, f"optimove/{connection['name'][:-1]}/upsert/x.csv", b"customer_id\n1\n")
    assert report["errors"] == [f"Optimove answered 404: no data connection with uuid or name"
                                f" {connection['name'][:-1]!r} (did you mean {connection['name']}?)"]
    key = f"optimove/{connection['name']}/Upsert/x.csv"
    report = drop(stack, key, b"customer_id\n1\n")
    assert report["errors"] == [f"{key}: Optimove files go to optimove/<connection>/{{upsert|update|delete}}/<file>"
                                " (did you mean upsert?)"]
    assert held(stack, connection) == {}


# -- webhooks ------------------------------------------------------------------------------
def webhook(stack, method, path, body=None, **params):
    return call(stack, method, f"/optimove{path}", json=body, params=params)


def test_webhook_connection_lifecycle(stack):
    name = f"hook-{uuid.uuid4().hex[:8]}"
    created = webhook(stack, "POST", "/connections", {"name": name, "primary_key": "sku"})
    assert created.status_code == 201
    conn_uuid = created.json()["data_connection_uuid"]
    assert name in [c["name"] for c in webhook(stack, "GET", "/connections").json()["connections"]]
    assert webhook(stack, "GET", f"/connections/{name}").json()["data_connection_uuid"] == conn_uuid
    renamed = webhook(stack, "PUT", f"/connections/{conn_uuid}", {"name": name + "-2", "description": "d"})
    assert renamed.status_code == 200 and renamed.json()["name"] == name + "-2"
    refused = webhook(stack, "PUT", f"/connections/{conn_uuid}", {"primary_key": "other"})
    assert refused.status_code == 400 and "primary key" in refused.json()["message"]
    assert webhook(stack, "DELETE", f"/connections/{conn_uuid}").status_code == 200
    assert webhook(stack, "GET", f"/connections/{conn_uuid}").status_code == 404


def test_webhook_body_holding_nan_is_refused_and_nothing_stored_changes(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv", csv_bytes([{"customer_id": "1", "points": "5"}]))
    path = f"/optimove/connections/{connection['uuid']}/data"
    answer = call(stack, "PUT", path, data='[{"primary_key": "1", "data": {"points": NaN}}]', params={"merge": "true"})
    assert answer.status_code == 400 and "NaN and Infinity are not JSON" in answer.json()["message"]
    assert held(stack, connection)["1"] == {"customer_id": "1", "points": 5}


def test_webhook_body_that_is_not_utf8_is_refused_saying_so(stack, connection):
    body = b'[{"primary_key": "\xfc"}]'
    answer = call(stack, "PUT", f"/optimove/connections/{connection['uuid']}/data", data=body)
    assert answer.status_code == 400 and answer.json() == {
        "message": f"the body is not UTF-8 text: byte {body.index(0xFC) + 1} is 0xfc"}


def test_webhook_merge_switch_reads_true_in_any_case_and_refuses_what_is_neither(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": "1", "tier": "gold", "city": "Lyon"}]))
    path = f"/connections/{connection['uuid']}/data"
    refused = webhook(stack, "PUT", path, [{"primary_key": "1", "data": {"tier": "x"}}], merge="maybe")
    assert refused.status_code == 400 and refused.json()["message"] == "?merge=maybe: write true or false"
    merged = webhook(stack, "PUT", path, [{"primary_key": "1", "data": {"tier": "vip"}}], merge="True")
    assert merged.status_code == 200 and merged.json()["reads"] == 1
    assert held(stack, connection)["1"] == {"customer_id": "1", "tier": "vip", "city": "Lyon"}


def test_a_merge_call_that_cannot_read_every_record_in_time_sends_nothing_and_says_so(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": str(i), "tier": "gold", "city": "Lyon"} for i in range(10)]))
    module = stack.functions["OptimoveFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, webhook_seconds=0.5)
    stack.optimove.faults.update({"latency": 0.2})  # ten reads would take 2 s
    try:
        began = time.monotonic()
        answer = webhook(stack, "PUT", f"/connections/{connection['uuid']}/data",
                         [{"primary_key": str(i), "data": {"tier": "vip"}} for i in range(10)], merge="true")
        took = time.monotonic() - began
    finally:
        module.settings = settings
        stack.optimove.faults.clear()
    assert answer.status_code == 503 and "nothing was sent" in answer.json()["message"] and took < 1.2
    assert {record["tier"] for record in held(stack, connection).values()} == {"gold"}


def test_a_webhook_update_refused_after_its_first_5000_items_says_which_went_through(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": str(i), "tier": "seed"} for i in range(5100)]))
    items = [{"primary_key": str(i), "data": {"tier": "t"}} for i in range(5100)]
    items[5050]["primary_key"] = "gone"
    answer = webhook(stack, "PUT", f"/connections/{connection['uuid']}/data", items)
    assert answer.status_code == 400 and answer.json()["message"] == (
        "Optimove refused items 5000-5099 (Invalid primary key: gone does not exist in this data connection) after the"
        " 5000 before them went through; making the call again, mended, is safe, as Optimove replaces or deletes each"
        " record whole")
    assert sum(record.get("tier") == "t" for record in held(stack, connection).values()) == 5000


def test_webhook_updates_and_deletes_go_in_requests_of_at_most_5000(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": str(i), "tier": "seed"} for i in range(6001)]))
    path = f"/connections/{connection['uuid']}"
    updated = webhook(stack, "PUT", f"{path}/data", [{"primary_key": str(i), "data": {"tier": "t"}} for i in range(6001)])
    assert updated.status_code == 200 and updated.json()["updated_records"] == 6001
    assert {record["tier"] for record in held(stack, connection).values()} == {"t"}
    sizes = [len(e["body"]) for e in stack.optimove.received(f"{connection['uuid']}/update_data") if e["status"] == 200]
    assert sizes == [5000, 1001]
    deleted = webhook(stack, "POST", f"{path}/delete", {"primary_keys": [str(i) for i in range(5500)]})
    assert deleted.status_code == 200 and deleted.json()["deleted_records"] == 5500
    assert sorted(held(stack, connection), key=int) == [str(i) for i in range(5500, 6001)]


def test_a_delete_holding_a_key_that_is_no_key_deletes_nothing_and_says_which(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": str(i), "tier": "seed"} for i in range(5001)]))
    keys = [str(i) for i in range(5001)] + [None, " ", True, {"id": 1}]  # the bad ones in the second request
    answer = webhook(stack, "POST", f"/connections/{connection['uuid']}/delete", {"primary_keys": keys})
    assert answer.status_code == 400
    assert answer.json()["message"] == ("primary_keys must be text or numbers; not items 5001 (None), 5002 (' '),"
                                        " 5003 (True), 5004 ({'id': 1}); nothing was deleted")
    assert len(held(stack, connection)) == 5001 and not stack.optimove.received(f"{connection['uuid']}/delete")


def test_an_update_whose_data_names_another_key_is_refused_before_optimove(stack, connection):
    items = [{"primary_key": "1", "data": {"tier": "vip"}}, {"primary_key": "2", "data": {"customer_id": "3", "tier": "x"}},
             {"primary_key": 4, "data": {"customer_id": "4"}}]  # the same key, as a number and as text: fine
    answer = webhook(stack, "PUT", f"/connections/{connection['uuid']}/data", items)
    assert answer.status_code == 400 and answer.json()["message"] == (
        "item 1: data holds customer_id='3', another key than its primary_key '2'; nothing was sent")
    assert not stack.optimove.received(f"{connection['uuid']}/update_data")


@pytest.mark.parametrize("key", [{"id": 1}, ["1"], True, "  "])
def test_an_update_whose_primary_key_is_no_key_is_refused_before_optimove(stack, connection, key):
    answer = webhook(stack, "PUT", f"/connections/{connection['uuid']}/data", [{"primary_key": key, "data": {}}])
    assert answer.status_code == 400 and answer.json()["message"].startswith("item 0: primary_key must be text or a number")
    assert not stack.optimove.received(f"{connection['uuid']}/update_data")


def test_a_query_parameter_the_call_does_not_take_is_refused_so_a_misspelt_merge_erases_nothing(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": "1", "tier": "gold", "city": "Lyon"}]))
    answer = webhook(stack, "PUT", f"/connections/{connection['uuid']}/data", [{"primary_key": "1", "data": {"tier": "vip"}}],
                     marge="true")
    assert answer.status_code == 400
    assert answer.json()["message"] == ("this call takes no such query parameter: ?marge (did you mean merge?);"
                                        " it takes ?dry_run, ?merge")
    assert held(stack, connection)["1"] == {"customer_id": "1", "tier": "gold", "city": "Lyon"}
    listed = webhook(stack, "GET", "/connections", limit="10")
    assert listed.status_code == 400 and listed.json()["message"].endswith("?limit; it takes none")


def test_a_webhook_body_over_the_limit_is_refused_with_413_and_nothing_sent(stack, connection):
    module = stack.functions["OptimoveFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, webhook_max_bytes=2000)
    try:
        answer = webhook(stack, "PUT", f"/connections/{connection['uuid']}/data",
                         [{"primary_key": str(i), "data": {"note": "x" * 50}} for i in range(40)])
    finally:
        module.settings = settings
    assert answer.status_code == 413 and held(stack, connection) == {}


def test_webhook_data_update_merge_delete_query_and_schema(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
         csv_bytes([{"customer_id": "1", "tier": "gold", "city": "Lyon"}]))
    path = f"/connections/{connection['name']}"
    merged = webhook(stack, "PUT", f"{path}/data", [{"primary_key": "1", "data": {"tier": "vip"}}], merge="true")
    assert merged.status_code == 200 and merged.json()["reads"] == 1
    assert webhook(stack, "POST", f"{path}/query", {"primary_key": "1"}).json()["data"] == {
        "customer_id": "1", "tier": "vip", "city": "Lyon"}
    schema = webhook(stack, "GET", f"{path}/schema").json()
    assert schema["fields"]["city"] == "string"
    batch = webhook(stack, "POST", f"{path}/batch_query", {"queries": [{"primary_key": "1"}, {"primary_key": "9"}]})
    assert "data" in batch.json()["results"][0] and "error" in batch.json()["results"][1]
    assert webhook(stack, "POST", f"{path}/delete", {"primary_keys": ["1"]}).json()["deleted_records"] == 1
    assert webhook(stack, "POST", f"{path}/query", {"primary_key": "1"}).status_code == 404


def test_a_webhook_dry_run_checks_the_items_and_sends_none(stack, connection):
    drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv", csv_bytes([{"customer_id": "1", "tier": "gold"}]))
    path = f"/connections/{connection['name']}"
    answer = webhook(stack, "PUT", f"{path}/data", [{"primary_key": "1", "data": {"tier": "vip"}}], dry_run="true")
    assert answer.status_code == 200
    assert answer.json() == {"status": "checked", "checked": 1, "message": "dry_run=true: checked, nothing sent"}
    answer = webhook(stack, "POST", f"{path}/delete", {"primary_keys": ["1", "2"]}, dry_run="true")
    assert answer.status_code == 200 and answer.json()["checked"] == 2
    answer = webhook(stack, "POST", f"{path}/delete", {"primary_keys": ["1", None]}, dry_run="true")
    assert answer.status_code == 400  # checked as the call would be: a key that is no key
    assert held(stack, connection) == {"1": {"customer_id": "1", "tier": "gold"}}


def test_webhook_passes_on_the_vendors_refusal_with_its_reason(stack, connection):
    answer = webhook(stack, "PUT", f"/connections/{connection['uuid']}/data", [{"primary_key": "nope", "data": {}}])
    assert answer.status_code == 400 and "does not exist" in answer.json()["detail"]


@pytest.mark.parametrize("body", [[], [{"primary_key": "1"}], [{"data": {}}], {"records": "x"}])
def test_webhook_update_bodies_are_checked_before_calling_optimove(stack, connection, body):
    before = stack.optimove.stats()["total"]
    answer = webhook(stack, "PUT", f"/connections/{connection['uuid']}/data", body)
    assert answer.status_code == 400
    assert stack.optimove.stats()["total"] - before <= 1  # at most the connection lookup


class StockApi:
    """A retailer's API on loopback, for API-based connections."""

    def __init__(self):
        self.calls = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.calls.append(self.path)
                payload = json.dumps({"sku": self.path.rsplit("=", 1)[-1], "stock": 3}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_api_based_connection_created_and_queried_through_a_loopback_api(stack):
    api = StockApi()
    try:
        details = {"url": api.url + "/stock?sku={sku}", "http_method": "GET", "ttl": 0, "timeout": 2, "retries": 0,
                   "is_batch_endpoint": False, "sample_placeholder_values": {"sku": "S1"}}
        created = webhook(stack, "POST", "/connections", {"name": f"stock-{uuid.uuid4().hex[:6]}", "primary_key": "sku",
                                                          "external_api_details": details})
        assert created.status_code == 201 and api.calls == ["/stock?sku=S1"]
        conn_uuid = created.json()["data_connection_uuid"]
        answer = webhook(stack, "POST", f"/connections/{conn_uuid}/query", {"placeholder_values": {"sku": "S42"}})
        assert answer.json() == {"data": {"sku": "S42", "stock": 3}}
    finally:
        api.httpd.shutdown()


def test_api_connection_placeholders_need_sample_values_before_any_call(stack):
    details = {"url": "http://127.0.0.1:9/stock?sku={sku}&store={store}", "http_method": "GET",
               "sample_placeholder_values": {"sku": "S1"}}
    answer = webhook(stack, "POST", "/connections", {"name": "x", "primary_key": "sku", "external_api_details": details})
    assert answer.status_code == 400 and "store" in answer.json()["message"]


@pytest.mark.parametrize("operation", ["upsert", "delete"])
def test_a_file_too_big_for_one_run_goes_on_in_later_runs_and_completes_its_batch_once(stack, connection, operation):
    module = stack.functions["OptimoveFunction"].module
    settings = module.settings
    # A margin as long as the whole timeout: every run takes the fewest records it can (500) and hands the rest on.
    module.settings = dataclasses.replace(settings, file_run_margin_seconds=900)
    rows = [{"customer_id": str(i % 2000), "tier": f"t{i}"} for i in range(2600)]  # 600 keys repeated, later rows win
    rows[7]["customer_id"] = rows[2300]["customer_id"] = ""  # rejected in the first run and in the last
    if operation == "delete":
        drop(stack, f"optimove/{connection['uuid']}/upsert/seed.csv",
             csv_bytes([{"customer_id": str(i), "tier": "t"} for i in range(2100)]))
    try:
        report = drop(stack, f"optimove/{connection['uuid']}/{operation}/big.csv", csv_bytes(rows))
    finally:
        module.settings = settings
    assert (report["status"], report["runs"], report["read"]) == ("complete", 6, 2600)  # 500 records a run
    assert (report["sent"], report["rejected"], report["duplicates"]) == (2000, 2, 598)
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()
    assert [json.loads(line)["line"] for line in rejected] == [9, 2302]
    if operation == "delete":
        assert set(held(stack, connection)) == set(map(str, range(2000, 2100)))
        return
    bodies = uploads(stack, connection)
    assert [b["batch_completed"] for b in bodies] == [False] * (len(bodies) - 1) + [True]
    assert len({b["batch_uuid"] for b in bodies}) == 1
    stored = held(stack, connection)
    assert len(stored) == 2000 and stored["5"]["tier"] == "t2005" and stored["1999"]["tier"] == "t1999"
    assert (stored["7"]["tier"], stored["300"]["tier"]) == ("t2007", "t300")  # their other row was rejected


def test_a_file_too_big_to_read_through_once_in_a_run_fails_with_a_report_instead_of_timing_out(stack, connection):
    module = stack.functions["OptimoveFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, file_run_margin_seconds=900)  # no time left at all
    try:
        report = drop(stack, f"optimove/{connection['uuid']}/upsert/huge.csv",
                      csv_bytes([{"customer_id": str(i), "tier": "t"} for i in range(70_000)]))
    finally:
        module.settings = settings
    assert (report["status"], report["sent"]) == ("failed", 0)
    assert report["errors"] == ["the file is too big to read through even once in one run (65,536 records read before"
                                " the time was up); split it into smaller files"]
    assert not any(stack.dead_letters().values())
