"""Delivering a dropped file, or a webhook's messages, to Mona's ``/export``.

Messages go in batches of at most ``MONA_BATCH_SIZE`` and ``MONA_BATCH_BYTES``, several in
flight. Messages Mona refuses go to the rejected rows with its reasons and the rest of the
batch stands; a ``topLevelError`` refuses the whole batch with its reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from martech.batching import batched
from martech.mona import FateUnknown, MonaAuthError, MonaClient, MonaUnavailable, TopLevelError
from martech.mona_messages import MessageBuilder, check_arc_class
from martech.file_runs import FileRun
from martech.readers import UnreadableFile
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


@dataclass
class BatchOutcome:
    sent: int = 0
    unknown: int = 0
    errors: list[str] = field(default_factory=list)
    refused: list[tuple[int, list[str], Any]] = field(default_factory=list)  # (line or index, reasons, message)


def export_batch(client: MonaClient, batch: list[tuple[int, dict[str, Any]]]) -> BatchOutcome:
    outcome = BatchOutcome()
    try:
        result = client.export([message for _, message in batch])
    except TopLevelError as exc:
        outcome.refused = [(line, [f"refused by Mona: {exc}"], message) for line, message in batch]
        return outcome
    except FateUnknown as exc:
        outcome.unknown = len(batch)
        outcome.errors.append(f"lines {batch[0][0]}-{batch[-1][0]}: {exc}")
        return outcome
    outcome.refused = [(batch[i][0], reasons, batch[i][1]) for i, reasons in sorted(result.failed.items())]
    outcome.sent = len(batch) - len(outcome.refused)
    return outcome


def _message_size(item: tuple[int, dict[str, Any]]) -> int:
    return len(orjson.dumps(item[1], default=str))


def export_all(items: Iterable[tuple[int, dict[str, Any]]], client: MonaClient, settings: Settings
               ) -> Iterator[BatchOutcome]:
    """Outcomes in batch order, with at most MONA_CONCURRENCY batches in flight."""
    in_flight: deque[Future[BatchOutcome]] = deque()
    pool = ThreadPoolExecutor(max_workers=settings.mona_concurrency, thread_name_prefix="mona-export")
    try:
        for batch in batched(items, settings.mona_batch_size, settings.mona_batch_bytes, size=_message_size):
            in_flight.append(pool.submit(export_batch, client, batch))
            if len(in_flight) >= settings.mona_concurrency:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def deliver_file(s3: Any, stream: IO[bytes], bucket: str, key: str, version_id: str | None, object_time: float | None,
                 client: MonaClient, settings: Settings, resume_from: int = 0, stop_at: float | None = None
                 ) -> RunReport:
    """Deliver one dropped file; raises ``RetryLater`` for transient failures. A run still reading at
    ``stop_at`` ends ``continuing`` for a later run to go on (``martech.file_runs``)."""
    run = FileRun(s3, bucket, key, version_id, "mona", resume_from, stop_at)
    report = run.report
    logins_before = client.tokens.logins - report.token_refreshes
    try:
        arc_class = arc_class_from_key(key)
        builder = MessageBuilder(settings)

        def messages() -> Iterator[tuple[int, dict[str, Any]]]:
            for record in run.records(stream):
                if record.error:
                    run.rejected.add(record.line, [record.error])
                    continue
                message, reasons = builder.build(record.data, arc_class, object_time)
                if reasons:
                    run.rejected.add(record.line, reasons, record.data)
                else:
                    yield record.line, message  # type: ignore[misc]

        for outcome in export_all(messages(), client, settings):
            report.batches += 1
            report.sent += outcome.sent
            report.unknown += outcome.unknown
            report.errors += outcome.errors
            for line, reasons, message in outcome.refused:
                run.rejected.add(line, reasons, message)
        run.finish("complete" if not report.unknown else "partial")
    except MonaUnavailable as exc:
        raise run.retry_later(exc) from exc
    except (ValueError, UnreadableFile, MonaAuthError) as exc:
        run.fail(exc)
    finally:
        report.token_refreshes = client.tokens.logins - logins_before
        run.close()
    return report
