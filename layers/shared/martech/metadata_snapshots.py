"""Snapshots of Monetate metadata in S3: the latest per kind, and history when it changes.

Layout in the inbox bucket::

    metadata/latest/<kind>.json      {"kind", "taken_at", "count", "items": [...]} sorted by id
    metadata/latest/<kind>.csv       the same items for people, one row each
    metadata/latest/refreshed.json   when the last refresh finished, changed or not
    metadata/history/<time>/<kind>.json   a copy of each new content, kept only when it changed

Each object is written with one PutObject, which S3 applies whole: a reader sees the old
snapshot or the new one, never half of either. Lookups keep the parsed snapshot in memory
and ask S3 again (a conditional GET, cheap when nothing changed) after ``cache_seconds``.

Example::

    store = SnapshotStore(s3, bucket)
    change = store.save("pageevent", items, taken_at)   # None when the content is unchanged
    store.latest("pageevent").items[2001]["title"]
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from botocore.exceptions import ClientError

from martech.monetate_metadata import NAME_FIELDS, Changes, changes

LATEST, HISTORY = "metadata/latest/", "metadata/history/"
REFRESHED_KEY = f"{LATEST}refreshed.json"


@dataclass(frozen=True)
class Snapshot:
    kind: str
    taken_at: str  # ISO-8601 UTC, when this content was fetched
    items: dict[int, dict[str, Any]]


def _snapshot(document: dict[str, Any]) -> Snapshot:
    return Snapshot(document["kind"], document["taken_at"], {item["id"]: item for item in document["items"]})


def iso_utc(when: dt.datetime) -> str:
    """``2026-11-23T10:00:00.123456Z``: how snapshots, refreshes and events write a time."""
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404")


def history_stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H%M%S.%fZ")  # two refreshes in one second stay apart


class SnapshotStore:
    def __init__(self, s3: Any, bucket: str, cache_seconds: float = 60) -> None:
        self._s3, self._bucket, self._cache_seconds = s3, bucket, cache_seconds
        self._cache: dict[str, tuple[float, str, Snapshot | None]] = {}  # key -> (checked, etag, snapshot)
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------
    def latest(self, kind: str) -> Snapshot | None:
        """The latest snapshot of ``kind``, or None before the first refresh."""
        return self._cached(f"{LATEST}{kind}.json", _snapshot)  # type: ignore[no-any-return]

    def last_refresh(self) -> dict[str, Any] | None:
        """``{"refreshed_at", "counts", "changed"}`` of the last refresh that finished, or None."""
        return self._cached(REFRESHED_KEY, lambda document: document)  # type: ignore[no-any-return]

    def _cached(self, key: str, build: Any) -> Any:
        with self._lock:
            cached = self._cache.get(key)
        if cached and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[2]
        condition = {"IfNoneMatch": cached[1]} if cached and cached[1] else {}
        try:
            answer = self._s3.get_object(Bucket=self._bucket, Key=key, **condition)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("304", "NotModified") and cached:
                snapshot, etag = cached[2], cached[1]
            elif _missing(exc):
                snapshot, etag = None, ""
            else:
                raise
        else:
            snapshot = build(orjson.loads(answer["Body"].read()))
            etag = answer.get("ETag", "")
        with self._lock:
            self._cache[key] = (time.monotonic(), etag, snapshot)
        return snapshot

    def _read_json(self, key: str) -> Any:
        try:
            return orjson.loads(self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    # -- writing -------------------------------------------------------------------------------
    def save(self, kind: str, items: list[dict[str, Any]], taken_at: dt.datetime) -> Changes | None:
        """Store a freshly fetched ``kind``; None, and nothing written, when its content is unchanged."""
        items = sorted(items, key=lambda item: item["id"])
        previous = self._read_json(f"{LATEST}{kind}.json")
        if previous is not None and orjson.dumps(previous["items"]) == orjson.dumps(items):
            return None
        change = changes(previous["items"] if previous else [], items, NAME_FIELDS[kind])
        body = orjson.dumps({"kind": kind, "taken_at": iso_utc(taken_at), "count": len(items), "items": items})
        # History first: once latest moves on, the content it replaced is already kept.
        self._put(f"{HISTORY}{history_stamp(taken_at)}/{kind}.json", body, "application/json")
        self._put(f"{LATEST}{kind}.json", body, "application/json")
        self._put(f"{LATEST}{kind}.csv", as_csv(items), "text/csv")
        self._forget(f"{LATEST}{kind}.json")
        return change

    def mark_refreshed(self, when: dt.datetime, counts: dict[str, int], changed: list[str]) -> None:
        self._put(REFRESHED_KEY, orjson.dumps({"refreshed_at": iso_utc(when), "counts": counts, "changed": changed}),
                  "application/json")
        self._forget(REFRESHED_KEY)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)


def as_csv(items: list[dict[str, Any]]) -> bytes:
    """One row per item, ``id`` first; lists and objects as JSON text."""
    columns = ["id", *sorted({name for item in items for name in item} - {"id"})]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for item in items:
        writer.writerow([_cell(item.get(name)) for name in columns])
    return out.getvalue().encode()


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return "" if value is None else value
