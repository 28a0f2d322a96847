"""The "File run finished" event: what it says of a report, and a failure to publish it never failing the file."""

import io
import json

import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError, EndpointConnectionError

from martech.file_events import DETAIL_TYPE, ERRORS_SENT, EVENT_SOURCE, delivered_detail, publish_file_event
from martech.reports import RunReport


class Events:
    def __init__(self, answer=None, error=None):
        self.answer, self.error, self.entries = answer or {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}, error, []

    def put_events(self, Entries):  # noqa: N803 - boto3's name
        self.entries += Entries
        if self.error:
            raise self.error
        return self.answer


def publish(events):
    stream = io.StringIO()
    report = RunReport("inbox", "mona/orders/day.jsonl", "v1", "mona", status="failed", read=3,
                       errors=[f"error {i}" for i in range(ERRORS_SENT + 3)]).as_dict()
    publish_file_event(events, "bus-1", delivered_detail(report), Logger(service=f"events-{id(events)}", stream=stream))
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_event_carries_the_reports_status_counts_and_first_errors():
    events = Events()
    assert publish(events) == []
    [entry] = events.entries
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (EVENT_SOURCE, DETAIL_TYPE, "bus-1")
    detail = json.loads(entry["Detail"])
    assert (detail["key"], detail["status"], detail["read"], detail["report"]) == (
        "mona/orders/day.jsonl", "failed", 3, "reports/mona/orders/day.jsonl.json")
    assert detail["errors"] == [f"error {i}" for i in range(ERRORS_SENT)]


@pytest.mark.parametrize("events, why", [
    (Events(error=ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "PutEvents")),
     "not allowed"),
    (Events(answer={"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}]}),
     "try later"),
])
def test_an_event_eventbridge_does_not_take_is_logged_and_the_file_stays_delivered(events, why):
    [line] = publish(events)  # nothing raised
    assert (line["level"], line["message"]) == ("WARNING", "file event not published")
    assert why in line["file_event"]["why"] and line["file_event"]["status"] == "failed"


def test_a_file_that_failed_every_try_before_any_run_wrote_a_report_says_why_in_its_dead_letter_event():
    from martech.file_events import dead_letter_detail

    detail = dead_letter_detail(None, "inbox", "optimove/loyalty/upsert/day.csv", "v1", RuntimeError("S3 unreachable"))
    assert detail == {"bucket": "inbox", "key": "optimove/loyalty/upsert/day.csv", "version_id": "v1",
                      "destination": "optimove", "status": "dead_letter", "report": None, "errors": ["S3 unreachable"]}


@pytest.mark.parametrize("receive_count, told", [("4", False), ("5", True)])
def test_the_last_try_tells_of_the_file_even_when_its_report_cannot_be_read(monkeypatch, receive_count, told):
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from martech import handlers
    from martech.s3_events import DroppedFile
    from martech.settings import Settings

    class Unreachable:
        def __getattr__(self, name):
            def fail(**kwargs):
                raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")
            return fail

    events = Events()
    monkeypatch.setattr(handlers, "s3", lambda: Unreachable())
    monkeypatch.setattr(handlers, "events", lambda: events)
    record = SQSRecord({"messageId": "m", "body": "{}", "attributes": {"ApproximateReceiveCount": receive_count}})
    dropped = DroppedFile("inbox", "mona/orders/day.jsonl", "v1", 10)
    handlers.tell_at_last_try(record, Settings(file_tries=5), dropped, "v1", RuntimeError("Mona is down"),
                              Logger(service="last-try", stream=io.StringIO()))
    sent = [json.loads(entry["Detail"]) for entry in events.entries]
    assert sent == ([{"bucket": "inbox", "key": "mona/orders/day.jsonl", "version_id": "v1", "destination": "mona",
                      "status": "dead_letter", "report": None, "errors": ["Mona is down"]}] if told else [])
