"""Each dropped file ends in one "File run finished" event on EventBridge, with its report's status and
counts, for what should follow it; on the local stack, where a rule sends them to a queue."""

import dataclasses
import json
import time

import pytest
import requests

from martech.file_events import DETAIL_TYPE, EVENT_SOURCE
from sandbox.local.stack import ROOT, LocalStack
from sandbox.monetate import MetadataSizes
from tests.integration.files import csv_bytes, drop, jsonl

CUSTOMERS = [{"customer_id": f"C{i}", "tier": "gold"} for i in range(5)]


@pytest.fixture(scope="module")
def stack():
    env = {"HTTP_MAX_ATTEMPTS": "2", "HTTP_BACKOFF_FACTOR": "0.01", "HTTP_BACKOFF_MAX": "0.05", "MONETATE_BATCH_SIZE": "2"}
    with LocalStack(metadata=MetadataSizes(customtargets=5, pageevents=5, experiences=2), function_env=env) as stack:
        stack.monetate.create_schema(json.loads((ROOT / "events" / "monetate" / "customers.schema.json").read_text()))
        creds = stack.optimove.credentials()
        requests.post(f"{stack.optimove_server.url}/api/data-connections/v1/connections",
                      json={"name": "loyalty", "primary_key": "customer_id"},
                      headers={"x-api-key": creds["api_key"], "x-brand-key": creds["brand_key"]}).raise_for_status()
        stack.file_events()  # none from before
        yield stack


def details(stack):
    events = stack.file_events()
    assert all((e["source"], e["detail-type"]) == (EVENT_SOURCE, DETAIL_TYPE) for e in events)
    return [e["detail"] for e in events]


def take_dead_letter(stack):
    """Wait for the Monetate queue's dead-letter queue to hold a message, and take it away. (Not wait_idle:
    a message in a dead-letter queue is never idle.)"""
    url = stack.queue_urls["MonetateDeadLetterQueue"]
    deadline = time.monotonic() + 60
    while not (messages := stack.sqs.receive_message(QueueUrl=url).get("Messages")):
        assert time.monotonic() < deadline, "nothing reached the dead-letter queue"
        time.sleep(0.2)
    stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])


def test_a_delivered_file_ends_in_one_event_with_its_counts_and_where_its_report_is(stack):
    rows = [*CUSTOMERS, {"customer_id": "", "tier": "gold"}]
    report = drop(stack, "monetate/customers/day.csv", csv_bytes(rows))

    [detail] = details(stack)

    assert detail == {"bucket": stack.bucket, "key": "monetate/customers/day.csv", "version_id": report["version_id"],
                      "destination": "monetate", "status": "complete", "read": 6, "sent": 5, "rejected": 1, "failed": 0,
                      "unknown": 0, "runs": 1, "started_at": report["started_at"], "finished_at": report["finished_at"],
                      "report": "reports/monetate/customers/day.csv.json",
                      "rejected_rows": "rejected/monetate/customers/day.csv.jsonl", "errors": [], "dry_run": False}


def test_a_failed_file_ends_in_an_event_that_says_so_with_its_first_errors(stack):
    drop(stack, "monetate/no_such_schema/day.csv", csv_bytes(CUSTOMERS))
    [detail] = details(stack)
    assert detail["status"] == "failed" and "no schema named 'no_such_schema'" in detail["errors"][0]


def test_a_repeated_event_of_a_delivered_file_publishes_nothing_more(stack):
    key = "monetate/customers/once.csv"
    drop(stack, key, csv_bytes(CUSTOMERS))
    version = stack.s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
    repeated = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": stack.bucket},
                                                                      "object": {"key": key, "versionId": version}}}]}
    stack.sqs.send_message(QueueUrl=stack.queue_urls["MonetateQueue"], MessageBody=json.dumps(repeated))
    stack.wait_idle()
    assert [detail["key"] for detail in details(stack)] == [key]


def test_a_file_too_big_for_one_run_ends_in_one_event_after_its_last_run(stack):
    module = stack.functions["MonetateFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, file_run_margin_seconds=900)  # each run takes one batch (2 rows)
    try:
        report = drop(stack, "monetate/customers/big.csv", csv_bytes(CUSTOMERS))
    finally:
        module.settings = settings
    assert report["runs"] == 3
    [detail] = details(stack)
    assert (detail["status"], detail["runs"], detail["sent"]) == ("complete", 3, 5)


def test_files_of_every_function_and_a_dry_run_end_in_their_events(stack):
    drop(stack, "optimove/loyalty/upsert/day.csv", csv_bytes([{"customer_id": "1", "tier": "gold"}]))
    drop(stack, "mona/orders/day.jsonl", jsonl([{"contextId": "o-1", "score": 0.5}]))
    drop(stack, "monetate/customers/tried.csv", csv_bytes(CUSTOMERS), **{"dry-run": "true"})
    drop(stack, "monetate-sessions/hour.jsonl", jsonl([{"session_id": "s1", "city": "Boston"}]))

    found = {detail["destination"]: detail for detail in details(stack)}

    assert (found["optimove"]["status"], found["optimove"]["sent"]) == ("complete", 1)
    assert (found["mona"]["status"], found["mona"]["sent"]) == ("complete", 1)
    assert (found["monetate"]["dry_run"], found["monetate"]["sent"], found["monetate"]["key"]) == (
        True, 0, "monetate/customers/tried.csv")
    sessions = found["monetate-sessions"]
    assert (sessions["status"], sessions["sessions"], sessions["interpreted"]) == ("complete", 1, "interpreted/hour.jsonl")
    assert sessions["report"] == "reports/monetate-sessions/hour.jsonl.json" and sessions["version_id"]


def test_a_file_whose_every_try_failed_ends_in_a_dead_letter_event_with_how_far_it_got(stack):
    tries = stack.functions["MonetateFunction"].module.settings.file_tries
    stack.monetate.faults.update({"script": ["503"] * (2 * tries), "paths": "/data/customers/"})  # two attempts a try
    key = "monetate/customers/doomed.csv"
    try:
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=csv_bytes(CUSTOMERS[:2]))  # one batch
        take_dead_letter(stack)
    finally:
        stack.monetate.faults.clear()
    assert stack.report(key)["status"] == "retrying"

    [detail] = details(stack)  # one, at the last try

    assert (detail["status"], detail["key"], detail["sent"], detail["runs"], detail["report"]) == (
        "dead_letter", key, 0, tries, "reports/monetate/customers/doomed.csv.json")
    assert detail["errors"][-1].endswith(f"(try {tries} of {tries}; next, the dead-letter queue: redrive it once the"
                                         " cause is mended): Monetate answered 503 after retries")


def test_a_session_stream_file_whose_every_try_failed_ends_in_a_dead_letter_event_too(stack, monkeypatch):
    module = stack.functions["MonetateFunction"].module

    def broken(dropped):
        raise RuntimeError("the snapshots could not be read")

    monkeypatch.setattr(module, "interpret_once", broken)
    stack.s3.put_object(Bucket=stack.bucket, Key="monetate-sessions/doomed.jsonl", Body=b'{"session_id": "s1"}\n')
    take_dead_letter(stack)

    [detail] = details(stack)

    assert (detail["status"], detail["key"], detail["destination"]) == (
        "dead_letter", "monetate-sessions/doomed.jsonl", "monetate-sessions")
    assert detail["errors"] == ["the snapshots could not be read"]  # no run wrote a report


def test_make_serve_says_where_the_file_events_can_be_read(stack):
    from sandbox.local.__main__ import endpoints

    [line] = [line for line in endpoints(stack).splitlines() if line.startswith("  events (files) ")]
    url = line.split()[2]
    drop(stack, "monetate/customers/seen.csv", csv_bytes(CUSTOMERS))
    [message] = stack.sqs.receive_message(QueueUrl=url)["Messages"]  # as `aws sqs receive-message` shows it
    assert json.loads(message["Body"])["detail"]["key"] == "monetate/customers/seen.csv"
    stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
