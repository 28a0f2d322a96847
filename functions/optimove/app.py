"""Optimove data ops function.

Triggers: files dropped at ``optimove/<connection>/upsert|update|delete/<file>`` (S3 -> SQS),
and webhooks under ``/optimove/`` (API Gateway) for connections and their data.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.streaming import S3Object
from aws_lambda_powertools.utilities.typing import LambdaContext

from martech.strict_json import BadJson, body_of, loads as strict_loads
from martech import optimove_delivery as delivery
from martech.optimove import OptimoveClient, OptimoveError, OptimoveUnavailable, UnknownConnection
from martech.optimove_webhooks import (WebhookError, check_connection_body, check_delete_keys, check_update_items,
                                      in_requests)
from martech.handlers import (BadQuery, call_deadline, deliver_dropped, dispatch, idempotency, json_response, query_flag,
                              query_taken, s3)
from martech.s3_events import dropped_files
from martech.repeated_calls import RepeatedCalls
from martech.settings import Settings

settings = Settings.from_env()
settings.require("inbox_bucket", "idempotency_table", "file_queue_url", "optimove_base_url", "optimove_secret_name")
logger = Logger(service="optimove")
metrics = Metrics(namespace="MarketingBundle", service="optimove")
tracer = Tracer(service="optimove")
api = APIGatewayRestResolver(json_body_deserializer=strict_loads)  # NaN is not sent on as null
api.use([query_taken({"/optimove/connections/{connection}/data": ["merge", "dry_run"],
                       "/optimove/connections/{connection}/delete": ["dry_run"]})])
processor = BatchProcessor(event_type=EventType.SQS)
persistence, once_per_version = idempotency(settings)
replays = RepeatedCalls(settings)


@cache
def optimove() -> OptimoveClient:
    return OptimoveClient(settings)



# -- files -------------------------------------------------------------------------------------
@idempotent_function(data_keyword_argument="dropped", persistence_store=persistence, config=once_per_version)
def deliver_once(dropped: dict[str, Any]) -> dict[str, Any]:
    bucket, key, version = dropped["bucket"], dropped["key"], dropped["version_id"]
    report = delivery.deliver_file(s3(), lambda: S3Object(bucket, key, version, boto3_client=s3()), bucket, key, version,
                                   optimove(), settings, dropped["metadata"], dropped["resume_from"], dropped["stop_at"],
                                   dropped["retry_note"], dropped["charset"], dropped["upload"])
    return report.as_dict()


@tracer.capture_method
def handle_message(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    for dropped in dropped_files(record.body):
        deliver_dropped(dropped, record, lambda_context, deliver_once, settings, logger, metrics,
                        ("read", "sent", "rejected", "duplicates", "reads", "seconds"),
                        {"RecordsRead": "read", "RecordsSent": "sent", "RecordsRejected": "rejected",
                         "RecordsFailed": "failed", "Batches": "batches"})


# -- webhooks ----------------------------------------------------------------------------------
def body() -> Any:
    try:
        return body_of(api.current_event)
    except BadJson as exc:
        raise WebhookError(400, str(exc)) from None


@api.exception_handler(WebhookError)
def on_webhook_error(exc: WebhookError) -> Response:
    return json_response(exc.status, {"message": exc.message})


@api.exception_handler(BadQuery)
def on_bad_query(exc: BadQuery) -> Response:
    return json_response(400, {"message": str(exc)})


@api.exception_handler(UnknownConnection)
def on_unknown_connection(exc: UnknownConnection) -> Response:
    return json_response(404, {"message": str(exc.detail)})


@api.exception_handler(OptimoveError)
def on_vendor_refusal(exc: OptimoveError) -> Response:
    # The vendor's own 4xx, passed on with its reason; or the secret, before any request.
    if not exc.status:
        return json_response(502, {"message": f"{exc}; nothing was sent"})
    return json_response(exc.status if 400 <= exc.status < 500 else 502, {"message": "Optimove refused the request",
                                                                          "detail": exc.detail})


@api.exception_handler(OptimoveUnavailable)
def on_vendor_unavailable(exc: OptimoveUnavailable) -> Response:
    return json_response(503, {"message": f"{exc}; retry later"})


@api.post("/optimove/connections")
def create_connection() -> Response:
    answer = optimove().call("POST", "/connections", check_connection_body(body()))
    optimove().forget_connections()
    return json_response(201, answer)


@api.get("/optimove/connections")
def list_connections() -> Response:
    return json_response(200, {"connections": optimove().connections(fresh=True)})


@api.get("/optimove/connections/<connection>")
def get_connection(connection: str) -> Response:
    return json_response(200, optimove().resolve(connection))


@api.put("/optimove/connections/<connection>")
def update_connection(connection: str) -> Response:
    conn = optimove().resolve(connection)
    change = body()
    if not isinstance(change, dict):
        raise WebhookError(400, "the body must be an object with name and/or description")
    if "primary_key" in change and change["primary_key"] != conn["primary_key"]:
        raise WebhookError(400, "the primary key of a data connection cannot be changed")
    allowed = {k: v for k, v in change.items() if k in ("name", "description")}
    answer = optimove().call("PUT", f"/connections/{conn['data_connection_uuid']}", allowed)
    optimove().forget_connections()
    return json_response(200, answer)


@api.delete("/optimove/connections/<connection>")
def delete_connection(connection: str) -> Response:
    conn = optimove().resolve(connection)
    answer = optimove().call("DELETE", f"/connections/{conn['data_connection_uuid']}")
    optimove().forget_connections()
    return json_response(200, answer)


def checked_only(count: int) -> Response:
    """The answer to ``?dry_run=true``: the call's records were checked as they would be sent, none was."""
    return json_response(200, {"status": "checked", "checked": count, "message": "dry_run=true: checked, nothing sent"})


@api.put("/optimove/connections/<connection>/data")
def update_data(connection: str) -> Response:
    deadline = call_deadline(settings)
    conn = optimove().resolve(connection)
    items = check_update_items(body(), conn.get("primary_key"))
    merge = query_flag(api, "merge")
    if query_flag(api, "dry_run"):
        return checked_only(len(items))
    uuid_ = conn["data_connection_uuid"]
    reads = 0
    if merge:  # a read per record: a call that cannot read them all in time sends nothing, and says so
        for item in items:
            if time.monotonic() >= deadline:
                raise WebhookError(503, f"the call's time ran out after reading {reads} of {len(items)} records to"
                                        " merge; nothing was sent: send fewer records a call, or drop a file")
            item["data"] = delivery.merged(optimove().query(uuid_, item["primary_key"]), item["data"])
            reads += 1
    answer = in_requests(lambda part: optimove().update(uuid_, part), items, "updated_records",
                         settings.optimove_batch_size, deadline)
    return json_response(200, {**answer, "reads": reads})


@api.post("/optimove/connections/<connection>/delete")
def delete_data(connection: str) -> Response:
    deadline = call_deadline(settings)
    conn = optimove().resolve(connection)
    keys = check_delete_keys(body())
    if query_flag(api, "dry_run"):
        return checked_only(len(keys))
    uuid_ = conn["data_connection_uuid"]
    return json_response(200, in_requests(lambda part: optimove().delete(uuid_, part), keys, "deleted_records",
                                          settings.optimove_batch_size, deadline))


@api.post("/optimove/connections/<connection>/query")
def query(connection: str) -> Response:
    conn = optimove().resolve(connection)
    return json_response(200, optimove().call("POST", f"/connections/{conn['data_connection_uuid']}/query", body()))


@api.post("/optimove/connections/<connection>/batch_query")
def batch_query(connection: str) -> Response:
    conn = optimove().resolve(connection)
    path = f"/connections/{conn['data_connection_uuid']}/api_batch_query"
    return json_response(200, optimove().call("POST", path, body()))


@api.get("/optimove/connections/<connection>/schema")
def schema(connection: str) -> Response:
    conn = optimove().resolve(connection)
    return json_response(200, optimove().call("GET", f"/connections/{conn['data_connection_uuid']}/schema"))


# -- entry point -------------------------------------------------------------------------------
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dispatch(event, context, logger, api, handle_message, processor, once_per_version, replays=replays,
                    max_body_bytes=settings.webhook_max_bytes, retry_after_seconds=settings.retry_after_seconds,
                    queue_url=settings.file_queue_url, metrics=metrics)
