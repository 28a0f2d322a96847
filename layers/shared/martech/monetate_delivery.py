"""Delivering records to a Monetate dataset, from a dropped file or a webhook body.

A file is streamed: read, converted row by row, posted in batches; bad rows go to the
rejected rows with their line and reasons, never sinking the file. The run ends in a
report. Failures are sorted into two kinds: ``martech.reports.RetryLater`` (the file should come
back through its queue) and everything else, which ends in the report.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterable, Iterator

from martech.batching import batched
from martech.monetate import BatchTooLarge, FateUnknown, MonetateClient, RowsRejected, TransientFailure, UnknownSchema
from martech.monetate_auth import AuthUnavailable, MonetateAuthError
from martech.monetate_rows import RowConverter, Schema
from martech.file_runs import FileRun
from martech.readers import Record, UnreadableFile
from martech.reports import RejectedRows, RunReport
from martech.settings import Settings

KEY_PREFIX = "monetate/"


def schema_from_key(key: str) -> str:
    """``monetate/<schema>/<file>`` -> ``<schema>``; ValueError for any other key."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] + "/" != KEY_PREFIX or not parts[1] or not parts[-1]:
        raise ValueError(f"{key}: Monetate files go to monetate/<schema>/<file>")
    return parts[1]


def deliver_file(s3: Any, stream: Any, bucket: str, key: str, version_id: str | None,
                 client: MonetateClient, settings: Settings, resume_from: int = 0,
                 stop_at: float | None = None) -> RunReport:
    """Deliver one dropped file; raises ``RetryLater`` for transient failures. A run still reading at
    ``stop_at`` ends ``continuing`` for a later run to go on (``martech.file_runs``)."""
    run = FileRun(s3, bucket, key, version_id, "monetate", resume_from, stop_at)
    report = run.report
    refreshes_before = client.tokens.refreshes - report.token_refreshes
    try:
        schema = client.schema(schema_from_key(key))
        batches = _convertible(run.records(stream), RowConverter(schema, settings.unknown_columns), run.rejected,
                               settings.monetate_batch_size)
        _post_all(batches, schema, client, settings, report, run.rejected)
        run.finish("complete" if not (report.failed or report.unknown) else "partial")
    except (TransientFailure, AuthUnavailable) as exc:
        raise run.retry_later(exc) from exc
    except (ValueError, UnknownSchema, UnreadableFile, MonetateAuthError) as exc:
        run.fail(exc)
    finally:
        report.token_refreshes = client.tokens.refreshes - refreshes_before
        run.close()
    return report


def _convertible(records: Iterable[Record], converter: RowConverter, rejected: RejectedRows, batch_size: int
                 ) -> Iterator[list[tuple[int, dict[str, Any], dict[str, Any]]]]:
    """Batches of (line, row to send, original record), converted a batch at a time; the records
    that cannot be read or converted are rejected on the way."""

    def settle(chunk: list[Record]) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
        readable = []
        for record in chunk:
            if record.error:
                rejected.add(record.line, [record.error])
            else:
                readable.append(record)
        good, bad = converter.convert_many([record.data for record in readable])
        for i, reasons in bad:
            rejected.add(readable[i].line, reasons, readable[i].data)
        return [(readable[i].line, row, readable[i].data) for i, row in good]

    chunk: list[Record] = []
    try:
        for record in records:
            chunk.append(record)
            if len(chunk) >= batch_size:
                ready, chunk = settle(chunk), []
                if ready:
                    yield ready
    except Exception:
        settle(chunk)  # the file broke: what was read before is still settled, its bad rows set aside
        raise
    ready = settle(chunk)
    if ready:
        yield ready


@dataclass
class BatchOutcome:
    sent: int = 0
    unknown: int = 0
    errors: list[str] = field(default_factory=list)
    refused: list[tuple[int, list[str], Any]] = field(default_factory=list)  # (line, reasons, original)

    def merge(self, other: BatchOutcome) -> None:
        self.sent += other.sent
        self.unknown += other.unknown
        self.errors += other.errors
        self.refused += other.refused

    def apply(self, report: RunReport, rejected: RejectedRows) -> None:
        report.sent += self.sent
        report.unknown += self.unknown
        report.errors += self.errors
        for line, reasons, original in self.refused:
            rejected.add(line, reasons, original)


def _post_all(batches: Iterable[list[tuple[int, dict[str, Any], Any]]], schema: Schema, client: MonetateClient,
              settings: Settings, report: RunReport, rejected: RejectedRows) -> None:
    """Post batches while the next ones are read: a few in flight, never more, so memory stays flat."""
    in_flight: deque[Future[BatchOutcome]] = deque()
    pool = ThreadPoolExecutor(max_workers=settings.monetate_concurrency, thread_name_prefix="monetate-post")
    try:
        for batch in batches:
            report.batches += 1
            in_flight.append(pool.submit(post_batch, client, schema, batch))
            if len(in_flight) >= settings.monetate_concurrency:
                in_flight.popleft().result().apply(report, rejected)
        while in_flight:
            in_flight.popleft().result().apply(report, rejected)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def post_batch(client: MonetateClient, schema: Schema, batch: list[tuple[int, dict[str, Any], Any]]) -> BatchOutcome:
    """Post one batch; the rows Monetate refused come back with their line and reasons.

    When Monetate refuses a batch for some of its rows, those are set aside and the rest is
    posted again, once.
    """
    outcome = BatchOutcome()
    try:
        client.post_rows(schema, [row for _, row, _ in batch])
        outcome.sent = len(batch)
        return outcome
    except BatchTooLarge:  # wide rows: the halves go out one after the other
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            outcome.merge(post_batch(client, schema, half))
        return outcome
    except FateUnknown as exc:
        outcome.unknown = len(batch)
        outcome.errors.append(f"lines {batch[0][0]}-{batch[-1][0]}: {exc}")
        return outcome
    except RowsRejected as exc:
        by_row: dict[int, list[str]] = {}
        for error in exc.errors:
            if isinstance(error, dict) and isinstance(error.get("row"), int) and 0 <= error["row"] < len(batch):
                by_row.setdefault(error["row"], []).append(f"{error.get('field', 'row')}: {error.get('message', 'refused')}")
        if not by_row:  # the refusal names no row: the whole batch is refused for the same reason
            reason = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in exc.errors)
            outcome.refused = [(line, [f"refused by Monetate: {reason}"], original) for line, _, original in batch]
            return outcome
        outcome.refused = [(batch[i][0], reasons, batch[i][2]) for i, reasons in sorted(by_row.items())]
        rest = [item for i, item in enumerate(batch) if i not in by_row]
        if rest:
            outcome.merge(post_batch(client, schema, rest))
        return outcome


def validate_records(records: list[Any], schema: Schema, settings: Settings
                     ) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any], Any]]]:
    """Webhook validation: one result per record, and the (index, row, record) ready to post."""
    converter = RowConverter(schema, settings.unknown_columns)
    results: list[dict[str, Any]] = []
    ready = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            results.append({"index": index, "status": "rejected", "reasons": ["a record must be a JSON object"]})
            continue
        row, reasons = converter.convert(record)
        if reasons:
            results.append({"index": index, "status": "rejected", "reasons": reasons})
        else:
            results.append({"index": index, "status": "accepted"})
            ready.append((index, row, record))
    return results, ready


def deliver_records(results: list[dict[str, Any]], ready: list[tuple[int, dict[str, Any], Any]], schema: Schema,
                    client: MonetateClient, settings: Settings) -> list[dict[str, Any]]:
    """Post the validated records; their results become rejected (by Monetate) or unknown where so."""
    for batch in batched(ready, settings.monetate_batch_size):
        outcome = post_batch(client, schema, batch)
        for index, reasons, _ in outcome.refused:
            results[index] = {"index": index, "status": "rejected", "reasons": reasons}
        if outcome.unknown:  # the answer was lost: the caller decides whether to resend
            for index, _, _ in batch:
                if results[index]["status"] == "accepted":
                    results[index] = {"index": index, "status": "unknown",
                                      "reasons": ["sent, but Monetate's answer was lost"]}
    return results
