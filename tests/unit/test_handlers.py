"""What every handler does alike: the log line and metrics of a file run or a call, the backoff of a
failed file, a version's identity, query switches."""

import io
import json
import logging
import re

import pytest
from aws_lambda_powertools import Metrics

from martech.settings import Settings


def test_each_webhook_call_is_logged_with_its_status_and_counts_not_its_records(capsys):
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from martech.handlers import dispatch

    class Api:
        def resolve(self, event, context):
            body = {"accepted": 2, "rejected": 1, "results": [{"index": 0, "status": "accepted"}], "message": "done"}
            return {"statusCode": 200, "headers": {}, "body": json.dumps(body)}

    event = {"httpMethod": "POST", "path": "/monetate/customers/records", "headers": {},
             "body": '{"records": [{"email": "ann@example.com"}]}', "requestContext": {"requestId": "r-1"}}
    logger = Logger(service="test", stream=None)
    answer = dispatch(event, None, logger, Api(), lambda record: None, None, IdempotencyConfig())
    assert answer["statusCode"] == 200
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "call answered" and line["correlation_id"] == "r-1"
    assert line["call"] == {"method": "POST", "path": "/monetate/customers/records", "status": 200, "replayed": False,
                            "answer": {"accepted": 2, "rejected": 1, "message": "done"}}
    assert "ann@example.com" not in json.dumps(line) and line["level"] == "INFO"


def test_a_call_that_publishes_no_metrics_leaves_no_warning_in_the_log():
    import subprocess
    import sys
    from pathlib import Path

    # A fresh interpreter, as a Lambda container is: pytest saves and restores warning filters around
    # each test, so one set at an import during an earlier test is gone here.
    code = """if True:
        import warnings
        warnings.simplefilter("always")  # every warning shows, every time, unless a later filter says not
        import martech.handlers
        from aws_lambda_powertools import Metrics

        @Metrics(namespace="MarketingBundle", service="calls").log_metrics
        def handler(event, context):
            return {"statusCode": 200}

        handler({}, None)
        warnings.warn("another warning", UserWarning)
    """
    layer = Path(__file__).resolve().parents[2] / "layers" / "shared"
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(layer), "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"})
    assert "another warning" in ran.stderr and "No application metrics" not in ran.stderr


@pytest.mark.parametrize("status, level", [(400, "INFO"), (404, "INFO"), (502, "WARNING"), (503, "WARNING")])
def test_a_webhook_call_the_bundle_or_the_vendor_failed_is_logged_as_a_warning(status, level):
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from martech.handlers import dispatch

    class Api:
        def resolve(self, event, context):
            return {"statusCode": status, "headers": {}, "body": '{"message": "no"}'}

    event = {"httpMethod": "POST", "path": "/mona/export", "headers": {}, "body": "{}", "requestContext": {"requestId": "r"}}
    stream = io.StringIO()
    dispatch(event, None, Logger(service=f"calls-{status}", stream=stream), Api(), lambda record: None, None,
             IdempotencyConfig())
    line = json.loads(stream.getvalue())
    assert (line["level"], line["message"], line["call"]["status"]) == (level, "call answered", status)


def test_a_file_whose_every_record_was_set_aside_is_logged_as_a_warning_with_its_reasons():
    from aws_lambda_powertools import Logger

    from martech.handlers import ERRORS_LOGGED, log_file_run
    from martech.reports import RunReport

    reasons = {f"field{i}: expected a number, found '...'": 10 - i for i in range(ERRORS_LOGGED + 2)}
    report = RunReport("inbox", "monetate/customers/day.csv", None, "monetate", status="complete", read=63, sent=0,
                       rejected=63, rejected_reasons=reasons).as_dict()
    stream = io.StringIO()
    log_file_run(Logger(service="files-all-set-aside", stream=stream), report, ("read", "sent", "rejected"))
    line = json.loads(stream.getvalue())
    assert (line["level"], line["message"]) == ("WARNING", "file delivered, every record set aside")
    assert line["report"]["reasons"] == dict(list(reasons.items())[:ERRORS_LOGGED])
    assert line["report"]["report"] == "reports/monetate/customers/day.csv.json"


@pytest.mark.parametrize("status, level, message", [
    ("complete", "INFO", "file delivered"), ("partial", "WARNING", "file partly delivered"),
    ("failed", "ERROR", "file failed"),
])
def test_a_file_that_did_not_complete_is_logged_at_a_level_that_says_so_with_its_errors(status, level, message):
    from aws_lambda_powertools import Logger

    from martech.handlers import ERRORS_LOGGED, log_file_run
    from martech.reports import RunReport

    report = RunReport("inbox", "monetate/customers/day.csv", None, "monetate", status=status, read=3, sent=1,
                       errors=[f"lines {i}-{i}: refused" for i in range(ERRORS_LOGGED + 2)]).as_dict()
    stream = io.StringIO()
    log_file_run(Logger(service=f"files-{status}", stream=stream), report, ("read", "sent"))
    line = json.loads(stream.getvalue())
    assert (line["level"], line["message"]) == (level, message)
    if status == "complete":
        assert line["report"] == {"status": "complete", "read": 3, "sent": 1}
    else:
        assert line["report"]["report"] == "reports/monetate/customers/day.csv.json"
        assert line["report"]["errors"] == report["errors"][:ERRORS_LOGGED] and len(report["errors"]) > ERRORS_LOGGED


def test_a_file_run_logs_the_names_read_otherwise_and_left_out_so_a_log_filter_finds_them():
    from aws_lambda_powertools import Logger

    from martech.handlers import log_file_run
    from martech.reports import RunReport

    report = RunReport("inbox", "monetate/customers/day.csv", None, "monetate", status="complete", read=1, sent=1,
                       read_as={"Customer ID": "customer_id"}, left_out={"notes": "not a field of schema customers"})
    stream = io.StringIO()
    log_file_run(Logger(service="files-names", stream=stream), report.as_dict(), ("read", "sent"))
    assert json.loads(stream.getvalue())["report"] == {"status": "complete", "read": 1, "sent": 1,
                                                       "read_as": {"Customer ID": "customer_id"},
                                                       "left_out": {"notes": "not a field of schema customers"}}


def test_a_dry_run_is_logged_as_checked_with_nothing_sent_not_as_delivered():
    from aws_lambda_powertools import Logger

    from martech.handlers import log_file_run
    from martech.reports import RunReport

    report = RunReport("inbox", "mona/orders/day.csv", None, "mona", status="complete", read=3, rejected=1, dry_run=True,
                       checked=2)
    stream = io.StringIO()
    log_file_run(Logger(service="files-dry-run", stream=stream), report.as_dict(), ("read", "sent", "rejected"))
    line = json.loads(stream.getvalue())
    assert (line["level"], line["message"]) == ("INFO", "file checked, nothing sent")
    assert line["report"] == {"status": "complete", "read": 3, "sent": 0, "rejected": 1, "checked": 2}


def test_uploads_of_a_key_without_versions_are_told_apart_by_their_content_and_time(monkeypatch):
    import datetime as dt

    from aws_lambda_powertools import Logger

    from martech import handlers
    from martech.s3_events import DroppedFile

    heads = iter([{"VersionId": "null", "ETag": '"abc"', "LastModified": dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)},
                  {"VersionId": "null", "ETag": '"def"', "LastModified": dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)},
                  {"VersionId": "v7", "ETag": '"def"', "LastModified": dt.datetime(2026, 11, 24, 11, tzinfo=dt.UTC)}])

    class S3:
        def head_object(self, **kwargs):
            return next(heads)

    monkeypatch.setattr(handlers, "s3", S3)
    first, second, versioned = (handlers.pinned(DroppedFile("inbox", "monetate/c/day.csv", None, 1), Logger("t"))
                                for _ in range(3))
    assert first["id"] == "inbox/monetate/c/day.csv@abc-2026-11-24T10:00:00+00:00" and first["version_id"] is None
    assert second["id"] != first["id"] and second["version_id"] is None  # read as the key's current object
    assert versioned["id"] == "inbox/monetate/c/day.csv@v7" and versioned["version_id"] == "v7"


@pytest.mark.parametrize("content_type, charset", [
    ("text/csv; charset=windows-1252", "windows-1252"), ('text/csv;charset="ISO-8859-1"', "ISO-8859-1"),
    ("text/plain; Charset=UTF-8; header=present", "UTF-8"), ("text/csv", None), ("binary/octet-stream", None),
    ("text/csv; charset=", None), ("", None), (None, None),
])
def test_the_charset_a_content_type_names(content_type, charset):
    from martech.handlers import charset_of

    assert charset_of(content_type) == charset


@pytest.mark.parametrize("query, flag", [
    ("", False), ("merge", True), ("merge=true", True), ("merge=False", False), ("merge=yes&merge=true", True),
    ("merge=true&merge=false", "?merge is given both true and false: give it once"),
    ("merge=true&merge=maybe", "?merge=maybe: write true or false"),
])
def test_a_query_switch_is_true_false_or_refused_however_often_it_is_given(query, flag):
    from types import SimpleNamespace
    from urllib.parse import parse_qs

    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    from martech.handlers import BadQuery, query_flag

    values = parse_qs(query, keep_blank_values=True)
    api = SimpleNamespace(current_event=APIGatewayProxyEvent({  # as API Gateway sends them: the last, and all
        "queryStringParameters": {k: v[-1] for k, v in values.items()} or None,
        "multiValueQueryStringParameters": values or None}))
    if isinstance(flag, bool):
        assert query_flag(api, "merge") is flag
    else:
        with pytest.raises(BadQuery, match=re.escape(flag)):
            query_flag(api, "merge")


@pytest.mark.parametrize("status, not_complete", [("complete", 0), ("partial", 1), ("failed", 1)])
def test_a_file_that_did_not_end_complete_is_counted_for_the_alarms(status, not_complete):
    from aws_lambda_powertools import Metrics

    from martech.handlers import report_metrics

    metrics = Metrics(namespace="MarketingBundle", service="monetate")
    metrics.clear_metrics()  # Powertools keeps one metric set per process: what stack tests put in it too
    report_metrics(metrics, {"status": status, "read": 7}, {"RecordsRead": "read"})
    assert metrics.metric_set["RecordsRead"]["Value"] == [7.0]
    assert metrics.metric_set["FilesNotComplete"]["Value"] == [float(not_complete)]
    metrics.clear_metrics()


@pytest.mark.parametrize("answer, level, not_complete", [
    ({"file": "monetate-sessions/a.jsonl", "sessions": 4, "rejected": 1, "refresh": {"triggered": False}}, "INFO", 0),
    ({"file": "monetate-sessions/a.jsonl", "error": "monetate-sessions/a.jsonl: not gzip"}, "ERROR", 1),
])
def test_a_session_stream_file_that_failed_is_logged_as_an_error_and_counted_for_the_alarms(answer, level, not_complete):
    from aws_lambda_powertools import Logger, Metrics

    from martech.handlers import log_sessions_run

    metrics, stream = Metrics(namespace="MarketingBundle", service="monetate"), io.StringIO()
    metrics.clear_metrics()
    log_sessions_run(Logger(service=f"sessions-{level}", stream=stream), metrics, answer)
    line = json.loads(stream.getvalue())
    assert line["level"] == level and metrics.metric_set["FilesNotComplete"]["Value"] == [float(not_complete)]
    if not_complete:
        assert line["summary"] == {"error": answer["error"], "report": "reports/monetate-sessions/a.jsonl.json"}
    else:
        assert line["summary"] == {"sessions": 4, "rejected": 1, "refresh": {"triggered": False}}
    metrics.clear_metrics()


class RecordingSqs:
    def __init__(self):
        self.held = []

    def change_message_visibility(self, QueueUrl, ReceiptHandle, VisibilityTimeout):  # noqa: N803 - boto3's names
        self.held.append((QueueUrl, ReceiptHandle, VisibilityTimeout))


def _sqs_event(receive_count):
    return {"Records": [{"messageId": "m1", "receiptHandle": "r1", "body": "{}", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:inbox-monetate",
                         "attributes": {"ApproximateReceiveCount": str(receive_count)}, "messageAttributes": {}}]}


@pytest.mark.parametrize("receive_count, held_for", [(1, 300), (3, 1200), (12, 43_200)])
def test_a_message_whose_run_failed_comes_back_after_a_backoff_doubled_at_each_try(monkeypatch, receive_count, held_for):
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from martech import handlers

    recorded = RecordingSqs()
    monkeypatch.setattr(handlers, "sqs", lambda: recorded)

    def failing(record, lambda_context=None):
        raise RuntimeError("the vendor answered 503 after retries")

    lines = io.StringIO()
    logger = Logger(service=f"backoff-{receive_count}", logger_handler=logging.StreamHandler(lines))
    metrics = Metrics(namespace="MarketingBundle", service=f"backoff-{receive_count}")
    with pytest.raises(BatchProcessingError):  # a batch whose every message failed fails the invocation
        handlers.dispatch(_sqs_event(receive_count), None, logger, APIGatewayRestResolver(),
                          failing, BatchProcessor(event_type=EventType.SQS), IdempotencyConfig(), retry_after_seconds=300,
                          queue_url="https://sqs.local/inbox-monetate", metrics=metrics)
    assert recorded.held == [("https://sqs.local/inbox-monetate", "r1", held_for)]
    logged = [json.loads(line) for line in lines.getvalue().splitlines() if '"file back to its queue"' in line]
    assert [entry["retry"] for entry in logged] == [{"try": receive_count, "back_in_seconds": held_for,
                                                     "because": "the vendor answered 503 after retries"}]
    assert _counted(metrics) == {"FileRetries": 1.0}  # the dashboard sees a vendor's trouble before the DLQ does

    recorded.held.clear()
    handlers.dispatch(_sqs_event(receive_count), None, Logger(service="test"), APIGatewayRestResolver(),
                      lambda record, lambda_context=None: None, BatchProcessor(event_type=EventType.SQS),
                      IdempotencyConfig(), retry_after_seconds=300, queue_url="https://sqs.local/inbox-monetate",
                      metrics=metrics)
    assert recorded.held == []  # a message whose run went well is deleted as it was
    assert _counted(metrics) == {}


def test_the_metrics_of_an_invocation_that_fails_are_published(capsys, monkeypatch):
    """A batch whose every file run failed fails the invocation; its FileRetries must still reach CloudWatch."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"):  # as Lambda runs it, not as the local stack does
        monkeypatch.delenv(name, raising=False)

    metrics = Metrics(namespace="MarketingBundle", service="published")

    @metrics.log_metrics
    def handler(event, context):
        metrics.add_metric(name="FileRetries", unit="Count", value=1)
        raise BatchProcessingError("every message failed", [])

    with pytest.raises(BatchProcessingError):
        handler({}, None)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [line.get("FileRetries") for line in emitted] == [[1.0]]


def _counted(metrics) -> dict[str, float]:
    """The metrics added since the last look, summed by name; cleared as a flush would."""
    counted = {name: sum(m["Value"]) if isinstance(m["Value"], list) else m["Value"]
               for name, m in metrics.metric_set.items()}
    metrics.clear_metrics()
    return counted


@pytest.mark.parametrize("receive_count, note", [
    (1, "try 1 of 5; the next in 5 minutes"),
    (4, "try 4 of 5; the next in 40 minutes"),
    (5, "try 5 of 5; next, the dead-letter queue: redrive it once the cause is mended"),
])
def test_a_report_says_which_try_failed_and_what_comes_next(receive_count, note):
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from martech.handlers import retry_note

    record = SQSRecord(_sqs_event(receive_count)["Records"][0])
    assert retry_note(record, Settings(retry_after_seconds=300, file_tries=5)) == note
