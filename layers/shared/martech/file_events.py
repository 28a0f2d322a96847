"""An EventBridge event when a dropped file is done with, for whatever should follow it: the next step
of a pipeline once the rows are in, a message to someone when a file failed.

One event per file version, when its last run ends (not when a run hands the rest of a big file on,
nor for a repeated notification)::

    source       martech.files
    detail-type  File run finished
    detail       {"bucket", "key", "version_id", "destination", "status", "read", "sent", "rejected",
                  "failed", "unknown", "runs", "started_at", "finished_at", "report", "rejected_rows",
                  "errors", "dry_run"}

``status`` is the report's: ``complete``, ``partial`` or ``failed``; or ``dead_letter`` when the file's
last try failed too and its message goes to the dead-letter queue (the counts are how far it got: a
redrive goes on from there, and ends in an event of its own). A Session Stream file's detail
has ``destination`` ``monetate-sessions``, ``sessions``, ``rejected``, ``interpreted`` and
``summary`` (the keys of what it wrote) instead of the delivery counts.

Example rule pattern, the files that need a look::

    {"source": ["martech.files"], "detail": {"status": ["failed", "partial", "dead_letter"]}}
"""

from __future__ import annotations

from typing import Any

import orjson
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from martech.reports import report_key

EVENT_SOURCE = "martech.files"
DETAIL_TYPE = "File run finished"
ERRORS_SENT = 5  # the report holds the rest
_COUNTS = ("read", "sent", "rejected", "failed", "unknown", "runs")


def delivered_detail(report: dict[str, Any]) -> dict[str, Any]:
    """What the event says of a delivered file: its report's status, counts and first errors, and where
    its report and rejected rows are."""
    return {"bucket": report["bucket"], "key": report["key"], "version_id": report["version_id"],
            "destination": report["destination"], "status": report["status"],
            **{name: report[name] for name in _COUNTS},
            "started_at": report["started_at"], "finished_at": report["finished_at"],
            "report": report_key(report["key"]), "rejected_rows": report["rejected_rows"],
            "errors": report["errors"][:ERRORS_SENT], "dry_run": bool(report.get("dry_run"))}


def dead_letter_detail(last_report: dict[str, Any] | None, bucket: str, key: str, version_id: str | None,
                       reason: Exception) -> dict[str, Any]:
    """What the event says of a file whose every try failed: its last report (``last_report``, this version's)
    with status ``dead_letter``, or, when no run wrote one (the file could not even be looked at), the reason."""
    if last_report is not None:
        return {**delivered_detail(last_report), "status": "dead_letter"}
    return {"bucket": bucket, "key": key, "version_id": version_id, "destination": key.split("/", 1)[0],
            "status": "dead_letter", "report": None, "errors": [str(reason)]}


def sessions_detail(bucket: str, version_id: str | None, answer: dict[str, Any]) -> dict[str, Any]:
    """What the event says of an interpreted Session Stream file (``session_stream.interpret_dropped``'s answer)."""
    failed = "error" in answer
    return {"bucket": bucket, "key": answer["file"], "version_id": version_id, "destination": "monetate-sessions",
            "status": "failed" if failed else "complete", "sessions": answer.get("sessions", 0),
            "rejected": answer.get("rejected", 0), "interpreted": answer.get("interpreted"),
            "summary": answer.get("summary"), "finished_at": answer.get("finished_at"),
            "report": report_key(answer["file"]), "errors": [answer["error"]] if failed else []}


def publish_file_event(events: Any, event_bus: str, detail: dict[str, Any], logger: Logger) -> None:
    """Put the event on ``event_bus``. The file is delivered whatever happens here: a failure is logged
    (``file event not published``), not raised, since a retry would find the file done and publish nothing."""
    entry = {"Source": EVENT_SOURCE, "DetailType": DETAIL_TYPE, "Detail": orjson.dumps(detail).decode(),
             "EventBusName": event_bus}
    try:
        answer = events.put_events(Entries=[entry])
        failure = answer.get("Entries", [{}])[0].get("ErrorMessage") if answer.get("FailedEntryCount") else None
    except (BotoCoreError, ClientError) as exc:
        failure = str(exc)
    if failure:
        logger.warning("file event not published", extra={"file_event": {"bus": event_bus, "why": failure,
                                                                          "status": detail["status"]}})
