"""Versions of one file are delivered in the order they were written.

A file written again under its key (a corrected file dropped over a wrong one, an export that keeps its
name every day) while the version before it is still being delivered, or waits for a retry, would race
it: runs of one queue go several at once, and the earlier version's rows, landing last, would overwrite
the later ones. So a version does not start while the version written just before it is unfinished:
not taken yet (no report of it), or its report says it is running, continuing, retrying or waiting in
turn. Each version waits for the one before, so a run of versions goes in order.

An earlier version is waited for only while it was heard from (written, or its report written: a file too
big for one run writes one each run) within a limit, the time its tries can take before the dead-letter
queue: one stuck there, or whose report expired long ago, holds nothing up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from martech.reports import key_versions, version_report_written

UNFINISHED = frozenset({"running", "continuing", "retrying", "waiting"})


@dataclass(frozen=True)
class EarlierVersion:
    version_id: str
    written_at: dt.datetime
    status: str | None  # its report's; None when it has none yet (not taken)

    def as_dict(self) -> dict[str, Any]:
        written = self.written_at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return {"version_id": self.version_id, "written_at": written, "status": self.status or "not taken yet"}


def unfinished_earlier(s3: Any, bucket: str, key: str, version_id: str, limit: dt.timedelta,
                       now: dt.datetime | None = None) -> EarlierVersion | None:
    """The version of ``key`` written just before ``version_id``, when it is unfinished and was heard from
    within ``limit``; else None. S3 lists a key's versions newest first."""
    versions = key_versions(s3, bucket, key)
    ids = [version["VersionId"] for version in versions]
    if version_id not in ids or ids.index(version_id) + 1 == len(ids):
        return None  # the first version, or so far back that later ones crowd it out of the listing
    earlier = versions[ids.index(version_id) + 1]
    if earlier["VersionId"] == "null":
        return None  # written while versioning was off: no report names it
    found = version_report_written(s3, bucket, key, earlier["VersionId"], earlier["LastModified"])
    status, heard_from = (found[0].get("status"), found[1]) if found else (None, earlier["LastModified"])
    if status not in UNFINISHED and status is not None:
        return None
    if heard_from + limit <= (now or dt.datetime.now(dt.UTC)):
        return None  # nothing heard of it for longer than its tries take: stuck in the dead-letter queue, or long gone
    return EarlierVersion(earlier["VersionId"], earlier["LastModified"], status)
