"""Versions of one file go in the order they were written: a version waits while the one before it is
unfinished. Against S3 in moto, then on the local stack with each function's queue."""

import datetime as dt
import json
import time
from types import SimpleNamespace

import pytest
import requests

from martech import handlers
from martech.handlers import earlier_wait_limit
from martech.reports import RunReport
from martech.s3_events import DroppedFile, dropped_files
from martech.settings import Settings
from martech.version_order import unfinished_earlier
from sandbox.local.stack import LocalStack
from tests.integration.conftest import INBOX
from tests.integration.files import csv_bytes, jsonl

BUCKET, KEY = INBOX, "monetate/customers/day.csv"
HOURS = dt.timedelta(hours=3)


def put(s3, body=b"customer_id\nC1\n", key=KEY):
    return s3.put_object(Bucket=BUCKET, Key=key, Body=body)["VersionId"]


def pinned(s3, version):
    """The file as ``handlers.pinned`` gives it: its version and the head of that version."""
    return {"version_id": version, "head": s3.head_object(Bucket=BUCKET, Key=KEY, VersionId=version)}


def report(s3, version, status, key=KEY):
    RunReport(BUCKET, key, version, "monetate", status=status).write(s3)


def test_the_first_version_of_a_file_waits_for_nothing(s3):
    assert unfinished_earlier(s3, BUCKET, KEY, put(s3), HOURS) is None


@pytest.mark.parametrize("status", ["running", "continuing", "retrying", "waiting", None])
def test_a_version_waits_while_the_one_before_is_unfinished_or_not_taken_yet(s3, status):
    first = put(s3)
    if status:
        report(s3, first, status)
    later = put(s3)
    earlier = unfinished_earlier(s3, BUCKET, KEY, later, HOURS)
    assert (earlier.version_id, earlier.status) == (first, status)
    assert earlier.as_dict()["status"] == (status or "not taken yet")


@pytest.mark.parametrize("status", ["complete", "partial", "failed"])
def test_a_version_goes_on_once_the_one_before_has_finished(s3, status):
    first = put(s3)
    report(s3, first, "running")
    report(s3, first, status)
    assert unfinished_earlier(s3, BUCKET, KEY, put(s3), HOURS) is None


def test_only_the_version_just_before_counts_and_its_own_report_though_later_ones_wrote_theirs_over_it(s3):
    first = put(s3)
    report(s3, first, "complete")
    second = put(s3)
    report(s3, second, "retrying")
    third = put(s3)
    report(s3, third, "waiting")  # the third waits for the second, and wrote the report key last
    fourth = put(s3)
    assert unfinished_earlier(s3, BUCKET, KEY, third, HOURS).version_id == second
    assert unfinished_earlier(s3, BUCKET, KEY, second, HOURS) is None
    assert unfinished_earlier(s3, BUCKET, KEY, fourth, HOURS).status == "waiting"


def test_an_earlier_version_not_heard_from_for_longer_than_the_limit_holds_nothing_up(s3):
    first = put(s3)
    later = put(s3)
    written = s3.head_object(Bucket=BUCKET, Key=KEY, VersionId=first)["LastModified"]
    assert unfinished_earlier(s3, BUCKET, KEY, later, HOURS, now=written + HOURS - dt.timedelta(seconds=1))
    assert unfinished_earlier(s3, BUCKET, KEY, later, HOURS, now=written + HOURS) is None  # never taken
    report(s3, first, "retrying")  # in the dead-letter queue by now, say
    reported = s3.list_object_versions(Bucket=BUCKET, Prefix=f"reports/{KEY}.json")["Versions"][0]["LastModified"]
    assert unfinished_earlier(s3, BUCKET, KEY, later, HOURS, now=reported + HOURS - dt.timedelta(seconds=1))
    assert unfinished_earlier(s3, BUCKET, KEY, later, HOURS, now=reported + HOURS) is None


def test_an_earlier_version_too_big_for_one_run_is_waited_for_as_long_as_each_run_reports(s3, monkeypatch):
    first = put(s3)
    later = put(s3)
    written = s3.head_object(Bucket=BUCKET, Key=KEY, VersionId=first)["LastModified"]
    report(s3, first, "continuing")
    # moto stamps objects with the time it is told: the next run's report comes two hours later.
    monkeypatch.setattr("moto.s3.models.utcnow", lambda: (written + dt.timedelta(hours=2)).replace(tzinfo=None))
    report(s3, first, "continuing")
    assert unfinished_earlier(s3, BUCKET, KEY, later, HOURS, now=written + HOURS + dt.timedelta(minutes=1))


def test_files_whose_names_begin_alike_are_not_versions_of_one_another(s3):
    put(s3, key=KEY + ".bak")
    assert unfinished_earlier(s3, BUCKET, KEY, put(s3), HOURS) is None
    assert unfinished_earlier(s3, BUCKET, KEY + ".gz", put(s3, key=KEY + ".gz"), HOURS) is None


def test_the_wait_lasts_as_long_as_an_earlier_versions_tries_before_the_dead_letter_queue():
    # 5 runs of at most 15 minutes, and 5, 10, 20 and 40 minutes between them
    assert earlier_wait_limit(Settings()) == dt.timedelta(minutes=5 * 15 + 5 + 10 + 20 + 40)
    assert earlier_wait_limit(Settings(file_tries=2, retry_after_seconds=60)) == dt.timedelta(minutes=2 * 15 + 1)


# -- on the local stack ----------------------------------------------------------------------------
RETRY_AFTER = 5  # seconds a failed file's message stays hidden: time to drop its next version meanwhile


@pytest.fixture(scope="module")
def stack():
    env = {"HTTP_MAX_ATTEMPTS": "2", "HTTP_BACKOFF_FACTOR": "0.01", "HTTP_BACKOFF_MAX": "0.05",
           "MONETATE_BATCH_SIZE": "200", "OPTIMOVE_BATCH_SIZE": "200", "MONA_BATCH_SIZE": "200",
           "EARLIER_VERSION_RECHECK_SECONDS": "1",
           "MONETATE_CONCURRENCY": "1", "MONA_CONCURRENCY": "1"}  # batches in order: the first two pass, the third fails
    with LocalStack(retry_after=RETRY_AFTER, function_env=env) as stack:
        yield stack


def retrying_then_later_version(stack, vendor, paths, key, first, later):
    """Drop ``first`` while ``vendor`` fails every request to ``paths`` after its second, so that its run ends
    ``retrying``; once it does, mend the vendor and drop ``later`` before the retry comes. The reports
    the key had, oldest first, once the stack is idle."""
    vendor.faults.update({"script": ["pass", "pass"] + ["503"] * 1000, "paths": paths})
    try:
        first_version = stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=first)["VersionId"]
        deadline = time.monotonic() + 30
        while (stack.report(key) or {}).get("status") != "retrying":
            assert time.monotonic() < deadline, stack.report(key)
            time.sleep(0.05)
    finally:
        vendor.faults.clear()
    later_version = stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=later)["VersionId"]
    stack.wait_idle()
    reports = stack.s3.list_object_versions(Bucket=stack.bucket, Prefix=f"reports/{key}.json")["Versions"]
    bodies = [json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=f"reports/{key}.json",
                                             VersionId=v["VersionId"])["Body"].read()) for v in reversed(reports)]
    return first_version, later_version, [(r["version_id"], r["status"]) for r in bodies], bodies


def test_a_monetate_file_dropped_again_while_its_earlier_version_waits_for_a_retry_lands_after_it(stack):
    schema = {"name": "day_customers", "type": "attribute", "named_identifier": "customer_id",
              "fields": {"customer_id": {"data_type": "STRING", "identifier": True, "unique_key": True},
                         "tier": {"data_type": "STRING"}}}
    stack.monetate.create_schema(schema)
    key = "monetate/day_customers/customers.csv"
    first = csv_bytes([{"customer_id": f"C{i}", "tier": "gold"} for i in range(1000)])
    corrected = csv_bytes([{"customer_id": f"C{i}", "tier": "silver"} for i in range(500, 510)])
    first_version, later_version, statuses, reports = retrying_then_later_version(
        stack, stack.monetate, "/production/data/", key, first, corrected)
    # The later version waited (its report said what for) until the retry of the first had finished.
    assert statuses == [(first_version, "running"), (first_version, "retrying"), (later_version, "waiting"),
                        (first_version, "complete"), (later_version, "running"), (later_version, "complete")]
    # Its retry took the first version, not the later one now current, and went on where it stopped.
    assert (reports[3]["read"], reports[3]["sent"], reports[3]["runs"]) == (1000, 1000, 2)
    assert reports[2]["waiting_for"] == {"version_id": first_version, "status": "retrying",
                                         "written_at": reports[2]["waiting_for"]["written_at"]}
    held = requests.get(f"{stack.monetate_server.url}/_sandbox/records/day_customers").json()
    tiers = {row["customer_id"]: row["tier"] for row in held}
    assert len(tiers) == 1000 and tiers["C500"] == tiers["C509"] == "silver" and tiers["C510"] == "gold"


def test_an_optimove_file_dropped_again_while_its_earlier_version_waits_for_a_retry_lands_after_it(stack):
    creds = stack.optimove.credentials()
    uuid = requests.post(f"{stack.optimove_server.url}/api/data-connections/v1/connections",
                         json={"name": "ordered", "primary_key": "customer_id"},
                         headers={"x-api-key": creds["api_key"], "x-brand-key": creds["brand_key"]}
                         ).json()["data_connection_uuid"]
    key = "optimove/ordered/upsert/loyalty.csv"
    first = csv_bytes([{"customer_id": f"C{i}", "points": "1"} for i in range(1000)])
    corrected = csv_bytes([{"customer_id": f"C{i}", "points": "2"} for i in range(500, 510)])
    first_version, later_version, statuses, _ = retrying_then_later_version(
        stack, stack.optimove, "/upload_data", key, first, corrected)
    assert (later_version, "waiting") in statuses
    assert statuses[-1] == (later_version, "complete") and (first_version, "complete") in statuses
    points = requests.get(f"{stack.optimove_server.url}/_sandbox/records/{uuid}").json()["records"]
    points = {key: data["points"] for key, data in points.items()}
    assert len(points) == 1000 and points["C500"] == points["C509"] == 2 and points["C510"] == 1


def test_a_mona_file_dropped_again_while_its_earlier_version_waits_for_a_retry_lands_after_it(stack):
    key = "mona/ordered/orders.jsonl"
    first = jsonl([{"contextId": f"C{i}", "tier": "gold"} for i in range(1000)])
    corrected = jsonl([{"contextId": f"C{i}", "tier": "silver"} for i in range(500, 510)])
    first_version, later_version, statuses, _ = retrying_then_later_version(stack, stack.mona, "/export", key, first, corrected)
    assert (later_version, "waiting") in statuses
    assert statuses[-1] == (later_version, "complete") and (first_version, "complete") in statuses
    contexts = requests.get(f"{stack.mona_server.url}/_sandbox/contexts", params={"arcClass": "ordered"}).json()
    tiers = {c["contextId"]: c["fields"]["tier"] for c in contexts}
    assert len(tiers) == 1000 and tiers["C500"] == tiers["C509"] == "silver" and tiers["C510"] == "gold"


def test_a_waiting_file_is_queued_again_naming_its_version_later_each_time_and_reported_once(s3, monkeypatch):
    sent, logged = [], []
    monkeypatch.setattr(handlers, "s3", lambda: s3)
    monkeypatch.setattr(handlers, "sqs", lambda: SimpleNamespace(send_message=lambda **message: sent.append(message)))
    logger = SimpleNamespace(info=lambda message, extra: logged.append(extra["file"]))
    metrics = SimpleNamespace(add_metric=lambda **metric: None)
    put(s3)
    later = put(s3)
    put(s3, b"customer_id\nC3\n")  # a third version, current by the time the second is looked at again
    settings = Settings(file_queue_url="https://queue", earlier_version_recheck_seconds=30)
    dropped = DroppedFile(BUCKET, KEY, None, 15)  # a notification that did not name the version
    for waits in range(7):
        assert handlers.waits_for_earlier(pinned(s3, later), dropped, settings, logger, metrics)
        [dropped] = dropped_files(sent[-1]["MessageBody"])
        assert dropped == DroppedFile(BUCKET, KEY, later, 15, 0, waits + 1)  # the version pinned, not the current
    assert [message["DelaySeconds"] for message in sent] == [30, 60, 120, 240, 480, 900, 900]
    assert [entry["back_in_seconds"] for entry in logged] == [30, 60, 120, 240, 480, 900, 900]
    reports = s3.list_object_versions(Bucket=BUCKET, Prefix=f"reports/{KEY}.json")["Versions"]
    assert len(reports) == 1  # the first wait only: a retry of the earlier version looks through the report's versions
    report = json.loads(s3.get_object(Bucket=BUCKET, Key=f"reports/{KEY}.json")["Body"].read())
    assert (report["version_id"], report["status"], report["waiting_for"]["status"]) == (later, "waiting",
                                                                                          "not taken yet")
    # Once the version before has finished, the file goes on, whatever it waited before.
    RunReport(BUCKET, KEY, s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)["Versions"][2]["VersionId"], "monetate",
              status="complete").write(s3)
    assert not handlers.waits_for_earlier(pinned(s3, later), dropped, settings, logger, metrics)


def test_a_version_that_waits_after_its_own_run_began_keeps_its_report_to_go_on_from(s3, monkeypatch):
    monkeypatch.setattr(handlers, "s3", lambda: s3)
    monkeypatch.setattr(handlers, "sqs", lambda: SimpleNamespace(send_message=lambda **message: None))
    quiet = SimpleNamespace(info=lambda *a, **k: None), SimpleNamespace(add_metric=lambda **metric: None)
    first = put(s3)
    later = put(s3)
    report(s3, first, "complete")
    stopped = RunReport(BUCKET, KEY, later, "monetate", status="retrying", read=600, sent=400, resume_from=400)
    stopped.write(s3)
    report(s3, first, "retrying")  # the first version redriven from the dead-letter queue meanwhile
    settings = Settings(file_queue_url="https://queue")
    assert handlers.waits_for_earlier(pinned(s3, later), DroppedFile(BUCKET, KEY, later, 15), settings, *quiet)
    carried = RunReport.carried_over(s3, BUCKET, KEY, later, 0)
    assert (carried.version_id, carried.resume_from, carried.sent, carried.runs) == (later, 400, 400, 2)
