"""A file's batches in flight when one of them fails for good: what the report keeps, and where
the file's retry goes on. Against S3 in moto and vendor clients whose answers the test decides."""

import errno
import io
import json
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.exceptions import ResponseStreamingError

from martech import mona_delivery, session_stream
from martech.metadata_snapshots import SnapshotStore
from martech.mona import ExportResult, MonaUnavailable
from martech.monetate import TransientFailure
from martech.monetate_delivery import deliver_file
from martech.monetate_rows import Schema
from martech.reports import RetryLater
from martech.settings import Settings
from tests.integration.conftest import INBOX
from tests.integration.files import csv_bytes

BUCKET, KEY = INBOX, "monetate/customers/day.csv"
SCHEMA = Schema.from_api(json.loads(Path("events/monetate/customers.schema.json").read_text()))
SETTINGS = Settings(monetate_batch_size=200, monetate_concurrency=4)


class Monetate:
    """Takes every batch, except that the batch starting with ``failing`` fails (with ``error``), once the
    batches starting with ``taken_first`` (already in flight behind it) have been taken."""

    def __init__(self, failing: str | None = None, taken_first: tuple[str, ...] = (),
                 error: Exception = TransientFailure("Monetate answered 503 after retries")) -> None:
        self.tokens = SimpleNamespace(refreshes=0)
        self.failing, self.taken_first, self.error = failing, set(taken_first), error
        self.taken: list[str] = []
        self._lock = threading.Condition()

    def schema(self, name):
        return SCHEMA

    def post_rows(self, schema, rows, deadline=None):
        with self._lock:
            if rows[0]["customer_id"] == self.failing:
                assert self._lock.wait_for(lambda: self.taken_first <= set(self.taken), timeout=10)
                raise self.error
            self.taken += [row["customer_id"] for row in rows]
            self._lock.notify_all()


def deliver(s3, client):
    version = s3.head_object(Bucket=BUCKET, Key=KEY)["VersionId"]
    body = s3.get_object(Bucket=BUCKET, Key=KEY, VersionId=version)["Body"]
    return deliver_file(s3, body, BUCKET, KEY, version, client, SETTINGS)


def stored(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_a_retry_goes_on_after_the_last_batch_taken_in_order_and_sets_no_row_aside_twice(s3):
    rows = [{"customer_id": f"C{i}", "tier": "gold"} for i in range(1000)]
    rows[10]["tier"], rows[700]["tier"] = " ", ""  # blanks are fine; a bad number is not
    rows[10]["lifetime_value"] = rows[700]["lifetime_value"] = "lots"
    for row in rows:
        row.setdefault("lifetime_value", "1")
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=csv_bytes(rows))

    first = Monetate(failing="C400", taken_first=("C600", "C800"))  # the third batch of 200 fails after the next two
    with pytest.raises(RetryLater):
        deliver(s3, first)
    report = json.loads(stored(s3, f"reports/{KEY}.json"))
    assert (report["status"], report["resume_from"], report["read"], report["sent"], report["rejected"]) == (
        "retrying", 400, 400, 399, 1)
    assert [json.loads(line)["line"] for line in stored(s3, f"rejected/{KEY}.jsonl").splitlines()] == [12]
    first_times = report

    second = Monetate()  # the same object version again, as its queue hands it back
    report = deliver(s3, second)
    assert second.taken[0] == "C400" and len(second.taken) == 599  # nothing before the failed batch again
    assert (report.status, report.read, report.sent, report.rejected, report.runs) == ("complete", 1000, 998, 2, 2)
    times = json.loads(stored(s3, f"reports/{KEY}.json"))
    assert times["started_at"] == first_times["started_at"] < times["finished_at"]  # from the first run's start
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", times["finished_at"])
    assert [json.loads(line)["line"] for line in stored(s3, f"rejected/{KEY}.jsonl").splitlines()] == [12, 702]


def test_the_report_says_running_while_a_files_first_run_is_under_way_and_a_retry_keeps_what_it_goes_on_from(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=csv_bytes([{"customer_id": f"C{i}"} for i in range(1000)]))
    seen = []

    class Watched(Monetate):
        def post_rows(self, schema, rows, deadline=None):
            seen.append(json.loads(stored(s3, f"reports/{KEY}.json")))
            super().post_rows(schema, rows, deadline)

    with pytest.raises(RetryLater):
        deliver(s3, Watched(failing="C400", taken_first=("C600",)))
    assert {(r["status"], r["read"], r["sent"], r["runs"], r["finished_at"]) for r in seen} == {("running", 0, 0, 1, None)}
    assert seen[0]["version_id"] == s3.head_object(Bucket=BUCKET, Key=KEY)["VersionId"]
    seen.clear()
    report = deliver(s3, Watched())  # the retry goes on from the report it found, which stays until the retry ends
    assert {(r["status"], r["resume_from"]) for r in seen} == {("retrying", 400)}
    assert (report.status, report.sent, report.runs) == ("complete", 1000, 2)


def test_an_error_no_handler_expected_is_said_in_the_report_and_the_retry_goes_on_after_the_batches_taken(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=csv_bytes([{"customer_id": f"C{i}"} for i in range(1000)]))
    first = Monetate(failing="C400", taken_first=("C600",), error=TypeError("Integer exceeds 64-bit range"))
    with pytest.raises(RetryLater) as raised:
        deliver(s3, first)
    assert isinstance(raised.value.__cause__, TypeError)  # its traceback is logged with the failed message
    report = json.loads(stored(s3, f"reports/{KEY}.json"))  # not "running" for good
    assert (report["status"], report["resume_from"], report["sent"]) == ("retrying", 400, 400)
    assert report["errors"] == ["unexpected TypeError: Integer exceeds 64-bit range"]
    second = Monetate()
    assert deliver(s3, second).status == "complete" and second.taken[0] == "C400"


class BrokenStream(io.BytesIO):
    """An S3 body whose connection breaks after ``good`` bytes."""

    def __init__(self, data: bytes, good: int) -> None:
        super().__init__(data)
        self.good = good

    def read(self, size=-1):
        if self.tell() >= self.good:
            raise ResponseStreamingError(error="Connection broken: IncompleteRead")
        return super().read(min(size, self.good - self.tell()) if size and size > 0 else self.good - self.tell())


def test_s3_breaking_part_way_through_the_file_is_a_transient_failure_and_the_retry_goes_on(s3):
    body = csv_bytes([{"customer_id": f"C{i}"} for i in range(100_000)])
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)
    version = s3.head_object(Bucket=BUCKET, Key=KEY)["VersionId"]
    first = Monetate()
    with pytest.raises(RetryLater):
        deliver_file(s3, BrokenStream(body, len(body) // 2), BUCKET, KEY, version, first, SETTINGS)
    report = json.loads(stored(s3, f"reports/{KEY}.json"))
    assert report["status"] == "retrying" and report["resume_from"] == len(first.taken) > 0
    assert report["errors"] == ["transient: An error occurred while reading from response stream:"
                                " Connection broken: IncompleteRead"]
    second = Monetate()
    assert deliver(s3, second).status == "complete"
    assert sorted(first.taken + second.taken) == sorted(f"C{i}" for i in range(100_000))  # each once


def test_a_session_stream_file_s3_breaks_off_is_retried_with_a_report_saying_so(s3):
    key = "monetate-sessions/10.jsonl"
    body = b'{"session_id": "s1", "city": "Denver", "page_event_ids": {}, "offers": []}\n' * 50_000
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    with pytest.raises(RetryLater):
        session_stream.interpret_dropped(s3, lambda: BrokenStream(body, len(body) // 2), BUCKET, key, None,
                                         SnapshotStore(s3, BUCKET), 3600, lambda: None)
    report = json.loads(stored(s3, f"reports/{key}.json"))
    assert report["status"] == "retrying" and report["errors"] == [
        "transient: An error occurred while reading from response stream: Connection broken: IncompleteRead"]


def test_a_retry_goes_on_where_it_stopped_though_a_later_version_of_the_file_was_delivered_meanwhile(s3):
    rows = [{"customer_id": f"C{i}", "lifetime_value": "lots" if i in (10, 700) else "1"} for i in range(1000)]
    first_version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=csv_bytes(rows))["VersionId"]

    def deliver_version(version, client):
        body = s3.get_object(Bucket=BUCKET, Key=KEY, VersionId=version)["Body"]
        return deliver_file(s3, body, BUCKET, KEY, version, client, SETTINGS)

    with pytest.raises(RetryLater):  # batches of 200: the third keeps failing after the next two were taken
        deliver_version(first_version, Monetate(failing="C400", taken_first=("C600", "C800")))
    # The file is dropped again, changed, while the first version waits for its retry: its report and
    # rejected rows are written over.
    later = [{"customer_id": f"D{i}", "lifetime_value": "x" if i == 5 else "2"} for i in range(300)]
    later_version = s3.put_object(Bucket=BUCKET, Key=KEY, Body=csv_bytes(later))["VersionId"]
    assert deliver_version(later_version, Monetate()).status == "complete"

    retry = Monetate()
    report = deliver_version(first_version, retry)
    assert retry.taken[0] == "C400" and len(retry.taken) == 599  # nothing before the failed batch again
    assert (report.version_id, report.status, report.read, report.sent, report.rejected, report.runs) == (
        first_version, "complete", 1000, 998, 2, 2)
    rejected = [json.loads(line) for line in stored(s3, f"rejected/{KEY}.jsonl").splitlines()]
    assert [(r["line"], r["record"]["customer_id"]) for r in rejected] == [(12, "C10"), (702, "C700")]


def test_a_new_version_of_the_file_starts_from_the_top_whatever_the_last_one_left(s3):
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=csv_bytes([{"customer_id": f"C{i}"} for i in range(600)]))
    with pytest.raises(RetryLater):
        deliver(s3, Monetate(failing="C400"))
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=csv_bytes([{"customer_id": f"D{i}"} for i in range(300)]))
    fresh = Monetate()
    report = deliver(s3, fresh)
    assert (report.status, report.read, report.sent, report.runs) == ("complete", 300, 300, 1)
    assert fresh.taken[0] == "D0"


def test_a_file_that_breaks_part_way_sends_what_was_read_before_and_sets_bad_rows_aside_in_order(s3):
    key = "monetate/customers/broken.json"
    records = [{"customer_id": f"C{i}"} for i in range(450)]
    records[3]["customer_id"] = records[420]["customer_id"] = ""
    s3.put_object(Bucket=BUCKET, Key=key, Body=("[\n" + ",\n".join(map(json.dumps, records)) + ",\n{broken").encode())
    version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    stream = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
    monetate = Monetate()
    report = deliver_file(s3, stream, BUCKET, key, version, monetate, SETTINGS)
    assert report.status == "failed" and "invalid JSON" in report.errors[0]
    # Two batches of 200, then the 49 good records read after them, before the break.
    assert (report.read, report.sent, report.rejected, report.failed) == (450, 448, 2, 0)
    assert sorted(monetate.taken) == sorted(r["customer_id"] for r in records if r["customer_id"])
    assert [json.loads(line)["line"] for line in stored(s3, f"rejected/{key}.jsonl").splitlines()] == [5, 422]


def test_without_versioning_a_retry_starts_from_the_top_as_the_object_may_have_been_replaced(s3):
    s3.create_bucket(Bucket="plain")  # no versioning: no version id to tell one upload from the next
    body = csv_bytes([{"customer_id": f"C{i}"} for i in range(600)])
    s3.put_object(Bucket="plain", Key=KEY, Body=body)
    with pytest.raises(RetryLater):
        deliver_file(s3, s3.get_object(Bucket="plain", Key=KEY)["Body"], "plain", KEY, None, Monetate(failing="C400"),
                     SETTINGS)
    again = Monetate()
    report = deliver_file(s3, s3.get_object(Bucket="plain", Key=KEY)["Body"], "plain", KEY, None, again, SETTINGS)
    assert (report.status, report.sent, report.runs) == ("complete", 600, 1) and again.taken[0] == "C0"


class Mona:
    """Takes every export but the ``failing``-th (counted from 1), which fails as Mona does when busy."""

    def __init__(self, failing: int | None = None) -> None:
        self.tokens = SimpleNamespace(logins=0)
        self.failing, self.exports = failing, 0
        self.taken: list[str] = []
        self.first_of_failed: str | None = None

    def export(self, messages, deadline=None):
        self.exports += 1
        if self.exports == self.failing:
            self.first_of_failed = messages[0]["contextId"]
            raise MonaUnavailable("Mona answered 503 after retries")
        self.taken += [m["contextId"] for m in messages]
        return ExportResult()


def test_a_mona_file_split_by_bytes_is_retried_from_the_first_message_not_taken(s3):
    key = "mona/orders/day.jsonl"
    records = [{"contextId": f"c{i}", "note": "x" * (i % 7 * 20), "action": "ADD"} for i in range(300)]
    for i in (3, 150, 151, 290):
        records[i]["contextId"] = ["not", "text"]
    s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(map(json.dumps, records)).encode())
    version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    settings = Settings(mona_batch_size=1000, mona_batch_bytes=4000, mona_concurrency=4)  # batches of uneven length

    def deliver_mona(client):
        body = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"]
        return mona_delivery.deliver_file(s3, body, BUCKET, key, version, None, client, settings)

    first = Mona(failing=3)
    with pytest.raises(RetryLater):
        deliver_mona(first)
    report = json.loads(stored(s3, f"reports/{key}.json"))
    failed_at = int(first.first_of_failed[1:])
    assert report["status"] == "retrying" and report["resume_from"] == failed_at  # records before it, bad ones too
    assert first.taken == [f"c{i}" for i in range(failed_at) if i != 3]

    second = Mona()
    report = deliver_mona(second)
    assert second.taken[0] == first.first_of_failed
    assert sorted(first.taken + second.taken) == sorted(f"c{i}" for i in range(300) if i not in (3, 150, 151, 290))
    assert (report.status, report.read, report.sent, report.rejected, report.runs) == ("complete", 300, 296, 4, 2)
    assert [json.loads(line)["line"] for line in stored(s3, f"rejected/{key}.jsonl").splitlines()] == [4, 151, 152, 291]


class SmallDisk(io.BytesIO):
    """A spool for the rejected rows that runs out of room after ``room`` bytes, as /tmp would."""

    room = 3_000

    def __init__(self, max_size: int = 0) -> None:
        super().__init__()

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            super().write(data[: self.room - self.tell()])  # what a full disk takes of a write
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_rejected_rows_that_fill_the_disk_end_the_file_with_a_report_and_the_rows_kept_whole(s3, monkeypatch):
    rows = [{"customer_id": f"C{i}", "tier": "gold", "lifetime_value": "1" if i < 200 else "lots"} for i in range(1000)]
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=csv_bytes(rows))
    monkeypatch.setattr("martech.reports.tempfile", SimpleNamespace(SpooledTemporaryFile=SmallDisk))
    report = deliver(s3, Monetate())
    assert report.status == "failed" and report.sent == 200
    assert re.fullmatch(r"the \d+ rows set aside before line \d+ fill the function's disk \(No space left on device\);"
                        r" mend what they say and drop the file again", report.errors[0])
    kept = [json.loads(line) for line in stored(s3, "rejected/" + KEY + ".jsonl").splitlines()]
    assert 0 < len(kept) == report.rejected and kept[0]["line"] == 202  # every row kept is whole
    assert report.failed == 1000 - 200 - report.rejected
