"""Delivering records to a Monetate dataset, from a dropped file or a webhook body.

A file is streamed: read, converted row by row, posted in batches; bad rows go to the
rejected rows with their line and reasons, never sinking the file. The run ends in a
report. Failures are sorted into two kinds: ``martech.reports.RetryLater`` (the file should come
back through its queue) and everything else, which ends in the report.

Batches are settled in the file's order, each once Monetate has answered for it. So when one
fails for good, the report can say how far the file got, and its retry goes on from there
instead of sending again what Monetate already holds.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any
from collections.abc import Iterable, Iterator

from martech.batching import batched
from martech.monetate import BatchTooLarge, FateUnknown, MonetateClient, RowsRejected, TransientFailure, UnknownSchema
from martech.monetate_auth import AuthUnavailable, MonetateAuthError
from martech.monetate_rows import RowConverter, Schema
from martech.file_runs import FileRun
from martech.readers import Record, UnreadableFile
from martech.reports import RunReport
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
    """Deliver one dropped file; raises ``RetryLater`` for transient failures, after the report has
    said how far the file got, so that the retry goes on from there. A run still reading at
    ``stop_at`` ends ``continuing`` for a later run to go on (``martech.file_runs``)."""
    run = FileRun(s3, bucket, key, version_id, "monetate", resume_from, stop_at)
    report = run.report
    refreshes_before = client.tokens.refreshes - report.token_refreshes
    posting = _Posting(run)
    try:
        schema = client.schema(schema_from_key(key))
        batches = _convertible(run, stream, RowConverter(schema, settings.unknown_columns), settings.monetate_batch_size)
        posting.post_all(batches, schema, client, settings)
        run.finish("complete" if not (report.failed or report.unknown) else "partial")
    except (TransientFailure, AuthUnavailable) as exc:
        raise run.retry_later(exc, posting.confirmed) from exc
    except (ValueError, UnknownSchema, UnreadableFile, MonetateAuthError) as exc:
        run.fail(exc)
    finally:
        report.token_refreshes = client.tokens.refreshes - refreshes_before
        run.close()
    return report


@dataclass
class Batch:
    """Converted rows ready to post, the records set aside while converting them, and how many
    records from the file's start are settled once this batch is."""

    through: int
    rows: list[tuple[int, dict[str, Any], dict[str, Any]]]  # (line, row to send, original record)
    set_aside: list[tuple[int, list[str], Any]]  # (line, reasons, original record)


def _convertible(run: FileRun, stream: Any, converter: RowConverter, batch_size: int) -> Iterator[Batch]:
    """The file's records in batches, converted a batch at a time."""

    def convert(chunk: list[Record]) -> Batch:
        readable, set_aside = [], []
        for record in chunk:
            if record.error:
                set_aside.append((record.line, [record.error], None))
            else:
                readable.append(record)
        good, bad = converter.convert_many([record.data for record in readable])
        set_aside += [(readable[i].line, reasons, readable[i].data) for i, reasons in bad]
        rows = [(readable[i].line, row, readable[i].data) for i, row in good]
        return Batch(run.progress.settled, rows, set_aside)

    chunk: list[Record] = []
    try:
        for record in run.records(stream):
            chunk.append(record)
            if len(chunk) >= batch_size:
                yield convert(chunk)
                chunk = []
    except UnreadableFile:  # the file broke: the bad rows read before it are still set aside, in order
        yield Batch(run.progress.settled, [], convert(chunk).set_aside)
        raise
    if chunk:
        yield convert(chunk)


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


class _Posting:
    """Posts a file's batches while the next ones are read, and settles them in the file's order.

    A batch is settled (counted, its bad rows written) only once Monetate has answered for it, so
    ``confirmed`` is always a point in the file before which everything is done for good.
    """

    def __init__(self, run: FileRun) -> None:
        self._run = run
        self.confirmed = run.resumed_from

    def post_all(self, batches: Iterable[Batch], schema: Schema, client: MonetateClient, settings: Settings) -> None:
        # A few batches in flight, never more, so memory stays flat. A dataset without a unique key
        # gets one at a time: a batch that failed must be the last one sent, or its retry would
        # send the ones after it twice.
        limit = settings.monetate_concurrency if schema.unique_key else 1
        in_flight: deque[tuple[Batch, Future[BatchOutcome] | None]] = deque()
        pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="monetate-post")
        try:
            try:
                for batch in batches:
                    if len(in_flight) >= limit:
                        self._settle(*in_flight.popleft())  # a failed post ends the posting here
                    in_flight.append((batch, pool.submit(post_batch, client, schema, batch.rows) if batch.rows else None))
            except UnreadableFile:  # the file broke part way: what was sent before still counts
                while in_flight:
                    self._settle(*in_flight.popleft())
                raise
            while in_flight:
                self._settle(*in_flight.popleft())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _settle(self, batch: Batch, posted: Future[BatchOutcome] | None) -> None:
        outcome = posted.result() if posted else BatchOutcome()  # raises the batch's transient failure
        report, rejected = self._run.report, self._run.rejected
        for line, reasons, original in sorted(batch.set_aside + outcome.refused, key=itemgetter(0)):
            rejected.add(line, reasons, original)
        if posted is not None:
            report.batches += 1
        report.sent += outcome.sent
        report.unknown += outcome.unknown
        report.errors += outcome.errors
        self.confirmed = batch.through


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
