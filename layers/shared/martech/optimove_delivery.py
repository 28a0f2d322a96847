"""Delivering a dropped file to an Optimove data connection.

Keys: ``optimove/<connection>/upsert|update|delete/<file>``, ``<connection>`` a uuid or a
name. A key repeated in one file is sent once, its last row winning; the file is read
twice for that (a first pass notes each key's last row, ``martech.last_rows``, in memory
that stays bounded however many keys the file holds). Upserts of one file share one
``batch_uuid`` derived from the object version, so a retried file continues its batch,
and only the last request completes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from martech.batching import batched
from martech.csv_values import typed_row
from martech.last_rows import LastRows
from martech.optimove import MAX_ROWS_PER_UPLOAD, OptimoveClient, OptimoveError, OptimoveUnavailable, UnknownConnection
from martech.names import did_you_mean
from martech.readers import UnreadableFile, is_csv, read_records
from martech.reports import RejectedRows, RunReport
from martech.settings import Settings

KEY_PREFIX = "optimove/"
OPERATIONS = ("upsert", "update", "delete")


def route_from_key(key: str) -> tuple[str, str]:
    """``optimove/<connection>/<operation>/<file>`` -> (connection, operation)."""
    parts = key.split("/")
    if len(parts) < 4 or parts[0] + "/" != KEY_PREFIX or parts[2] not in OPERATIONS or not parts[-1]:
        hint = did_you_mean(parts[2], OPERATIONS) if len(parts) >= 4 else ""
        raise ValueError(f"{key}: Optimove files go to optimove/<connection>/{{{'|'.join(OPERATIONS)}}}/<file>{hint}")
    return parts[1], parts[2]


def _key_of(value: Any) -> str | None:
    """Primary keys compare as strings; blanks are no key."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).strip()
    return text or None


def merged(stored: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The new fields over the stored record, so a partial update never erases fields."""
    return {**(stored or {}), **new}


def deliver_file(s3: Any, open_stream: Callable[[], IO[bytes]], bucket: str, key: str, version_id: str | None,
                 client: OptimoveClient, settings: Settings, ttl: int | None, merge: bool) -> RunReport:
    report = RunReport(bucket, key, version_id, destination="optimove")
    rejected = RejectedRows(s3, bucket, key)
    try:
        connection_ref, operation = route_from_key(key)
        connection = client.resolve(connection_ref)
        uuid_ = connection["data_connection_uuid"]
        pk_field = connection["primary_key"]
        if operation == "delete":
            _delete(open_stream, key, pk_field, uuid_, client, settings, report, rejected)
        else:
            from_csv = is_csv(key)
            last = _last_rows(open_stream(), key, pk_field, from_csv)
            rows = _unique_rows(open_stream(), key, pk_field, last, report, rejected)
            if from_csv:
                numbers, keep = settings.csv_values == "typed", {pk_field}
                rows = ((line, pk, typed_row(row, keep, numbers)) for line, pk, row in rows)
            if merge:
                rows = _merge_stored(rows, uuid_, client, report)
            if operation == "upsert":
                batch_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"s3://{bucket}/{key}?versionId={version_id}"))
                _upsert(rows, uuid_, batch_uuid, ttl, client, settings, report)
            else:
                _update(rows, uuid_, pk_field, ttl, client, settings, report)
        report.finish("complete")
    except OptimoveUnavailable as exc:
        raise report.retry_later(exc) from exc
    except (ValueError, UnreadableFile, UnknownConnection, OptimoveError) as exc:
        report.fail(exc, rejected)
    finally:
        report.close(s3, rejected)
    return report


def _last_rows(stream: IO[bytes], key: str, pk_field: str, check_header: bool) -> LastRows:
    """Which row holds each key's last, rows counted from 0 (a JSON array's items may share a line).
    A CSV header without the primary key fails the file at its first row, rather than setting every
    row aside for the same reason."""
    last = LastRows()
    for number, record in enumerate(read_records(stream, key)):
        if check_header and record.error is None:
            check_header = False  # once, at the first row
            if pk_field not in record.data:
                raise ValueError(f"no row of this file can be sent, whatever it holds: the header has no column"
                                 f" {pk_field}, the connection's primary key{did_you_mean(pk_field, record.data)}")
        pk = None if record.error else _key_of(record.data.get(pk_field))
        if pk is not None:
            last.note(pk, number)
    return last


def _unique_rows(stream: IO[bytes], key: str, pk_field: str, last: LastRows, report: RunReport,
                 rejected: RejectedRows) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line, key, row) for the last row of every key; earlier repeats are counted, bad rows rejected."""
    for number, record in enumerate(read_records(stream, key)):
        report.read += 1
        if record.error:
            rejected.add(record.line, [record.error], record.data)
            continue
        pk = _key_of(record.data.get(pk_field))
        if pk is None:
            rejected.add(record.line, [f"{pk_field}: the primary key is missing or empty"], record.data)
        elif not last.is_last(pk, number):
            report.duplicates += 1
        else:
            yield record.line, pk, record.data


def _merge_stored(rows: Iterable[tuple[int, str, dict[str, Any]]], uuid_: str, client: OptimoveClient,
                  report: RunReport) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for line, pk, row in rows:
        report.reads += 1
        yield line, pk, merged(client.query(uuid_, pk), row)


def _upsert(rows: Iterable[tuple[int, str, dict[str, Any]]], uuid_: str, batch_uuid: str, ttl: int | None,
            client: OptimoveClient, settings: Settings, report: RunReport) -> None:
    """One batch_uuid for the file; batch_completed only on the last request, known by looking one ahead."""
    size = min(settings.optimove_batch_size, MAX_ROWS_PER_UPLOAD)
    pending: list[tuple[int, str, dict[str, Any]]] | None = None
    for batch in batched(rows, size):
        if pending is not None:
            _upload(pending, uuid_, batch_uuid, ttl, False, client, report)
        pending = batch
    if pending is not None:
        _upload(pending, uuid_, batch_uuid, ttl, True, client, report)


def _upload(batch: list[tuple[int, str, dict[str, Any]]], uuid_: str, batch_uuid: str, ttl: int | None,
            completed: bool, client: OptimoveClient, report: RunReport) -> None:
    client.upload(uuid_, [row for _, _, row in batch], ttl, batch_uuid, completed)
    report.batches += 1
    report.sent += len(batch)


def _update(rows: Iterable[tuple[int, str, dict[str, Any]]], uuid_: str, pk_field: str, ttl: int | None,
            client: OptimoveClient, settings: Settings, report: RunReport) -> None:
    for batch in batched(rows, min(settings.optimove_batch_size, MAX_ROWS_PER_UPLOAD)):
        items = [{"primary_key": row[pk_field], "data": {k: v for k, v in row.items() if k != pk_field}, "ttl": ttl}
                 for _, _, row in batch]
        client.update(uuid_, items)
        report.batches += 1
        report.sent += len(batch)


def _delete(open_stream: Callable[[], IO[bytes]], key: str, pk_field: str, uuid_: str, client: OptimoveClient,
            settings: Settings, report: RunReport, rejected: RejectedRows) -> None:
    """A CSV column named for the primary key (or the only column), a JSON list, or JSON Lines of keys;
    a key repeated is deleted once."""
    def keyed() -> Iterator[tuple[int, str | None, Any]]:
        for number, record in enumerate(read_records(open_stream(), key, objects_only=False)):
            value = record.data
            if isinstance(value, dict):
                value = value.get(pk_field, next(iter(value.values())) if len(value) == 1 else None)
            yield number, None if record.error else _key_of(value), record

    last = LastRows()
    for number, pk, _ in keyed():
        if pk is not None:
            last.note(pk, number)

    def keys() -> Iterator[str]:
        for number, pk, record in keyed():
            report.read += 1
            if pk is None:
                rejected.add(record.line, [record.error or f"no {pk_field} to delete"], record.data)
            elif not last.is_last(pk, number):
                report.duplicates += 1
            else:
                yield pk

    for chunk in batched(keys(), min(settings.optimove_batch_size, MAX_ROWS_PER_UPLOAD)):
        client.delete(uuid_, chunk)
        report.batches += 1
        report.sent += len(chunk)
