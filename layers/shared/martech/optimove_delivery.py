"""Delivering a dropped file to an Optimove data connection.

Keys: ``optimove/<connection>/upsert|update|delete/<file>``, ``<connection>`` a uuid or a
name. A key repeated in one file is sent once, its last row winning; the file is read
twice for that (a first pass notes each key's last row, ``martech.last_rows``, in memory
that stays bounded however many keys the file holds). A file too big for one run goes on
in later runs (``martech.file_runs``), each reading the whole file first again. Upserts of
one file share one ``batch_uuid`` derived from the object version, across its runs and
retries, and only the file's last request completes it.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

from martech.batching import batched
from martech.csv_values import typed_row
from martech.last_rows import LastRows
from martech.optimove import MAX_ROWS_PER_UPLOAD, OptimoveClient, OptimoveError, OptimoveUnavailable, UnknownConnection
from martech.names import did_you_mean, written_otherwise
from martech.file_runs import FileRun, dry_run_asked, read_whole_in_time
from martech.csv_records import header_of_values, trimmed, written_alike
from martech.readers import CsvOptions, Record, UnreadableFile, is_csv, read_records
from martech.reports import RunReport
from martech.settings import Settings, yes_or_no
from martech.value_hints import key_hint

KEY_PREFIX = "optimove/"
OPERATIONS = ("upsert", "update", "delete")
MOST_UPDATES_REFUSED = 100  # rows an update file may have refused one by one before it fails


def route_from_key(key: str) -> tuple[str, str]:
    """``optimove/<connection>/<operation>/<file>`` -> (connection, operation)."""
    parts = key.split("/")
    if len(parts) < 4 or parts[0] + "/" != KEY_PREFIX or parts[2] not in OPERATIONS or not parts[-1]:
        hint = did_you_mean(parts[2], OPERATIONS) if len(parts) >= 4 else ""
        raise ValueError(f"{key}: Optimove files go to optimove/<connection>/{{{'|'.join(OPERATIONS)}}}/<file>{hint}")
    return parts[1], parts[2]


class UnusableKey(ValueError):
    """A primary key no record has (#N/A, 1.23457E+11, pandas' 1001.0): rows whose keys differ would be one."""


def _key_of(value: Any, pk_field: str) -> str | None:
    """Primary keys compare as strings; blanks are no key."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = trimmed(str(value))
    if hint := key_hint(text):
        raise UnusableKey(f"{pk_field}: the primary key {text!r}{hint}")
    return text or None


def merged(stored: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The new fields over the stored record, so a partial update never erases fields."""
    return {**(stored or {}), **new}


FILE_OPTIONS = ("ttl", "merge")  # object metadata a file may carry, beside dry-run (file_runs.dry_run_asked)
# A file's ttl: seconds, or a whole number of minutes, hours or days (30m, 24h, 7d), as people write a lifetime.
_DURATION = re.compile(r"([0-9]+) ?([smhdSMHD]?)")
_SECONDS_IN = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def file_options(metadata: Mapping[str, str], default_ttl: int | None) -> tuple[int | None, bool]:
    """(TTL, merge) of a file: ``default_ttl`` and no merge, unless its object metadata says ``ttl`` (whole
    seconds, or minutes, hours or days: 7d) or ``merge`` (true or false). A value that says neither is a
    ValueError, not a default: sent without merge, a partial update would erase fields; so is a name that
    is nearly one of these (``marge``): other metadata, that tools such as rclone add (``mtime``), is let be."""
    for name, value in metadata.items():
        if name not in FILE_OPTIONS and (near := did_you_mean(name, FILE_OPTIONS)):
            raise ValueError(f"the object's metadata {name}={value!r} is no option{near}; nothing was sent")
    ttl, merge = default_ttl, False
    raw_ttl, raw_merge = metadata.get("ttl", "").strip(), metadata.get("merge", "").strip()
    if raw_ttl:
        duration = _DURATION.fullmatch(raw_ttl)
        if not duration or int(duration[1]) == 0:
            raise ValueError(f"the object's metadata ttl={raw_ttl!r} is not a whole number of seconds over 0 (or of"
                             " minutes, hours or days: 30m, 24h, 7d); nothing was sent")
        ttl = int(duration[1]) * _SECONDS_IN[duration[2].lower()]
    if raw_merge:
        try:
            merge = yes_or_no(raw_merge)
        except ValueError:
            raise ValueError(f"the object's metadata merge={raw_merge!r} is neither true nor false;"
                             " nothing was sent") from None
    return ttl, merge


def deliver_file(s3: Any, open_stream: Callable[[], IO[bytes]], bucket: str, key: str, version_id: str | None,
                 client: OptimoveClient, settings: Settings, metadata: Mapping[str, str], resume_from: int = 0,
                 stop_at: float | None = None, retry_note: str = "", charset: str | None = None,
                 upload: str | None = None) -> RunReport:
    """Deliver one dropped file, with the TTL and merge mode its object ``metadata`` asks for
    (``file_options``); raises ``RetryLater`` for transient failures. A run still sending at
    ``stop_at`` ends ``continuing`` for a later run to go on after the records it settled
    (``martech.file_runs``); an upload's requests share one ``batch_uuid`` across the runs, and only the
    file's last request completes it. ``charset``: as ``monetate_delivery.deliver_file`` takes it.
    ``upload``: the upload the object is (``handlers.pinned``), where it has no version of its own."""
    run = FileRun(s3, bucket, key, version_id, "optimove", resume_from, stop_at, retry_note,
                  CsvOptions(settings.csv_null_texts, charset=charset))
    try:
        ttl, merge = file_options(metadata, settings.optimove_ttl)
        run.report.dry_run = dry_run_asked(metadata)
        connection_ref, operation = route_from_key(key)
        connection = client.resolve(connection_ref)
        uuid_ = connection["data_connection_uuid"]
        pk_field = connection["primary_key"]
        if operation == "delete":
            _delete(open_stream, run, pk_field, uuid_, client, settings)
        else:
            from_csv = is_csv(key)
            rows = ((record.line, pk, record.data) for record, pk in _last_of_each_key(
                open_stream, run, _row_key(pk_field, from_csv, run.report.read_as),
                f"{pk_field}: the primary key is missing or empty"))
            if from_csv:
                numbers, keep = settings.csv_values == "typed", {pk_field}
                rows = ((line, pk, typed_row(row, keep, numbers)) for line, pk, row in rows)
            if run.report.dry_run:  # checked as they would be sent; not sent, nor merged with what is stored
                run.report.checked += sum(1 for _ in rows)
            else:
                if merge:
                    rows = _merge_stored(rows, uuid_, client, run.report)
                if operation == "upsert":
                    batch_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"s3://{bucket}/{key}?versionId={upload or version_id}"))
                    _upsert(rows, uuid_, batch_uuid, ttl, client, settings, run)
                else:
                    _update(rows, uuid_, pk_field, ttl, client, settings, run)
        run.finish("complete")
    except OptimoveUnavailable as exc:
        raise run.retry_later(exc) from exc
    except (ValueError, UnreadableFile, UnknownConnection, OptimoveError) as exc:
        run.fail(exc)
    except Exception as exc:
        raise run.unexpected(exc) from exc
    finally:
        run.close()
    return run.report


def _named_as_the_key(pk_field: str, record: dict[str, Any], read_as: dict[str, str]) -> None:
    """The primary key written otherwise (CUSTOMER_ID, as warehouses export headers, Customer ID or
    customerId: ``names.spellings``) renamed as the connection has it, which Optimove needs, when one
    field alone is it; the name it was read as kept in ``read_as`` (the report's)."""
    if pk_field not in record and (found := written_otherwise(pk_field, record)):
        record[pk_field] = record.pop(found)
        read_as[found] = pk_field


def _row_key(pk_field: str, from_csv: bool, read_as: dict[str, str]) -> Callable[[Record], str | None]:
    """A row's primary key. A CSV header without the primary key fails the file at its first row,
    rather than setting every row aside for the same reason."""
    def key_of(record: Record) -> str | None:
        if record.error:
            return None
        _named_as_the_key(pk_field, record.data, read_as)
        if from_csv and pk_field not in record.data:  # every row of a CSV has the header's names
            if why := header_of_values(record.data, record.line):
                raise ValueError(why)
            raise ValueError(f"no row of this file can be sent, whatever it holds: the header has no column"
                             f" {pk_field}, the connection's primary key{did_you_mean(pk_field, record.data)}")
        pk = _key_of(value := record.data.get(pk_field), pk_field)
        if pk is not None and type(value) is str:
            record.data[pk_field] = pk  # sent as it is compared and deleted: " C2 " is C2
        return pk

    return key_of


def _last_of_each_key(open_stream: Callable[[], IO[bytes]], run: FileRun, key_of: Callable[[Record], str | None],
                      missing: str, objects_only: bool = True) -> Iterator[tuple[Record, str]]:
    """(record, key) for the record holding each key's last row, after the records earlier runs settled
    and until time is up. A first pass over the whole file tells which those are, rows counted from 0
    (a JSON array's items may share a line); earlier repeats are counted, and records without a key
    set aside with the reader's error or ``missing``."""
    last = LastRows()
    # Every run reads the whole file first: one that cannot do even that could never send a row.
    first_pass = read_records(open_stream(), run.key, objects_only, options=run.csv_options)
    for number, record in read_whole_in_time(first_pass, run.progress.stop_at, "read through even once"):
        with contextlib.suppress(UnusableKey):  # set aside below
            if (pk := key_of(record)) is not None:
                last.note(pk, number)
    for number, record in enumerate(run.records(open_stream(), objects_only), start=run.progress.settled):
        try:
            pk = key_of(record)
        except UnusableKey as exc:
            run.rejected.add(record.line, [str(exc)], record.data)
            continue
        if pk is None:
            run.rejected.add(record.line, [record.error or missing], record.data)
        elif not last.is_last(pk, number):
            run.report.duplicates += 1
        else:
            yield record, pk


def _merge_stored(rows: Iterable[tuple[int, str, dict[str, Any]]], uuid_: str, client: OptimoveClient,
                  report: RunReport) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for line, pk, row in rows:
        report.reads += 1
        yield line, pk, merged(client.query(uuid_, pk), row)


def _upsert(rows: Iterable[tuple[int, str, dict[str, Any]]], uuid_: str, batch_uuid: str, ttl: int | None,
            client: OptimoveClient, settings: Settings, run: FileRun) -> None:
    """One batch_uuid for the file; batch_completed only on its last request, known by looking one
    ahead, and not when the run stops for a later one to go on."""
    size = min(settings.optimove_batch_size, MAX_ROWS_PER_UPLOAD)
    pending: list[tuple[int, str, dict[str, Any]]] | None = None
    for batch in batched(rows, size):
        if pending is not None:
            _upload(pending, uuid_, batch_uuid, ttl, False, client, run.report)
        pending = batch
    if pending is not None:
        _upload(pending, uuid_, batch_uuid, ttl, not run.progress.stopped, client, run.report)


def _upload(batch: list[tuple[int, str, dict[str, Any]]], uuid_: str, batch_uuid: str, ttl: int | None,
            completed: bool, client: OptimoveClient, report: RunReport) -> None:
    client.upload(uuid_, [row for _, _, row in batch], ttl, batch_uuid, completed)
    report.batches += 1
    report.sent += len(batch)


def _quoted(detail: str, key: str) -> str:
    """Optimove's reason with the row's key in quotes, as reasons quote values: the report then counts
    the rows it refused alike as one reason, not one for each key."""
    key = str(key)
    return re.sub(rf"(?<![\w'\"]){re.escape(key)}(?![\w'\"])", lambda _: repr(key), detail, count=1) if key else detail


def _update(rows: Iterable[tuple[int, str, dict[str, Any]]], uuid_: str, pk_field: str, ttl: int | None,
            client: OptimoveClient, settings: Settings, run: FileRun) -> None:
    """Optimove refuses a whole update for one key it does not hold (400, invalid primary key): the
    batch is then sent again in halves until each refused row is alone, and that row is set aside with
    Optimove's reason. Each costs some 2 x log2(batch) requests, so past ``MOST_UPDATES_REFUSED`` the
    file fails instead: its keys are most likely new, and belong under upsert/."""
    refused = 0

    def send(batch: list[tuple[int, str, dict[str, Any]]]) -> None:
        nonlocal refused
        items = [{"primary_key": row[pk_field], "data": {k: v for k, v in row.items() if k != pk_field}, "ttl": ttl}
                 for _, _, row in batch]
        try:
            client.update(uuid_, items)
        except OptimoveError as exc:
            if exc.status != 400:
                raise
            if len(batch) > 1:
                send(batch[:len(batch) // 2])
                send(batch[len(batch) // 2:])
                return
            refused += 1
            if refused > MOST_UPDATES_REFUSED:
                raise ValueError(f"Optimove refused the update of over {MOST_UPDATES_REFUSED} rows one by one, the"
                                 f" last for {exc.detail}; if the records are new, drop the file under upsert/") from None
            line, key, row = batch[0]
            run.rejected.add(line, [f"Optimove refused the update: {_quoted(exc.detail, key)}"], row)
            return
        run.report.batches += 1
        run.report.sent += len(batch)

    for batch in batched(rows, min(settings.optimove_batch_size, MAX_ROWS_PER_UPLOAD)):
        send(batch)


def _delete(open_stream: Callable[[], IO[bytes]], run: FileRun, pk_field: str, uuid_: str, client: OptimoveClient,
            settings: Settings) -> None:
    """A CSV column named for the primary key (or the only column), a JSON list, or JSON Lines of keys;
    a key repeated is deleted once."""
    def key_of(record: Record) -> str | None:
        value = record.data
        if isinstance(value, dict):
            _named_as_the_key(pk_field, value, run.report.read_as)
            if pk_field not in value and len(value) == 1:
                (name, value), = value.items()
                if not record.error and written_alike(name, value):
                    raise ValueError(f"the only column of this file is named {name!r}, which looks like one of the"
                                     f" keys under it: without a first line naming the column ({pk_field}), the"
                                     " first key would be taken for its name and not deleted")
            else:
                value = value.get(pk_field)
        return None if record.error else _key_of(value, pk_field)

    keys = (pk for _, pk in _last_of_each_key(open_stream, run, key_of, f"no {pk_field} to delete", objects_only=False))
    if run.report.dry_run:
        run.report.checked += sum(1 for _ in keys)
        return
    for chunk in batched(keys, min(settings.optimove_batch_size, MAX_ROWS_PER_UPLOAD)):
        client.delete(uuid_, chunk)
        run.report.batches += 1
        run.report.sent += len(chunk)
