"""Monetate Session Stream files made readable: ids turned into names from the metadata snapshots.

A file dropped at ``monetate-sessions/<file>`` (JSON Lines, optionally gzip) becomes
``interpreted/<file>``: every session as it came, plus an ``interpreted`` object with its page
events (id, title, time), experiences (offer, experience id and name, variant id, split
letter) and custom targets (id, title, value). Beside it, ``interpreted/<file>.summary.json``
answers what the vendor's example script prints: the most-seen experiences, the page events
triggered in each city, and every id the snapshots do not know, with how often it was seen.

Offers read ``"<experience id>-<variant suffix>"``; the suffix is the variant's id, whose
``split_name`` is the split letter **[inferred: the vendor names the parts, not the suffix]**.
"""

from __future__ import annotations

import datetime as dt
import gzip
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import IO, Any
from collections.abc import Callable

import orjson

from martech.file_runs import FileRun, read_whole_in_time
from martech.metadata_snapshots import Snapshot, SnapshotStore
from martech.monetate_auth import AuthUnavailable, MonetateAuthError
from martech.monetate_metadata import RefreshFailed
from martech.readers import JSON_LINES, UnreadableFile, read_records
from martech.strict_json import json_kind

PREFIX, OUTPUT_PREFIX = "monetate-sessions/", "interpreted/"
TOP_EXPERIENCES = 10
UNKNOWN_CITY = "(no city)"


def output_key(key: str) -> str:
    """``monetate-sessions/2024/05/01/10.json.gz`` -> ``interpreted/2024/05/01/10.json.gz``."""
    if not key.startswith(PREFIX) or key == PREFIX:
        raise ValueError(f"{key}: Session Stream files go to {PREFIX}<file>")
    return OUTPUT_PREFIX + key[len(PREFIX):]


def summary_key(key: str) -> str:
    return output_key(key) + ".summary.json"


@dataclass
class Names:
    """The snapshots an interpretation reads; a kind not yet fetched knows no ids."""

    pageevent: dict[int, dict[str, Any]] = field(default_factory=dict)
    customtarget: dict[int, dict[str, Any]] = field(default_factory=dict)
    variant: dict[int, dict[str, Any]] = field(default_factory=dict)
    experience: dict[int, dict[str, Any]] = field(default_factory=dict)
    taken_at: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def from_snapshots(cls, latest: Callable[[str], Snapshot | None]) -> Names:
        found = {kind: latest(kind) for kind in ("pageevent", "customtarget", "variant", "experience-summary")}
        items = {kind: snapshot.items if snapshot else {} for kind, snapshot in found.items()}
        return cls(items["pageevent"], items["customtarget"], items["variant"], items["experience-summary"],
                   {kind: snapshot.taken_at if snapshot else None for kind, snapshot in found.items()})


@dataclass
class Interpretation:
    sessions: int = 0
    rejected: int = 0  # lines that could not be read
    experiences: Counter[int] = field(default_factory=Counter)  # sessions that saw each experience
    events_by_city: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    unknown: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def summary(self, names: Names) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "rejected": self.rejected,
            "snapshots": names.taken_at,
            "top_experiences": [
                {"experience_id": eid, "experience_name": _experience_name(names, eid), "sessions": count}
                for eid, count in self.experiences.most_common(TOP_EXPERIENCES)],
            "page_events_by_city": {city: dict(counts.most_common()) for city, counts in sorted(self.events_by_city.items())},
            "unknown_ids": {kind: dict(counts.most_common()) for kind, counts in sorted(self.unknown.items())},
        }


def _experience_name(names: Names, experience_id: int) -> str | None:
    return (names.experience.get(experience_id) or {}).get("experience_name")


def _as_id(raw: Any) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _titled(raw_id: Any, items: dict[int, dict[str, Any]], kind: str, seen: Interpretation) -> tuple[Any, str | None]:
    """(id, title) of a page event or custom target; an id the snapshot lacks is counted as unknown."""
    item_id = _as_id(raw_id)
    title = (items.get(item_id) or {}).get("title") if item_id is not None else None
    if title is None:
        seen.unknown[kind][str(raw_id)] += 1
    return (item_id if item_id is not None else raw_id), title


# What each part of a session must be for it to be read; any may be missing or null.
_SHAPES: dict[str, tuple[tuple[type, ...], str]] = {
    "page_event_ids": ((dict,), "an object of page event ids and their times"),
    "offers": ((list,), 'an array of offers ("<experience id>-<variant id>")'),
    "custom_targets": ((dict,), "an object of custom target ids and their values"),
    "city": ((str, int, float), "text"),
}


def session_problems(session: dict[str, Any]) -> list[str]:
    """Why the session cannot be interpreted: a part that is not what the Session Stream writes."""
    return [f"{name}: expected {what}, found {json_kind(session[name])}"
            for name, (types, what) in _SHAPES.items()
            if session.get(name) is not None and (not isinstance(session[name], types) or isinstance(session[name], bool))]


def interpret_session(session: dict[str, Any], names: Names, seen: Interpretation) -> dict[str, Any]:
    """The session with an ``interpreted`` object; what it saw is counted in ``seen``."""
    city = str(session.get("city") or UNKNOWN_CITY)
    page_events = []
    for raw_id, when in (session.get("page_event_ids") or {}).items():
        event_id, title = _titled(raw_id, names.pageevent, "pageevent", seen)
        page_events.append({"id": event_id, "title": title, "time": when})
        seen.events_by_city[city][title or f"unknown page event {raw_id}"] += 1
    experiences, seen_here = [], set()
    for offer in session.get("offers") or []:
        experiences.append(_offer(str(offer), names, seen))
        if experiences[-1]["experience_id"] is not None:
            seen_here.add(experiences[-1]["experience_id"])
    seen.experiences.update(seen_here)
    targets = []
    for raw_id, value in (session.get("custom_targets") or {}).items():
        target_id, title = _titled(raw_id, names.customtarget, "customtarget", seen)
        targets.append({"id": target_id, "title": title, "value": value})
    seen.sessions += 1
    return {**session, "interpreted": {"page_events": page_events, "experiences": experiences,
                                       "custom_targets": targets}}


def _offer(offer: str, names: Names, seen: Interpretation) -> dict[str, Any]:
    experience_part, _, variant_part = offer.partition("-")
    experience_id, variant_id = _as_id(experience_part), _as_id(variant_part)
    variant = names.variant.get(variant_id) if variant_id is not None else None
    name = _experience_name(names, experience_id) if experience_id is not None else None
    if name is None and variant and variant.get("experience_id") == experience_id:
        name = variant.get("experience_name")
    if name is None:
        seen.unknown["experience"][experience_part] += 1
    if variant is None or variant.get("experience_id") != experience_id:
        seen.unknown["variant"][offer] += 1
        variant = None
    return {"offer": offer, "experience_id": experience_id, "experience_name": name,
            "variant_id": variant_id, "split": variant.get("split_name") if variant else None}


Reject = Callable[[int, list[str], Any], None]  # (line, reasons, the line as read)


def interpret(stream: IO[bytes], key: str, names: Names, out: IO[bytes], reject: Reject | None = None,
              stop_at: float | None = None) -> Interpretation:
    """Read the sessions of ``stream`` and write them, interpreted, as JSON Lines to ``out``; lines
    that cannot be read go to ``reject``, as they come (a file of them all would not fit in memory).
    A file not read through by ``stop_at`` (``time.monotonic()``) is a ValueError that says to split it."""
    seen = Interpretation()
    records = read_records(stream, key, fmt=JSON_LINES)  # JSON Lines whatever the extension (.json hourly files)
    for _, record in read_whole_in_time(records, stop_at, "interpret", "sessions"):
        problems = [record.error] if record.error else session_problems(record.data)
        if problems:
            seen.rejected += 1
            if reject:
                reject(record.line, problems, record.data)
            continue
        out.write(orjson.dumps(interpret_session(record.data, names, seen)) + b"\n")
    return seen


def interpret_to_file(stream: IO[bytes], key: str, names: Names, reject: Reject | None = None,
                      stop_at: float | None = None) -> tuple[Interpretation, IO[bytes]]:
    """Interpret into a temporary file (gzip when the source is), so memory stays flat; the
    caller uploads and closes it."""
    spool = tempfile.TemporaryFile()
    try:
        if key.endswith(".gz"):
            with gzip.GzipFile(fileobj=spool, mode="wb") as zipped:
                seen = interpret(stream, key, names, zipped, reject, stop_at)  # type: ignore[arg-type]
        else:
            seen = interpret(stream, key, names, spool, reject, stop_at)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return seen, spool


def interpret_dropped(s3: Any, open_stream: Callable[[], IO[bytes]], bucket: str, key: str, version_id: str | None,
                      store: SnapshotStore, stale_seconds: float, refresh_now: Callable[[], Any],
                      stop_at: float | None = None) -> dict[str, Any]:
    """Interpret one dropped file and write the interpreted sessions, the summary and the report;
    answers where they are, with the counts. A file that cannot be read through by ``stop_at``
    fails with a report that says to split it, rather than time out on every retry.

    Ids the snapshots do not know refresh them first when the last refresh is older than
    ``stale_seconds``; if that changed anything, the file is read again with the new names.
    """
    run = FileRun(s3, bucket, key, version_id, "interpreted")
    refresh: dict[str, Any] = {"triggered": False}
    try:
        names = Names.from_snapshots(store.latest)
        seen, spool = interpret_to_file(open_stream(), key, names, run.rejected.add, stop_at)
        if seen.unknown and _older_than(store.last_refresh(), stale_seconds):
            refresh = {"triggered": True, "reason": "ids the snapshots do not know, and the last refresh is old"}
            try:
                result = refresh_now()
                refresh["changed"] = sorted(result.changed)
            except (RefreshFailed, MonetateAuthError, AuthUnavailable) as exc:  # the first reading stands
                refresh["error"] = str(exc)
            if refresh.get("changed"):
                spool.close()
                names = Names.from_snapshots(store.latest)
                seen, spool = interpret_to_file(open_stream(), key, names, stop_at=stop_at)  # unreadable lines: set aside once
        with spool:
            s3.upload_fileobj(spool, bucket, output_key(key), ExtraArgs={"ContentType": "application/x-ndjson"})
        run.report.read, run.report.sent = seen.sessions + seen.rejected, seen.sessions
        summary = {"file": key, "interpreted": output_key(key), **seen.summary(names), "refresh": refresh}
        s3.put_object(Bucket=bucket, Key=summary_key(key), Body=orjson.dumps(summary, option=orjson.OPT_INDENT_2),
                      ContentType="application/json")
        run.finish("complete")
        # What is answered is kept as the file's idempotency record (400 KB at most); the tables by city
        # and the unknown ids can be far larger, and are in the summary's object.
        brief = ("file", "interpreted", "sessions", "rejected", "refresh")
        return {"summary": summary_key(key), **{name: summary[name] for name in brief},
                "finished_at": run.report.as_dict()["finished_at"]}
    except (UnreadableFile, ValueError) as exc:
        run.fail(exc)
        return {"file": key, "error": str(exc), "finished_at": run.report.as_dict()["finished_at"]}
    except Exception as exc:
        raise run.unexpected(exc) from exc
    finally:
        run.close()


def _older_than(last_refresh: dict[str, Any] | None, seconds: float) -> bool:
    if not last_refresh:
        return True
    refreshed = dt.datetime.fromisoformat(last_refresh["refreshed_at"])
    return (dt.datetime.now(dt.UTC) - refreshed).total_seconds() > seconds
