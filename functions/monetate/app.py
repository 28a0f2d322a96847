"""Monetate function: customer attributes in, metadata and Session Stream names out.

Triggers:
- files dropped at ``monetate/<schema>/<file>`` (S3 -> SQS): posted to the dataset;
- files dropped at ``monetate-sessions/<file>`` (S3 -> SQS): Session Stream interpreted;
- ``POST /monetate/{schema}/records`` with ``{"records": [...]}`` (API Gateway);
- an EventBridge schedule and ``POST /metadata/refresh``: metadata snapshots refreshed;
- ``GET /metadata/{kind}/{id}`` and ``GET /metadata/{kind}?ids=1,2``: lookups in the latest snapshot (the first
  lookup before any refresh takes it).
"""

from __future__ import annotations

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

from martech import monetate_delivery as delivery
from martech import session_stream
from martech.strict_json import BadJson, body_of, loads as strict_loads
from martech.metadata_refresh import RefreshResult, refresh
from martech.metadata_snapshots import SnapshotStore
from martech.monetate import MonetateClient, TransientFailure, UnknownSchema
from martech.monetate_metadata import KINDS, MetadataClient, RefreshFailed
from martech.monetate_auth import AuthUnavailable, MonetateAuthError
from martech.file_events import publish_file_event, sessions_detail
from martech.handlers import (CHECKED_NOT_SENT, BadQuery, call_deadline, deliver_dropped, dispatch, events, idempotency,
                              json_response, log_sessions_run, pinned, query_flag, query_taken, query_values, run_once, s3,
                              stop_time, too_many)
from martech.s3_events import DroppedFile, dropped_files
from martech.repeated_calls import RepeatedCalls
from martech.settings import Settings

settings = Settings.from_env()
settings.require("inbox_bucket", "idempotency_table", "file_queue_url", "monetate_data_url", "monetate_metadata_url",
                 "monetate_secret_name")
logger = Logger(service="monetate")
metrics = Metrics(namespace="MarketingBundle", service="monetate")
tracer = Tracer(service="monetate")
api = APIGatewayRestResolver(json_body_deserializer=strict_loads)  # NaN is not sent on as null
api.use([query_taken({"/monetate/{schema}/records": ["partial", "dry_run"], "/metadata/{kind}": ["ids"]})])
processor = BatchProcessor(event_type=EventType.SQS)
persistence, once_per_version = idempotency(settings)
replays = RepeatedCalls(settings)


@cache
def monetate() -> MonetateClient:
    return MonetateClient(settings)


@cache
def metadata() -> MetadataClient:
    return MetadataClient(settings, tokens=monetate().tokens)  # one token for both APIs


@cache
def snapshots() -> SnapshotStore:
    return SnapshotStore(s3(), settings.inbox_bucket or "", settings.metadata_cache_seconds)


# -- files -------------------------------------------------------------------------------------
@idempotent_function(data_keyword_argument="dropped", persistence_store=persistence, config=once_per_version)
def deliver_once(dropped: dict[str, Any]) -> dict[str, Any]:
    """Deliver one object version; a repeated event gets the stored report, not a second delivery."""
    stream = S3Object(dropped["bucket"], dropped["key"], dropped["version_id"], boto3_client=s3())
    report = delivery.deliver_file(s3(), stream, dropped["bucket"], dropped["key"], dropped["version_id"],
                                   monetate(), settings, dropped["resume_from"], dropped["stop_at"], dropped["retry_note"],
                                   dropped["charset"], dropped["metadata"])
    return report.as_dict()


@idempotent_function(data_keyword_argument="dropped", persistence_store=persistence, config=once_per_version)
def interpret_once(dropped: dict[str, Any]) -> dict[str, Any]:
    """Interpret one Session Stream object version; a repeated event gets the stored summary."""
    def open_stream() -> S3Object:
        return S3Object(dropped["bucket"], dropped["key"], dropped["version_id"], boto3_client=s3())

    return session_stream.interpret_dropped(s3(), open_stream, dropped["bucket"], dropped["key"], dropped["version_id"],
                                            snapshots(), settings.metadata_stale_seconds, refresh_metadata,
                                            dropped["stop_at"])


@tracer.capture_method
def handle_message(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    for dropped in dropped_files(record.body):
        if dropped.key.startswith(session_stream.PREFIX):
            interpret_dropped(dropped, record, lambda_context)
            continue
        deliver_dropped(dropped, record, lambda_context, deliver_once, settings, logger, metrics,
                        ("read", "sent", "rejected", "failed", "unknown", "seconds"),
                        {"RecordsRead": "read", "RecordsSent": "sent", "RecordsRejected": "rejected",
                         "RecordsFailed": "failed", "Batches": "batches", "TokenRefreshes": "token_refreshes"})


def interpret_dropped(dropped: DroppedFile, record: SQSRecord, lambda_context: LambdaContext | None) -> None:
    """A Session Stream file: interpreted as it comes, with no report to wait on, once per version."""
    logger.set_correlation_id(dropped.key)
    file = pinned(dropped, logger)
    if file is None:
        return
    del file["head"]
    answer, repeated = run_once(lambda: interpret_once(dropped={**file, "stop_at": stop_time(lambda_context, settings)}),
                                record, settings, dropped, file["version_id"], logger)  # keyed by "id"
    if repeated:  # the stored answer, counted when its run ended
        logger.info("sessions file already interpreted, event repeated", extra={"summary": answer})
        return
    log_sessions_run(logger, metrics, answer)
    publish_file_event(events(), settings.file_event_bus, sessions_detail(file["bucket"], file["version_id"], answer), logger)


# -- webhook -----------------------------------------------------------------------------------
@api.post("/monetate/<schema>/records")
@tracer.capture_method
def post_records(schema: str) -> Response:
    deadline = call_deadline(settings)
    event = api.current_event
    try:
        body = body_of(event)
    except BadJson as exc:
        return json_response(400, {"message": str(exc)})
    records = records_of(body)
    if records is None:
        return json_response(400, {"message": 'the body must be {"records": [ {...}, ... ]}, or as Monetate\'s Data API'
                                              ' takes rows, {"schema_rows": [...]}'})
    if refused := too_many(records, settings):
        return refused
    try:
        partial, dry_run = query_flag(api, "partial"), query_flag(api, "dry_run")
        results, sent, failure, names = deliver_webhook(schema, records, partial, deadline, dry_run)
    except BadQuery as exc:
        return json_response(400, {"message": str(exc)})
    except UnknownSchema as exc:
        return json_response(404, {"message": str(exc)})
    except MonetateAuthError as exc:  # KeyRevoked included: no retry can help
        return json_response(502, {"message": f"{exc}; nothing was sent"})
    except (TransientFailure, AuthUnavailable) as exc:
        return json_response(503, {"message": f"Monetate is unavailable ({exc}); retry later"})
    counts = {s: sum(1 for r in results if r["status"] == s) for s in ("accepted", "rejected", "unknown", "not_sent")}
    metrics.add_metric(name="RecordsSent", unit=MetricUnit.Count, value=counts["accepted"])
    metrics.add_metric(name="RecordsRejected", unit=MetricUnit.Count, value=counts["rejected"])
    if failure is None:
        ok = sent or (dry_run and counts["rejected"] == 0)
        return json_response(200 if ok else 400, {**counts, **names, "results": results})
    # Batches before the failure were sent: the answer says which records were not, to send again.
    if isinstance(failure, MonetateAuthError):
        return json_response(502, {"message": f"{failure}; the records marked not_sent were not sent", **counts,
                                   **names, "results": results})
    return json_response(503, {"message": f"not every record was sent ({failure}); send the records marked not_sent"
                                          " again later", **counts, **names, "results": results})


def records_of(body: Any) -> list[Any] | None:
    """The records a call's body holds: ``{"records": [...]}``, Monetate's own ``{"schema_rows": [...],
    "_sent_time"?}`` (a call meant for its Data API pointed here) or the list alone; None for anything else."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        found = body["records"] if "records" in body else body.get("schema_rows")
        return found if isinstance(found, list) else None
    return None


def deliver_webhook(schema_name: str, records: list[Any], partial: bool, deadline: float, dry_run: bool = False
                    ) -> tuple[list[dict[str, Any]], bool, Exception | None, dict[str, dict[str, str]]]:
    """Per-record results, whether anything was to be sent, why records that were to be sent were
    not (``delivery.deliver_records``), if any were not, and the names read otherwise or left out.

    Every record is validated first; unless ``partial``, one invalid record means nothing is sent.
    With ``dry_run`` nothing is sent: the results say what would be (a new feed checked against the
    dataset's schema before it writes to it).
    """
    schema = monetate().schema(schema_name)
    names = {name for record in records if isinstance(record, dict) for name in record}
    schema = delivery.current_schema(monetate(), schema, names, settings.unknown_columns)
    results, ready, names = delivery.validate_records(records, schema, settings)
    if dry_run:
        checked = [{"index": r["index"], "status": "not_sent", "reasons": [CHECKED_NOT_SENT]}
                   if r["status"] == "accepted" else r for r in results]
        return checked, False, None, names
    if len(ready) < len(records) and not partial:
        held = [{"index": r["index"], "status": "not_sent", "reasons": ["valid, but not sent: other records are invalid"]}
                if r["status"] == "accepted" else r for r in results]
        return held, False, None, names
    return results, True, delivery.deliver_records(results, ready, schema, monetate(), settings, deadline), names


# -- metadata ----------------------------------------------------------------------------------
@tracer.capture_method
def refresh_metadata() -> RefreshResult:
    result = refresh(metadata(), snapshots(), events(), settings.metadata_event_bus)
    logger.info("metadata refreshed", extra={"refresh": result.as_dict()})
    metrics.add_metric(name="MetadataKindsChanged", unit=MetricUnit.Count, value=len(result.changed))
    return result


def on_schedule(event: dict[str, Any]) -> dict[str, Any]:
    return refresh_metadata().as_dict()  # a failure raises: the schedule's invocation shows as failed


@api.post("/metadata/refresh")
def post_refresh() -> Response:
    try:
        return json_response(200, refresh_metadata().as_dict())
    except (RefreshFailed, MonetateAuthError, AuthUnavailable) as exc:
        return json_response(502, {"message": f"{exc}; the last snapshots are untouched"})


@api.get("/metadata/<kind>/<item_id>")
def get_item(kind: str, item_id: str) -> Response:
    found = _lookup(kind, [item_id])
    if isinstance(found, Response):
        return found
    if found["unknown"]:
        return json_response(404, {"message": f"{kind} {item_id} is not in the snapshot", **_when(found)})
    return json_response(200, {"kind": kind, "item": found["items"][item_id], **_when(found)})


@api.get("/metadata/<kind>")
def get_items(kind: str) -> Response:
    ids = [part.strip() for value in query_values(api, "ids") for part in value.split(",") if part.strip()]
    if not ids:
        return json_response(400, {"message": "name the items: ?ids=1,2,3"})
    found = _lookup(kind, ids)
    return found if isinstance(found, Response) else json_response(200, {"kind": kind, **found})


def _lookup(kind: str, ids: list[str]) -> dict[str, Any] | Response:
    """Items of the latest snapshot by id, without calling Monetate; a Response for a bad request."""
    if kind not in KINDS:
        return json_response(404, {"message": f"unknown metadata kind {kind!r}; use one of {', '.join(KINDS)}"})
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses, and Arabic-Indic digits.
    bad = [i for i in ids if not (i.isascii() and i.isdigit() and len(i) <= 20)]
    if bad:
        shown = ", ".join(i if len(i) <= 40 else f"{i[:40]}…" for i in bad[:10])
        return json_response(400, {"message": f"ids are whole numbers (0-9, at most 20 digits); not {shown}"})
    snapshot = snapshots().latest(kind)
    if snapshot is None and snapshots().last_refresh() is None:
        # Never refreshed (the schedule first fires a period after the deploy): this lookup takes the first snapshot.
        try:
            refresh_metadata()
        except (RefreshFailed, MonetateAuthError, AuthUnavailable) as exc:
            return json_response(502, {"message": f"no snapshot of {kind} yet, and taking the first failed: {exc}"})
        snapshot = snapshots().latest(kind)
    if snapshot is None:
        return json_response(404, {"message": f"no snapshot of {kind} yet; POST /metadata/refresh takes one"})
    last = snapshots().last_refresh() or {}
    return {"items": {i: snapshot.items[int(i)] for i in ids if int(i) in snapshot.items},
            "unknown": [i for i in ids if int(i) not in snapshot.items],
            "snapshot_taken_at": snapshot.taken_at, "last_refresh": last.get("refreshed_at")}


def _when(found: dict[str, Any]) -> dict[str, Any]:
    return {"snapshot_taken_at": found["snapshot_taken_at"], "last_refresh": found["last_refresh"]}


# -- entry point -------------------------------------------------------------------------------
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dispatch(event, context, logger, api, handle_message, processor, once_per_version, on_schedule,
                    replays, max_body_bytes=settings.webhook_max_bytes, retry_after_seconds=settings.retry_after_seconds,
                    queue_url=settings.file_queue_url, metrics=metrics)
