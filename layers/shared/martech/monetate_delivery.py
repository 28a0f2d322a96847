"""Delivering records to a Monetate dataset, from a dropped file or a webhook body.

A file is streamed: read, converted row by row, posted in batches; bad rows go to the
rejected rows with their line and reasons, never sinking the file. The run ends in a
report. Failures are sorted into two kinds: ``martech.reports.RetryLater`` (the file should come
back through its queue) and everything else, which ends in the report.

Batches are settled in the file's order (``martech.ordered_sending``), so a file retried after a
transient failure goes on after the batches Monetate took.
"""

from __future__ import annotations

import time
from functools import partial
from operator import attrgetter, itemgetter
from typing import Any
from collections.abc import Callable, Iterable, Iterator, Mapping

from martech.batching import batched
from martech.monetate import BatchTooLarge, FateUnknown, MonetateClient, RowsRejected, TransientFailure, UnknownSchema
from martech.monetate_auth import AuthUnavailable, MonetateAuthError
from martech.monetate_rows import RowConverter, Schema
from martech.file_runs import FileRun, dry_run_asked
from martech.ordered_sending import Batch, BatchOutcome, OrderedSender, check_only, unsent_reason
from martech.csv_records import header_of_values
from martech.readers import CsvOptions, Record, UnreadableFile, is_csv, lines_between
from martech.reports import RunReport
from martech.settings import Settings

KEY_PREFIX = "monetate/"


class ColumnsMismatch(ValueError):
    """A CSV header under which no row can be sent: the file fails as a whole."""


# A schema may have gained fields since it was cached: names it lacks have it looked up again, at most
# this often, before the rows holding them are refused.
SCHEMA_RECHECK_SECONDS = 10


def current_schema(client: MonetateClient, schema: Schema, names: Iterable[str], unknown_columns: str) -> Schema:
    """``schema``, or the schema as Monetate has it now when ``names`` holds names it lacks (a field
    added in Monetate since the schema was cached)."""
    if not RowConverter(schema, unknown_columns).unknown(names):  # names alone: no dates read
        return schema
    return client.schema(schema.name, max_age=SCHEMA_RECHECK_SECONDS)


def schema_from_key(key: str) -> str:
    """``monetate/<schema>/<file>`` -> ``<schema>``; ValueError for any other key."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] + "/" != KEY_PREFIX or not parts[1] or not parts[-1]:
        raise ValueError(f"{key}: Monetate files go to monetate/<schema>/<file>")
    return parts[1]


def deliver_file(s3: Any, stream: Any, bucket: str, key: str, version_id: str | None,
                 client: MonetateClient, settings: Settings, resume_from: int = 0,
                 stop_at: float | None = None, retry_note: str = "", charset: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> RunReport:
    """Deliver one dropped file; raises ``RetryLater`` for transient failures, after the report has
    said how far the file got, so that the retry goes on from there. A run still reading at
    ``stop_at`` ends ``continuing`` for a later run to go on (``martech.file_runs``). ``charset``: the
    one the object's Content-Type names, for a CSV not in UTF-8 (``handlers.charset_of``). ``metadata``:
    the object's; ``dry-run=true`` reads and checks the file and sends nothing (``file_runs.dry_run_asked``)."""
    run = FileRun(s3, bucket, key, version_id, "monetate", resume_from, stop_at, retry_note,
                  CsvOptions(settings.csv_null_texts, settings.unknown_columns, charset))
    report = run.report
    refreshes_before = client.tokens.refreshes - report.token_refreshes
    sender = None
    try:
        report.dry_run = dry_run_asked(metadata or {})
        schema = client.schema(schema_from_key(key))
        columns: list[str] | None = [] if is_csv(key) else None  # a CSV's header, once read
        original = partial(_original, columns)

        def converter_for(names: Iterable[str]) -> RowConverter:
            return RowConverter(current_schema(client, schema, names, settings.unknown_columns), settings.unknown_columns,
                                settings.day_first, settings.time_zone)

        batches = _convertible(run, stream, converter_for, settings.monetate_batch_size, columns, original)
        # Without a unique key Monetate stores every row sent: one batch at a time, then. With one, a
        # batch repeating a key waits for the earlier batch, so that the file's later row is kept.
        unique_key = schema.unique_key
        post = check_only if report.dry_run else partial(post_batch, client, schema, original=original)
        sender = OrderedSender(run, post, settings.monetate_concurrency,
                               resendable=lambda rows: unique_key is not None,
                               keys=lambda rows: {row[unique_key] for _, row, _ in rows})
        sender.send_all(batches)
        run.finish("complete" if not (report.failed or report.unknown) else "partial")
    except (TransientFailure, AuthUnavailable) as exc:
        raise run.retry_later(exc, sender.confirmed if sender else None) from exc
    except (ValueError, UnknownSchema, UnreadableFile, MonetateAuthError) as exc:
        run.fail(exc)
    except Exception as exc:
        raise run.unexpected(exc, sender.confirmed if sender else None) from exc
    finally:
        report.token_refreshes = client.tokens.refreshes - refreshes_before
        run.close()
    return report


def _convertible(run: FileRun, stream: Any, converter_for: Callable[[Iterable[str]], RowConverter], batch_size: int,
                 columns: list[str] | None, original: Callable[[Any], Any]) -> Iterator[Batch]:
    """The file's records in batches, converted a batch at a time by ``converter_for`` the names of
    the first batch; a CSV's (``columns`` given) as lists of values, its header put in ``columns``. A
    CSV header that no row could be sent under (a column the schema lacks, a required field no column
    holds) fails the file at its first row, rather than setting every row aside for the same reason.
    A file that breaks part way has what was read before the break sent, and then fails."""
    converter = None
    for chunk in run.batches(stream, batch_size, columns):
        if converter is None and any(record.error is None for record in chunk):  # once, at the first row
            names = columns if columns is not None else \
                {name for record in chunk if record.error is None and isinstance(record.data, dict) for name in record.data}
            converter = converter_for(names)
            # What the report says of names read otherwise or left out: this run's, and those of runs before it.
            converter.read_as.update(run.report.read_as)
            converter.left_out.update(run.report.left_out)
            run.report.read_as, run.report.left_out = converter.read_as, converter.left_out
            if columns is not None and (problems := converter.column_problems(columns)):
                first = next(record for record in chunk if record.error is None)
                raise ColumnsMismatch(header_of_values(dict(zip(columns, first.data, strict=False)), first.line) or
                                      f"no row of this file can be sent, whatever it holds: {'; '.join(problems)}")
        yield _converted(run.progress.settled, chunk, converter or converter_for(()), columns, original)


def _converted(through: int, chunk: list[Record], converter: RowConverter, columns: list[str] | None,
               original: Callable[[Any], Any]) -> Batch:
    """One batch: (line, row to send, data as read) for the rows that convert, the others set aside."""
    set_aside: list[tuple[int, list[str], Any]] = []
    readable = chunk
    if any(map(_error_of, chunk)):  # lines that could not be read: rare
        readable = [record for record in chunk if record.error is None]
        set_aside = [(record.line, [record.error], record.data) for record in chunk if record.error is not None]
    data = list(map(_data_of, readable))
    good, bad = converter.convert_many(data) if columns is None else converter.convert_rows(columns, data)
    if bad:
        set_aside += [(readable[i].line, reasons, original(data[i])) for i, reasons in bad]
        rows = [(readable[i].line, row, data[i]) for i, row in good]
    else:  # every row converts: zipped in C, a tenth of a microsecond a row less than the line above
        rows = list(zip(map(_line_of, readable), map(_second, good), data, strict=True))
    return Batch(through, rows, set_aside)


def _original(columns: list[str] | None, data: Any) -> Any:
    """The record as read, for the rejected rows: a CSV row's values under their columns."""
    return dict(zip(columns, data, strict=True)) if columns is not None and type(data) is list else data


_line_of, _data_of, _error_of, _second = attrgetter("line"), attrgetter("data"), attrgetter("error"), itemgetter(1)


def post_batch(client: MonetateClient, schema: Schema, batch: list[tuple[int, dict[str, Any], Any]],
               original: Callable[[Any], Any] = lambda data: data, deadline: float | None = None) -> BatchOutcome:
    """Post one batch of (line, row, data as read); the rows Monetate refused come back with their
    line, reasons and ``original(data)``, the record to set aside. ``deadline``: as ``post_rows`` takes it.

    When Monetate refuses a batch for some of its rows, those are set aside and the rest is
    posted again, once.
    """
    outcome = BatchOutcome()
    try:
        client.post_rows(schema, [row for _, row, _ in batch], deadline)
        outcome.sent = len(batch)
        return outcome
    except BatchTooLarge:  # wide rows: the halves go out one after the other
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            outcome.merge(post_batch(client, schema, half, original, deadline))
        return outcome
    except FateUnknown as exc:
        outcome.unknown = len(batch)
        outcome.errors.append(f"{lines_between(batch[0][0], batch[-1][0])}: {exc}")
        return outcome
    except RowsRejected as exc:
        by_row: dict[int, list[str]] = {}
        for error in exc.errors:
            if isinstance(error, dict) and isinstance(error.get("row"), int) and 0 <= error["row"] < len(batch):
                by_row.setdefault(error["row"], []).append(f"{error.get('field', 'row')}: {error.get('message', 'refused')}")
        if not by_row:  # the refusal names no row: the whole batch is refused for the same reason
            reason = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in exc.errors)
            outcome.refused = [(line, [f"refused by Monetate: {reason}"], original(data)) for line, _, data in batch]
            return outcome
        outcome.refused = [(batch[i][0], reasons, original(batch[i][2])) for i, reasons in sorted(by_row.items())]
        rest = [item for i, item in enumerate(batch) if i not in by_row]
        if rest:
            outcome.merge(post_batch(client, schema, rest, original, deadline))
        return outcome


def validate_records(records: list[Any], schema: Schema, settings: Settings
                     ) -> tuple[list[dict[str, Any]], list[tuple[int, dict[str, Any], Any]], dict[str, dict[str, str]]]:
    """Webhook validation: one result per record, the (index, row, record) ready to post, and what a
    file's report would say of the names: ``read_as`` and ``left_out`` (``RowConverter``), those there are."""
    converter = RowConverter(schema, settings.unknown_columns, settings.day_first, settings.time_zone)
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
    names = {"read_as": converter.read_as, "left_out": converter.left_out}
    return results, ready, {what: found for what, found in names.items() if found}


def deliver_records(results: list[dict[str, Any]], ready: list[tuple[int, dict[str, Any], Any]], schema: Schema,
                    client: MonetateClient, settings: Settings, deadline: float | None = None) -> Exception | None:
    """Post the validated records a batch at a time; their results become rejected (by Monetate) or
    unknown where so. None when every batch was posted; else why the others were not (Monetate kept
    failing or refused the credentials, or ``deadline`` came first): their records are ``not_sent``
    with that reason, so that the caller can send those again, and only those."""
    batches = list(batched(ready, settings.monetate_batch_size))
    for number, batch in enumerate(batches):
        try:
            if deadline is not None and time.monotonic() >= deadline:
                raise TransientFailure("the call's time ran out before Monetate took every batch")
            outcome = post_batch(client, schema, batch, deadline=deadline)
        except (TransientFailure, AuthUnavailable, MonetateAuthError) as exc:
            # The failed batch may have landed with its answer lost, where sending it again is safe:
            # with a unique key the rows are replaced (without one, such a batch counts as unknown).
            for later, left in enumerate(batches[number:]):
                reason = unsent_reason(exc, tried=not later)
                for index, _, _ in left:
                    results[index] = {"index": index, "status": "not_sent", "reasons": [reason]}
            return exc
        for index, reasons, _ in outcome.refused:
            results[index] = {"index": index, "status": "rejected", "reasons": reasons}
        if outcome.unknown:  # the answer was lost: the caller decides whether to resend
            for index, _, _ in batch:
                if results[index]["status"] == "accepted":
                    results[index] = {"index": index, "status": "unknown",
                                      "reasons": ["sent, but Monetate's answer was lost"]}
    return None
