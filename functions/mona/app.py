"""Mona export function.

Triggers: files dropped at ``mona/<arcClass>/<file>`` (S3 -> SQS); ``POST /mona/export`` with
exactly the body Mona's ``/export`` takes; ``POST /mona/{arcClass}/messages`` with a list of
plain records (API Gateway).
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.streaming import S3Object
from aws_lambda_powertools.utilities.typing import LambdaContext

from martech import mona_delivery as delivery
from martech.strict_json import BadJson, body_of, loads as strict_loads
from martech.mona import ACTIONS, MonaAuthError, MonaClient, MonaUnavailable
from martech.mona_messages import MessageBuilder, check_arc_class, check_export_message, times_in_zone
from martech.handlers import (CHECKED_NOT_SENT, BadQuery, call_deadline, deliver_dropped, dispatch, idempotency,
                              json_response, query_flag, query_taken, s3, too_many)
from martech.s3_events import dropped_files
from martech.repeated_calls import RepeatedCalls
from martech.settings import Settings

settings = Settings.from_env()
settings.require("inbox_bucket", "idempotency_table", "file_queue_url", "mona_export_url", "mona_secret_name")
logger = Logger(service="mona")
metrics = Metrics(namespace="MarketingBundle", service="mona")
tracer = Tracer(service="mona")
api = APIGatewayRestResolver(json_body_deserializer=strict_loads)  # NaN is not sent on as null
api.use([query_taken({"/mona/export": ["dry_run"], "/mona/{arc_class}/messages": ["dry_run"]})])
processor = BatchProcessor(event_type=EventType.SQS)
persistence, once_per_version = idempotency(settings)
replays = RepeatedCalls(settings)


@cache
def mona() -> MonaClient:
    return MonaClient(settings)



# -- files -------------------------------------------------------------------------------------
@idempotent_function(data_keyword_argument="dropped", persistence_store=persistence, config=once_per_version)
def deliver_once(dropped: dict[str, Any]) -> dict[str, Any]:
    bucket, key, version = dropped["bucket"], dropped["key"], dropped["version_id"]
    report = delivery.deliver_file(s3(), S3Object(bucket, key, version, boto3_client=s3()), bucket, key, version,
                                   dropped["written_at"], mona(), settings, dropped["resume_from"], dropped["stop_at"],
                                   dropped["retry_note"], dropped["charset"], dropped["metadata"])
    return report.as_dict()


@tracer.capture_method
def handle_message(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    for dropped in dropped_files(record.body):
        deliver_dropped(dropped, record, lambda_context, deliver_once, settings, logger, metrics,
                        ("read", "sent", "rejected", "unknown", "seconds"),
                        {"MessagesRead": "read", "MessagesSent": "sent", "MessagesRejected": "rejected",
                         "MessagesFailed": "failed", "Batches": "batches"},
                        lambda head: {"written_at": head["LastModified"].timestamp()})


# -- webhooks ----------------------------------------------------------------------------------
def send(messages: list[dict[str, Any]], deadline: float, read_as: dict[str, str] | None = None) -> Response:
    """Export validated messages; the answer says, per message index, what Mona refused and, when Mona
    kept failing or the call's time ran out part way, what was not sent; and ``read_as``, the fields
    taken written otherwise, if any. With ``?dry_run=true`` none is sent: every message was valid, and
    the answer says so."""
    names = {"read_as": read_as} if read_as else {}
    if query_flag(api, "dry_run"):
        valid = [CHECKED_NOT_SENT]
        return json_response(200, {"total": len(messages), "sent": 0, "failed": 0, "unknown": 0, "failure_reasons": {},
                                   "not_sent": len(messages),
                                   "not_sent_reasons": {str(index): valid for index in range(len(messages))}, **names})
    try:
        outcomes, not_sent, failure = delivery.export_in_time(list(enumerate(messages)), mona(), settings, deadline)
    except MonaAuthError as exc:  # logging in, before any message was tried
        return json_response(502, {"message": str(exc)})
    except MonaUnavailable as exc:
        return json_response(503, {"message": f"{exc}; retry later"})
    failed = {str(index): reasons for o in outcomes for index, reasons, _ in o.refused}
    unknown = sum(o.unknown for o in outcomes)
    sent = sum(o.sent for o in outcomes)
    metrics.add_metric(name="MessagesSent", unit=MetricUnit.Count, value=sent)
    answer = {"total": len(messages), "sent": sent, "failed": len(failed), "unknown": unknown, "failure_reasons": failed,
              **names}
    if failure is None:
        return json_response(200, answer)
    answer |= {"not_sent": len(not_sent), "not_sent_reasons": {str(index): [why] for index, why in sorted(not_sent.items())}}
    if isinstance(failure, MonaAuthError):
        return json_response(502, {"message": f"{failure}; the messages in not_sent_reasons were not sent", **answer})
    return json_response(503, {"message": f"not every message was sent ({failure}); send the messages in"
                                          " not_sent_reasons again later", **answer})


@api.exception_handler(BadQuery)
def on_bad_query(exc: BadQuery) -> Response:
    return json_response(400, {"message": str(exc)})


def invalid(reasons: dict[str, list[str]]) -> Response:
    return json_response(400, {"message": "nothing was sent: some messages are invalid", "failure_reasons": reasons})


@api.post("/mona/export")
def export() -> Response:
    deadline = call_deadline(settings)
    try:
        body = body_of(api.current_event)
    except BadJson as exc:
        return json_response(400, {"topLevelError": str(exc)})
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return json_response(400, {"topLevelError": 'the body must be {"userId"?, "messages": [...], "defaultAction"?}'})
    if not body["messages"]:
        return json_response(400, {"topLevelError": "messages is empty: Mona takes one message at least"})
    if refused := too_many(body["messages"], settings):
        return refused
    default_action = body.get("defaultAction")
    if default_action is not None and default_action not in ACTIONS:
        return json_response(400, {"topLevelError": f"defaultAction must be one of {', '.join(ACTIONS)}"})
    mona().tokens.token()  # the user id is known once logged in
    if body.get("userId") not in (None, "") and str(body["userId"]) != mona().tokens.user_id:
        return json_response(400, {"topLevelError": "userId does not match this bundle's Mona credentials"})
    reasons = {str(i): r for i, m in enumerate(body["messages"]) if (r := check_export_message(m))}
    if reasons:
        return invalid(reasons)
    messages = [{k: v for k, v in m.items() if v is not None} for m in body["messages"]]
    for m in messages:
        times_in_zone(m, settings.time_zone)
        if default_action:
            m.setdefault("action", default_action)
    return send(messages, deadline)


@api.post("/mona/<arc_class>/messages")
def messages(arc_class: str) -> Response:
    deadline = call_deadline(settings)
    try:
        check_arc_class(arc_class)
        records = body_of(api.current_event)
    except ValueError as exc:  # the context class, or BadJson
        return json_response(400, {"message": str(exc)})
    if isinstance(records, dict):
        records = records.get("messages")
    if not isinstance(records, list) or not records:
        return json_response(400, {"message": "the body must be a non-empty list of records"})
    if refused := too_many(records, settings):
        return refused
    builder, now = MessageBuilder(settings), time.time()
    built, reasons = [], {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            reasons[str(i)] = ["a record must be a JSON object"]
            continue
        message, why = builder.build(record, arc_class, now)
        if why:
            reasons[str(i)] = why
        else:
            built.append(message)
    return invalid(reasons) if reasons else send(built, deadline, builder.read_as)


# -- entry point -------------------------------------------------------------------------------
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dispatch(event, context, logger, api, handle_message, processor, once_per_version, replays=replays,
                    max_body_bytes=settings.webhook_max_bytes, retry_after_seconds=settings.retry_after_seconds,
                    queue_url=settings.file_queue_url, metrics=metrics)
