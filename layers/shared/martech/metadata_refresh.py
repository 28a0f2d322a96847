"""A metadata refresh: fetch every kind, store what changed, tell EventBridge what changed.

Every kind is fetched before anything is written, so a refresh that cannot finish (a page
that keeps failing) leaves every snapshot as it was. An unchanged kind writes nothing and
publishes nothing; each changed kind publishes one event::

    source       martech.monetate-metadata
    detail-type  Monetate metadata changed
    detail       {"kind", "taken_at", "history", "added", "removed", "renamed", "counts"}
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson

from martech.metadata_snapshots import HISTORY, SnapshotStore, history_stamp, iso_utc
from martech.monetate_metadata import KINDS, Changes, MetadataClient

EVENT_SOURCE = "martech.monetate-metadata"
EVENT_DETAIL_TYPE = "Monetate metadata changed"
MAX_DETAIL_BYTES = 200_000  # EventBridge takes 256 KB per entry; longer id lists are cut and marked


@dataclass
class RefreshResult:
    refreshed_at: str
    counts: dict[str, int] = field(default_factory=dict)
    changed: dict[str, Changes] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"refreshed_at": self.refreshed_at, "counts": self.counts,
                "changed": {kind: change_counts(c) for kind, c in self.changed.items()}}


def change_counts(change: Changes) -> dict[str, int]:
    return {"added": len(change.added), "removed": len(change.removed), "renamed": len(change.renamed)}


def refresh(client: MetadataClient, store: SnapshotStore, events: Any, event_bus: str,
            now: dt.datetime | None = None) -> RefreshResult:
    """Raises ``RefreshFailed`` (nothing written) when a kind cannot be fetched whole."""
    now = now or dt.datetime.now(dt.UTC)
    fetched = {kind: client.fetch_all(kind) for kind in KINDS}
    result = RefreshResult(iso_utc(now), {kind: len(items) for kind, items in fetched.items()})
    for kind, items in fetched.items():
        change = store.save(kind, items, now)
        if change is not None:
            result.changed[kind] = change
    store.mark_refreshed(now, result.counts, sorted(result.changed))
    entries = [change_event(kind, change, now, result.counts[kind], event_bus) for kind, change in result.changed.items()]
    for start in range(0, len(entries), 10):  # PutEvents takes 10 entries a call
        answer = events.put_events(Entries=entries[start:start + 10])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused {answer['FailedEntryCount']} metadata change events")
    return result


def change_event(kind: str, change: Changes, when: dt.datetime, count: int, event_bus: str) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "kind": kind, "taken_at": iso_utc(when),
        "history": f"{HISTORY}{history_stamp(when)}/{kind}.json",
        "counts": {**change_counts(change), "items": count},
        "added": change.added, "removed": change.removed, "renamed": change.renamed,
    }
    encoded = orjson.dumps(detail)
    if len(encoded) > MAX_DETAIL_BYTES:  # a first refresh adds every id: the history object has them all
        share = MAX_DETAIL_BYTES / len(encoded)
        for name in ("added", "removed", "renamed"):
            detail[name] = detail[name][: int(len(detail[name]) * share * 0.9)]
        detail["truncated"] = True
        encoded = orjson.dumps(detail)
    return {"Source": EVENT_SOURCE, "DetailType": EVENT_DETAIL_TYPE, "Detail": encoded.decode(),
            "EventBusName": event_bus}
