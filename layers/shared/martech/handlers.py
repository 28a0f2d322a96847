"""What every function's handler does the same way: the entry point that tells SQS batches
from API Gateway calls, idempotency per object version, pinning the version a
notification names, JSON answers, the last log line and the metrics of a file report; a webhook's
query values, switches and limits; and when a file's run fails, how long its message waits and what
its report says."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import warnings
from email.message import EmailMessage
from functools import cache
from typing import Any
from collections.abc import Callable, Collection, Mapping

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

from martech.file_events import dead_letter_detail, delivered_detail, publish_file_event
from martech.names import did_you_mean
from martech.repeated_calls import REPLAYED, RepeatedCalls
from martech.reports import RunReport, report_key, version_report
from martech.s3_events import DroppedFile, continuation, no_data_by_name
from martech.settings import Settings, yes_or_no
from martech.version_order import unfinished_earlier


# Webhook calls publish no metrics of their own (API Gateway counts them), and Powertools warns of that
# once a container: a line of noise in the function's log. Silenced as Powertools' docs show.
warnings.filterwarnings("ignore", "No application metrics to publish*")


@cache
def s3() -> Any:
    return boto3.client("s3")


@cache
def sqs() -> Any:
    return boto3.client("sqs")


@cache
def events() -> Any:
    return boto3.client("events")


def deliver_dropped(dropped: DroppedFile, record: SQSRecord, lambda_context: Any,
                    deliver_once: Callable[..., dict[str, Any]], settings: Settings, logger: Logger, metrics: Metrics,
                    logged: tuple[str, ...], counted: Mapping[str, str],
                    from_head: Callable[[dict[str, Any]], dict[str, Any]] = lambda head: {}) -> None:
    """One dropped file, as every file function takes it: its version pinned (``pinned``), or left to wait
    for the version written before it (``waits_for_earlier``); delivered once (``deliver_once``, keyed by
    the version's ``id``, given what ``from_head`` takes from its HEAD); the rest of a file too big for one
    run handed on; and the run's last log line, with the report's ``logged`` fields, its metrics
    (``counted``: metric name to report field) and its File run finished event (``martech.file_events``)."""
    logger.set_correlation_id(dropped.key)
    file = pinned(dropped, logger)
    if file is None or waits_for_earlier(file, dropped, settings, logger, metrics):
        return
    head = file.pop("head")
    report, repeated = run_once(lambda: deliver_once(dropped={  # keyed by "id" alone
        **file, **from_head(head), "stop_at": stop_time(lambda_context, settings), "retry_note": retry_note(record, settings)}),
        record, settings, dropped, file["version_id"], logger)
    # A run that stopped part way hands the rest on even when this event repeats one it came from: the
    # run before may have ended before it could. The runs handed on are delivered once each all the same.
    if handed_on(report, dropped, settings.file_queue_url, logger, metrics):
        return  # the counts are the whole file's so far: metrics come once, from the last run
    if repeated:  # the stored report, counted when its run ended
        logger.info("file already delivered, event repeated", extra={"report": {
            "status": report["status"], "finished_at": report["finished_at"], "report": report_key(report["key"])}})
        return
    log_file_run(logger, report, logged)
    report_metrics(metrics, report, counted)
    publish_file_event(events(), settings.file_event_bus, delivered_detail(report), logger)


def run_once(run: Callable[[], dict[str, Any]], record: SQSRecord, settings: Settings, dropped: DroppedFile,
             version_id: str | None, logger: Logger) -> tuple[dict[str, Any], bool]:
    """``run()``, a file version's idempotent run, and whether its answer is the one stored for an earlier
    event of the version (S3 and SQS deliver an event at least once): its run ended before this one began.
    A run that fails on the file's last try first publishes the file's ``dead_letter`` event (``tell_at_last_try``)."""
    began = time.time()
    try:
        answer = run()
    except Exception as exc:
        tell_at_last_try(record, settings, dropped, version_id, exc, logger)
        raise
    finished = answer.get("finished_at")
    return answer, bool(finished) and dt.datetime.fromisoformat(finished).timestamp() < began


def tell_at_last_try(record: SQSRecord, settings: Settings, dropped: DroppedFile, version_id: str | None,
                     failure: Exception, logger: Logger) -> None:
    """When this was the file's last try (``FILE_TRIES``; its message goes to the dead-letter queue next), its
    ``dead_letter`` event, with what its last report says (``martech.file_events``)."""
    if _tries(record) >= settings.file_tries:
        try:
            last = version_report(s3(), dropped.bucket, dropped.key, version_id)
        except (ClientError, BotoCoreError):  # the failure to tell of is the run's, not this one
            last = None
        publish_file_event(events(), settings.file_event_bus,
                           dead_letter_detail(last, dropped.bucket, dropped.key, version_id, failure), logger)


def handed_on(report: dict[str, Any], dropped: DroppedFile, queue_url: str | None, logger: Logger, metrics: Metrics
              ) -> bool:
    """Whether the run stopped part way through the file (too big for one run); if so, the rest
    is queued on the file's own queue (``queue_url``, FILE_QUEUE_URL) for a new run."""
    if report["status"] != "continuing":
        return False
    sqs().send_message(QueueUrl=queue_url, MessageBody=continuation(dropped, report["resume_from"]))
    logger.info("file continues in a new run", extra={"resume_from": report["resume_from"]})
    metrics.add_metric(name="FileRunsContinued", unit=MetricUnit.Count, value=1)
    return True


def waits_for_earlier(file: dict[str, Any], dropped: DroppedFile, settings: Settings, logger: Logger, metrics: Metrics
                      ) -> bool:
    """Whether this file version must wait for the version written before it to finish (``version_order``);
    if so, it is queued again to be looked at later, and its report says what it waits for (the first time)."""
    if dropped.resume_from or file["version_id"] is None:  # a run going on was let start; no versions to order
        return False
    earlier = unfinished_earlier(s3(), dropped.bucket, dropped.key, file["version_id"], earlier_wait_limit(settings))
    if earlier is None:
        return False
    delay = min(settings.earlier_version_recheck_seconds * 2 ** dropped.waits, MOST_SQS_DELAYS)
    pinned_version = dataclasses.replace(dropped, version_id=file["version_id"])  # not whichever is current then
    sqs().send_message(QueueUrl=settings.file_queue_url, MessageBody=continuation(pinned_version, 0, dropped.waits + 1),
                       DelaySeconds=delay)
    # Once: the report key's versions are where a run going on finds its own last report; and not over a
    # report of this version's own (a retry of it, once its earlier version was redriven), which it goes on from.
    if not dropped.waits and version_report(s3(), dropped.bucket, dropped.key, file["version_id"],
                                            file["head"]["LastModified"]) is None:
        RunReport(dropped.bucket, dropped.key, file["version_id"], dropped.key.split("/", 1)[0], status="waiting",
                  waiting_for=earlier.as_dict()).write(s3())
    logger.info("file waits for its earlier version", extra={"file": {
        "key": dropped.key, "version_id": file["version_id"], "waiting_for": earlier.as_dict(), "back_in_seconds": delay}})
    metrics.add_metric(name="FileWaits", unit=MetricUnit.Count, value=1)
    return True


def earlier_wait_limit(settings: Settings) -> dt.timedelta:
    """How long an unfinished earlier version of a file is waited for, from when it was written: its runs
    and the waits between its tries before the dead-letter queue (2.5 hours by default)."""
    waits = sum(backoff(tries, settings.retry_after_seconds) for tries in range(1, settings.file_tries))
    return dt.timedelta(seconds=waits + settings.file_tries * LONGEST_RUN_SECONDS)


def stop_time(context: Any, settings: Settings) -> float:
    """When a file run should stop taking records, on the ``time.monotonic()`` clock."""
    remaining = context.get_remaining_time_in_millis() / 1000 if context else float("inf")
    return time.monotonic() + max(remaining - settings.file_run_margin_seconds, 0.0)


def json_response(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def call_deadline(settings: Settings) -> float:
    """When a webhook call stops sending (``time.monotonic()``): WEBHOOK_SECONDS from now, so that its
    answer reaches API Gateway before it stops waiting (29 s)."""
    return time.monotonic() + settings.webhook_seconds


class BadQuery(ValueError):
    """A webhook call's query parameter that means nothing; the call is answered 400 with the message."""


def query_values(api: APIGatewayRestResolver, name: str) -> list[str]:
    """Every value the call gives ``?<name>``: a parameter may be repeated (``?ids=1&ids=2``), and
    API Gateway's single-value parameters keep only the last."""
    event = api.current_event
    single = (event.query_string_parameters or {}).get(name)
    return event.get_multi_value_query_string_values(name) or ([] if single is None else [single])


def query_flag(api: APIGatewayRestResolver, name: str) -> bool:
    """Whether the call asks ``?<name>=true`` (or 1, yes; a bare ``?<name>`` too). Any other value than
    true or false is refused, and so is the switch given both ways: ``merge=True`` taken for false would
    erase fields."""
    flags = set()
    for raw in query_values(api, name):
        try:
            flags.add(yes_or_no(raw) if raw.strip() else True)
        except ValueError:
            raise BadQuery(f"?{name}={raw}: write true or false") from None
    if len(flags) > 1:
        raise BadQuery(f"?{name} is given both true and false: give it once")
    return flags.pop() if flags else False


def query_taken(by_route: Mapping[str, Collection[str]]) -> Callable[[APIGatewayRestResolver, NextMiddleware], Response]:
    """A middleware answering 400 to a call whose query names a parameter its route does not take
    (``by_route``: the route, as ``app.request.route`` writes it, -> the names it takes): ``?marge=true``
    let pass would send an update without the merge asked for, and erase fields."""
    def check(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
        event = app.current_event
        taken = by_route.get(app.request.route, ())
        given = set(event.multi_value_query_string_parameters or {}) | set(event.query_string_parameters or {})
        unknown = sorted(given.difference(taken))
        if not unknown:
            return next_middleware(app)
        takes = f"it takes {', '.join(f'?{name}' for name in sorted(taken))}" if taken else "it takes none"
        named = "; ".join(f"?{name}{did_you_mean(name, taken)}" for name in unknown)
        return json_response(400, {"message": f"this call takes no such query parameter: {named}; {takes}"})
    return check


def too_many(records: list[Any], settings: Settings) -> Response | None:
    """413 for a webhook call with more records than WEBHOOK_MAX_RECORDS: its answer, a result for every
    record, could pass the 6 MB a Lambda function may answer, and API Gateway would give a bare 502."""
    if len(records) <= settings.webhook_max_records:
        return None
    return json_response(413, {"message": f"{len(records)} records in one call; send at most {settings.webhook_max_records}"
                                          " a call, or drop a file"})


def idempotency(settings: Settings) -> tuple[DynamoDBPersistenceLayer, IdempotencyConfig]:
    """The store and config that make one object version one delivery, keyed by the ``id`` field."""
    settings.require("idempotency_table")
    return (DynamoDBPersistenceLayer(table_name=settings.idempotency_table or ""),
            IdempotencyConfig(event_key_jmespath="id", expires_after_seconds=settings.idempotency_expiry_days * 86400))


def pinned(dropped: DroppedFile, logger: Logger) -> dict[str, Any] | None:
    """The file's version, from the notification or, where S3 did not name it, the current one, and the
    charset its Content-Type names (``charset_of``). None, logged, when that version is gone (deleted,
    or expired before its turn came): no retry can bring it back, so its message is not sent back to
    the queue to end in the dead-letter queue. None, logged, for a file whose name says it holds no
    records (``no_data_by_name``): it gets no report, so that a Spark job's _SUCCESS fails no alarm."""
    if why := no_data_by_name(dropped.key):
        logger.info("file left alone", extra={"file": {"key": dropped.key, "version_id": dropped.version_id, "why": why}})
        return None
    try:
        head = s3().head_object(Bucket=dropped.bucket, Key=dropped.key,
                                **({"VersionId": dropped.version_id} if dropped.version_id else {}))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NoSuchVersion"):
            raise
        logger.warning("file gone", extra={"file": {"key": dropped.key, "version_id": dropped.version_id,
                                                    "why": "deleted or expired before it was read; nothing was sent"}})
        return None
    version = dropped.version_id or head.get("VersionId")
    upload = version
    if version in (None, "null"):  # versioning off or suspended: every upload of a key is version null,
        etag = str(head.get("ETag", "")).strip('"')  # so the upload is told by its content and time, and a
        upload = f"{etag}-{head['LastModified'].isoformat()}"  # file written again under its key is delivered again
        version = None  # and no earlier run's report is this upload's to go on from
    part = f"#from-{dropped.resume_from}" if dropped.resume_from else ""  # each continuation is a run of its own
    return {"id": f"{dropped.bucket}/{dropped.key}@{upload}{part}", "bucket": dropped.bucket, "key": dropped.key,
            "version_id": version, "upload": upload, "head": head, "charset": charset_of(head.get("ContentType")),
            "metadata": {name.lower(): value for name, value in head.get("Metadata", {}).items()},  # a file's options
            "resume_from": dropped.resume_from}


def charset_of(content_type: str | None) -> str | None:
    """The charset a Content-Type names (``text/csv; charset=windows-1252``), if any: how a CSV
    that is not UTF-8 says what it is, as ``aws s3 cp --content-type`` sets it."""
    if not content_type:
        return None
    header = EmailMessage()
    header["Content-Type"] = content_type
    charset = header.get_param("charset")
    return (charset.strip() or None) if isinstance(charset, str) else None


# Why a valid record of a webhook call made with ?dry_run=true was not sent.
CHECKED_NOT_SENT = "valid; not sent: dry_run=true only checks"

ERRORS_LOGGED = 5  # of a file that did not complete: the report holds the rest


def log_file_run(logger: Logger, report: dict[str, Any], fields: tuple[str, ...]) -> None:
    """A file run's last line, with the report's ``fields``: INFO when the file is complete, WARNING when
    partial or when every record was set aside (a wrong date format, say), ERROR when it failed, with
    its first errors or reasons and where its report is. A log filter on the level then finds every
    file that needs a look; one on ``report.left_out`` every file whose columns were dropped unsent."""
    status, summary = report["status"], {name: report[name] for name in ("status", *fields)}
    summary |= {name: report[name] for name in ("read_as", "left_out", "checked") if name in report}
    if status == "complete" and report.get("dry_run"):
        logger.info("file checked, nothing sent", extra={"report": summary})
        return
    if status == "complete" and (report["sent"] or not report["rejected"]):
        logger.info("file delivered", extra={"report": summary})
        return
    summary["report"] = report_key(report["key"])
    if status == "complete":
        summary["reasons"] = dict(list(report["rejected_reasons"].items())[:ERRORS_LOGGED])
        logger.warning("file delivered, every record set aside", extra={"report": summary})
        return
    summary["errors"] = report["errors"][:ERRORS_LOGGED]
    if status == "partial":
        logger.warning("file partly delivered", extra={"report": summary})
    else:
        logger.error("file failed", extra={"report": summary})


def log_sessions_run(logger: Logger, metrics: Metrics, answer: dict[str, Any]) -> None:
    """A Session Stream file's last line: INFO with its counts when interpreted; ERROR with the error and
    its report's key when it failed, counted in ``FilesNotComplete`` as a delivered file is."""
    if "error" in answer:
        logger.error("sessions file failed", extra={"summary": {"error": answer["error"],
                                                                "report": report_key(answer["file"])}})
    else:
        logger.info("sessions interpreted", extra={"summary": {k: answer.get(k) for k in ("sessions", "rejected", "refresh")}})
    metrics.add_metric(name="FilesNotComplete", unit=MetricUnit.Count, value=int("error" in answer))


def report_metrics(metrics: Metrics, report: dict[str, Any], names: dict[str, str]) -> None:
    """One count metric per report field (``names`` maps metric name to field), and ``FilesNotComplete``:
    1 for a file that ended failed or partial, which the template's alarms watch."""
    for name, field in names.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=report[field])
    metrics.add_metric(name="FilesNotComplete", unit=MetricUnit.Count, value=int(report["status"] != "complete"))


def call_summary(event: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """What a webhook call's log line says: the call, its status and the answer's counts and message
    (its top-level numbers and text; not the per-record lists, nor anything the call sent)."""
    try:
        body = json.loads(answer.get("body") or "{}")
    except ValueError:
        body = None
    headers = answer.get("headers") or {}
    return {"method": event.get("httpMethod"), "path": event.get("path"), "status": answer.get("statusCode"),
            "replayed": headers.get(REPLAYED) == "true",
            "answer": {k: v for k, v in body.items() if isinstance(v, (int, float, str))} if isinstance(body, dict) else {}}


def dispatch(event: dict[str, Any], context: Any, logger: Logger, api: APIGatewayRestResolver,
             record_handler: Callable[[Any], None], processor: BatchProcessor, config: IdempotencyConfig,
             on_schedule: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
             replays: RepeatedCalls | None = None, max_body_bytes: int | None = None,
             retry_after_seconds: int | None = None, queue_url: str | None = None,
             metrics: Metrics | None = None) -> dict[str, Any]:
    """API Gateway events go to the resolver (through ``replays``: a call made again with its
    Idempotency-Key gets the first answer; a body over ``max_body_bytes`` is answered 413),
    EventBridge schedules to ``on_schedule``, SQS batches to the record handler with partial failures,
    a failed message of ``queue_url`` coming back after ``retry_after_seconds``, doubled at each try
    (``_backing_off``), counted in ``metrics`` as ``FileRetries``."""
    config.register_lambda_context(context)
    if "httpMethod" in event:
        logger.set_correlation_id(event.get("requestContext", {}).get("requestId"))
        answer = (_too_large(event, max_body_bytes) or
                  (replays.resolve(api, event, context) if replays else api.resolve(event, context)))
        summary = call_summary(event, answer)  # a 5xx at WARNING: the vendor or the bundle failed the caller
        (logger.warning if int(summary["status"] or 0) >= 500 else logger.info)("call answered", extra={"call": summary})
        return answer
    if event.get("detail-type") == "Scheduled Event" and on_schedule is not None:
        logger.set_correlation_id(event.get("id"))
        return on_schedule(event)
    handler = _backing_off(record_handler, queue_url, retry_after_seconds, logger, metrics) if queue_url else record_handler
    return process_partial_response(event=event, record_handler=handler, processor=processor, context=context)


MOST_SQS_HOLDS = 43_200  # seconds a message can be kept from view
MOST_SQS_DELAYS = 900  # seconds a message sent can be kept from view
LONGEST_RUN_SECONDS = 900  # Lambda's limit, and the functions' timeout


def backoff(tries: int, retry_after_seconds: int) -> int:
    """Seconds a message that failed at its ``tries``-th receive is kept from view."""
    return min(retry_after_seconds * 2 ** (tries - 1), MOST_SQS_HOLDS)


def _tries(record: SQSRecord) -> int:
    """Which receive of its message this is: 1 the first time."""
    return int(record.attributes.approximate_receive_count or 1)


def retry_note(record: SQSRecord, settings: Settings) -> str:
    """What a file's report says when this receive of its message fails for a transient reason:
    which try it was, and when the next comes, or that the dead-letter queue does."""
    tries = _tries(record)
    if tries >= settings.file_tries:
        return f"try {tries} of {settings.file_tries}; next, the dead-letter queue: redrive it once the cause is mended"
    return f"try {tries} of {settings.file_tries}; the next in {backoff(tries, settings.retry_after_seconds) // 60} minutes"


def _backing_off(record_handler: Callable[..., None], queue_url: str, retry_after_seconds: int | None,
                 logger: Logger, metrics: Metrics | None = None) -> Callable[..., None]:
    """The record handler, and when it fails, the message kept from view ``retry_after_seconds`` doubled at
    each receive before this one, rather than the queue's whole visibility timeout (six times the function's
    timeout, 90 minutes): a file that met a vendor's passing trouble goes on within minutes, while one that
    keeps failing still reaches the dead-letter queue after hours, not minutes. Each such failure counts
    one ``FileRetries``: a vendor's trouble shows on the dashboard hours before the dead-letter queue does
    (Powertools publishes the metrics of an invocation that fails as well)."""
    if not retry_after_seconds:
        return record_handler

    def handle(record: SQSRecord, lambda_context: Any = None) -> None:
        try:
            record_handler(record, lambda_context)
        except Exception as exc:
            tries = _tries(record)
            delay = backoff(tries, retry_after_seconds)
            logger.warning("file back to its queue", extra={"retry": {"try": tries, "back_in_seconds": delay,
                                                                     "because": str(exc)}})
            if metrics is not None:
                metrics.add_metric(name="FileRetries", unit=MetricUnit.Count, value=1)
            try:
                sqs().change_message_visibility(QueueUrl=queue_url, ReceiptHandle=record.receipt_handle,
                                                VisibilityTimeout=delay)
            except ClientError:  # the queue's own visibility timeout holds it then; the run's failure is what counts
                pass
            raise

    return handle


def _too_large(event: dict[str, Any], max_body_bytes: int | None) -> dict[str, Any] | None:
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if max_body_bytes is None or size <= max_body_bytes:
        return None
    return {"statusCode": 413, "headers": {"Content-Type": "application/json"}, "isBase64Encoded": False,
            "body": json.dumps({"message": f"the body is over {max_body_bytes} bytes; drop a file instead"})}
