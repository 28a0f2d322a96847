"""Delivering a dropped file, or a webhook's messages, to Mona's ``/export``.

Messages go in batches of at most ``MONA_BATCH_SIZE`` and ``MONA_BATCH_BYTES``, several in
flight. Messages Mona refuses go to the rejected rows with its reasons and the rest of the
batch stands; a ``topLevelError`` refuses the whole batch with its reason. A file's batches are
settled in the file's order (``martech.ordered_sending``), so a file retried after a transient
failure goes on after the batches Mona took.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from functools import partial
from typing import IO, Any

import orjson

from martech.batching import batched
from martech.mona import FateUnknown, MonaAuthError, MonaClient, MonaUnavailable, TopLevelError, overwrites_only
from martech.mona_messages import MessageBuilder, check_arc_class
from martech.file_runs import FileRun, dry_run_asked
from martech.ordered_sending import Batch, BatchOutcome, OrderedSender, check_only, sendings_in_order, unsent_reason
from martech.csv_records import header_of_values
from martech.readers import CsvOptions, UnreadableFile, is_csv, lines_between
from martech.reports import RunReport
from martech.settings import Settings

KEY_PREFIX = "mona/"


def arc_class_from_key(key: str) -> str:
    """``mona/<arcClass>/<file>`` -> ``<arcClass>``."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] + "/" != KEY_PREFIX or not parts[-1]:
        raise ValueError(f"{key}: Mona files go to mona/<arcClass>/<file>")
    check_arc_class(parts[1])
    return parts[1]


def export_batch(client: MonaClient, batch: list[tuple[int, dict[str, Any]]], deadline: float | None = None
                 ) -> BatchOutcome:
    outcome = BatchOutcome()
    try:
        result = client.export([message for _, message in batch], deadline=deadline)
    except TopLevelError as exc:
        outcome.refused = [(line, [f"refused by Mona: {exc}"], message) for line, message in batch]
        return outcome
    except FateUnknown as exc:
        outcome.unknown = len(batch)
        outcome.errors.append(f"{lines_between(batch[0][0], batch[-1][0])}: {exc}")
        return outcome
    outcome.refused = [(batch[i][0], reasons, batch[i][1]) for i, reasons in sorted(result.failed.items())]
    outcome.sent = len(batch) - len(outcome.refused)
    return outcome


def _message_size(item: tuple[int, dict[str, Any]]) -> int:
    return len(orjson.dumps(item[1], default=str))


def contexts(items: list[tuple[int, dict[str, Any]]]) -> set[tuple[Any, str]]:
    """The contexts the messages write to: a batch waits for an earlier one that writes to the same."""
    return {(m.get("arcClass"), str(m["contextId"])) for _, m in items if m.get("contextId") is not None}


def export_in_time(items: list[tuple[int, dict[str, Any]]], client: MonaClient, settings: Settings,
                   deadline: float | None = None) -> tuple[list[BatchOutcome], dict[int, str], Exception | None]:
    """A webhook's messages exported, at most MONA_CONCURRENCY batches in flight (messages to one
    context reach Mona in their order), none started past ``deadline``: the outcomes of the batches
    Mona answered, the messages not sent (index: why), and the first failure (Mona kept failing,
    refused the credentials, or the time ran out). After a failure no batch starts, and the batches
    in flight are still heard, so that every message is either answered for or not sent."""
    batches = list(batched(items, settings.mona_batch_size, settings.mona_batch_bytes, size=_message_size))
    failure: Exception | None = None
    fed = 0

    def feed() -> Iterator[Batch]:
        nonlocal failure, fed
        for number, batch in enumerate(batches):
            if failure is None and deadline is not None and time.monotonic() >= deadline:
                failure = MonaUnavailable("the call's time ran out before Mona took every batch")
            if failure is not None:
                return
            fed = number + 1
            yield Batch(number, batch)  # numbered by ``through``

    outcomes: list[BatchOutcome] = []
    not_sent: dict[int, str] = {}
    with closing(sendings_in_order(partial(export_batch, client, deadline=deadline), feed(), settings.mona_concurrency,
                                   keys=contexts)) as sendings:
        for number, _, sending in sendings:
            try:
                outcomes.append(sending.result() if sending else BatchOutcome())
            except (MonaUnavailable, MonaAuthError) as exc:  # refused before Mona did anything: safe to send again
                failure = failure or exc
                not_sent |= {index: unsent_reason(exc, tried=True) for index, _ in batches[number]}
    for batch in batches[fed:]:
        not_sent |= {index: unsent_reason(failure, tried=False) for index, _ in batch}
    return outcomes, not_sent, failure


def deliver_file(s3: Any, stream: IO[bytes], bucket: str, key: str, version_id: str | None, object_time: float | None,
                 client: MonaClient, settings: Settings, resume_from: int = 0, stop_at: float | None = None,
                 retry_note: str = "", charset: str | None = None, metadata: Mapping[str, str] | None = None
                 ) -> RunReport:
    """Deliver one dropped file; raises ``RetryLater`` for transient failures, after the report has
    said how far the file got, so that the retry goes on from there. A run still reading at
    ``stop_at`` ends ``continuing`` for a later run to go on (``martech.file_runs``). ``charset`` and the
    object's ``metadata`` (``dry-run=true``: check, send nothing): as ``monetate_delivery.deliver_file`` takes them."""
    run = FileRun(s3, bucket, key, version_id, "mona", resume_from, stop_at, retry_note,
                  CsvOptions(settings.csv_null_texts, charset=charset))
    report = run.report
    logins_before = client.tokens.logins - report.token_refreshes
    sender = None
    try:
        report.dry_run = dry_run_asked(metadata or {})
        sender = OrderedSender(run, check_only if report.dry_run else partial(export_batch, client),
                               settings.mona_concurrency,
                               resendable=lambda items: overwrites_only([message for _, message in items]), keys=contexts)
        builder = MessageBuilder(settings)
        builder.read_as.update(report.read_as)  # a run before this one's, carried over
        report.read_as = builder.read_as
        batches = _file_batches(run, stream, builder, arc_class_from_key(key), object_time, settings)
        sender.send_all(batches)
        run.finish("complete" if not report.unknown else "partial")
    except MonaUnavailable as exc:
        raise run.retry_later(exc, sender.confirmed if sender else None) from exc
    except (ValueError, UnreadableFile, MonaAuthError) as exc:
        run.fail(exc)
    except Exception as exc:
        raise run.unexpected(exc, sender.confirmed if sender else None) from exc
    finally:
        report.token_refreshes = client.tokens.logins - logins_before
        run.close()
    return report


def _file_batches(run: FileRun, stream: IO[bytes], builder: MessageBuilder, arc_class: str, object_time: float | None,
                  settings: Settings) -> Iterator[Batch]:
    """The file's messages in batches of at most MONA_BATCH_SIZE messages and MONA_BATCH_BYTES."""
    items: list[tuple[int, dict[str, Any]]] = []
    set_aside: list[tuple[int, list[str], Any]] = []
    size = 0
    from_csv = first = is_csv(run.key)
    try:
        for record in run.records(stream):
            if first and not record.error:  # Mona takes any field: a header that is a row would name them all
                first = False
                if why := header_of_values(record.data, record.line):
                    raise UnreadableFile(why)
            if record.error:
                set_aside.append((record.line, [record.error], record.data))
                continue
            message, reasons = builder.build(record.data, arc_class, object_time, from_csv)
            if reasons:
                set_aside.append((record.line, reasons, record.data))
                continue
            message_size = _message_size((record.line, message))
            if items and (len(items) >= settings.mona_batch_size or size + message_size > settings.mona_batch_bytes):
                yield Batch(run.progress.settled - 1, items, set_aside)  # settled through the record before this one
                items, set_aside, size = [], [], 0
            items.append((record.line, message))  # type: ignore[arg-type]
            size += message_size
    except UnreadableFile:  # the file broke: what was read before it is still sent or set aside
        yield Batch(run.progress.settled, items, set_aside)
        raise
    if items or set_aside:
        yield Batch(run.progress.settled, items, set_aside)
