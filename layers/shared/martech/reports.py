"""What a file run leaves behind: ``reports/<key>.json`` and ``rejected/<key>.jsonl``.

Both are written under the dropped file's key, whichever version of it the run delivered. A run
that goes on from an earlier one (the rest of a big file, a retry) finds what that run left even
when a later version of the file was delivered meanwhile and wrote the same keys: the bucket keeps
their earlier versions, and each says which version of the file it belongs to.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

REPORTS_PREFIX = "reports/"
REJECTED_PREFIX = "rejected/"
_SPOOL_BYTES = 8 * 1024 * 1024  # rejected rows stay in memory up to this, then spill to /tmp
# Errors a report shows, its first and its last: it is kept as the file's idempotency record too,
# and a DynamoDB item holds at most 400 KB.
ERRORS_SHOWN = 50
# What ``retry_later`` notes of a failed run in the file's queue: "transient (try 1 of 5; the next in 5 minutes): ..."
_RETRY_NOTE = re.compile(r"(?:transient|unexpected \w+) \(try \d+ of \d+;")
FILE_VERSION_METADATA = "file-version"  # on rejected/<key>.jsonl: the version of the file its rows came from
_VERSIONS_LOOKED_AT = 20  # of a report or rejected rows, newest first, for those of an earlier file version
# The report counts the rows set aside by reason, the values a reason quotes and the places it names (line,
# column, byte) left out, so that rows refused alike count together; past this many reasons the rest count as one.
REASONS_COUNTED = 100
OTHER_REASONS = "other reasons"
_REASON_CHARS = 300  # of each: the report is the file's idempotency record too, at most 400 KB in DynamoDB
_QUOTED = r"(?<![A-Za-z])(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"  # not from an apostrophe on
_PLACE = r"\b(?P<place>lines?|column|byte) [0-9]+(?:-[0-9]+)?\b|\b0x[0-9a-f]{2}\b"
# A JSON number where a value stands: "score: 1e400 is out of range", "..., found 3" at the end or before "; ".
_NUMBER = r"(?P<number>(?<=: )-?[0-9][0-9.eE+-]*(?= is )|(?<=, found )-?[0-9][0-9.eE+-]*(?=$|; ))"
_VARYING = re.compile(f"{_QUOTED}|{_PLACE}|{_NUMBER}")


def reason_kind(reason: str) -> str:
    """``reason`` as the report counts it: ``lifetime_value: expected a number, found '...'``, ``not UTF-8
    text: byte N of the line is 0x..``, ``exportTimestamp: N is not Unix seconds``, whatever the value,
    number, line, column or byte."""
    return _VARYING.sub(_elided, reason)[:_REASON_CHARS]


def _elided(match: re.Match[str]) -> str:
    if match["number"]:
        return "N"
    if match["place"]:
        return f"{match['place']} N"
    return "0x.." if match[0].startswith("0x") else "'...'"


def report_key(source_key: str) -> str:
    return f"{REPORTS_PREFIX}{source_key}.json"


def rejected_key(source_key: str) -> str:
    return f"{REJECTED_PREFIX}{source_key}.jsonl"


class RetryLater(Exception):
    """A transient failure: the whole file should come back through its queue and be tried again."""


class DiskFull(ValueError):
    """The rejected rows no longer fit on the function's disk: the file stops there, with a report."""


def key_versions(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    """The versions of ``key`` (``VersionId``, ``LastModified``), newest first: the last few."""
    answer = s3.list_object_versions(Bucket=bucket, Prefix=key, MaxKeys=_VERSIONS_LOOKED_AT)
    return [version for version in answer.get("Versions", []) if version["Key"] == key]


def version_report(s3: Any, bucket: str, key: str, version_id: str | None, written_at: dt.datetime | None = None
                   ) -> dict[str, Any] | None:
    """The last report of this version of the file (written at ``written_at``; looked up when not given), when
    a later version of the file may have written its own over it: among the report's versions written since
    this file version was."""
    found = version_report_written(s3, bucket, key, version_id, written_at)
    return found[0] if found else None


def version_report_written(s3: Any, bucket: str, key: str, version_id: str | None, written_at: dt.datetime | None = None
                           ) -> tuple[dict[str, Any], dt.datetime] | None:
    """``version_report``, and when that report was written."""
    if version_id is None:
        return None
    if written_at is None:
        try:
            written_at = s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)["LastModified"]
        except ClientError:
            return None
    for version in key_versions(s3, bucket, report_key(key)):
        if version["LastModified"] >= written_at:
            body = s3.get_object(Bucket=bucket, Key=report_key(key), VersionId=version["VersionId"])["Body"]
            report = json.loads(body.read())
            if report.get("version_id") == version_id:
                return report, version["LastModified"]
    return None


class RejectedRows:
    """Rejected rows of one run, each with its line and reasons, uploaded when the run ends.
    ``file_version``: the dropped file's version, marked on the upload."""

    def __init__(self, s3: Any, bucket: str, source_key: str, file_version: str | None = None) -> None:
        self._s3, self._bucket, self.key, self._file_version = s3, bucket, rejected_key(source_key), file_version
        self._file = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
        self._written = 0  # bytes of whole rows
        self.count = 0
        self.reasons: Counter[str] = Counter()  # rows by reason: see REASONS_COUNTED
        self.discarded = False

    def add(self, line: int, reasons: list[str], record: Any = None) -> None:
        index = getattr(line, "index", None)  # a JSON array's item (records.ItemLine): its place beside the line
        where = {"line": line} if index is None else {"line": line, "index": index}
        entry = json.dumps({**where, "reasons": reasons, "record": record}, default=str).encode() + b"\n"
        try:
            self._file.write(entry)
        except OSError as exc:  # the disk is full: keep the rows written whole, and say so
            self._file.truncate(self._written)
            self._file.seek(self._written)
            raise DiskFull(f"the {self.count:,} rows set aside before line {line} fill the function's disk"
                           f" ({exc.strerror}); mend what they say and drop the file again") from None
        self._written += len(entry)
        self.count += 1
        for reason in reasons:
            kind = reason_kind(reason)
            if kind not in self.reasons and len(self.reasons) >= REASONS_COUNTED:
                kind = OTHER_REASONS
            self.reasons[kind] += 1

    def carry_over(self, count: int, reasons: dict[str, int] | None = None) -> None:
        """Start from the rows an earlier run of the same file version already set aside, and their
        count by reason."""
        if count:
            which = self._earlier_upload()
            if which is None:  # gone, or past the versions looked at: this run's rows are all there will be
                return
            body = self._s3.get_object(Bucket=self._bucket, Key=self.key, **which)["Body"]
            for chunk in iter(lambda: body.read(1 << 20), b""):
                self._file.write(chunk)
                self._written += len(chunk)
            self.count = count
            self.reasons.update(reasons or {})

    def _earlier_upload(self) -> dict[str, str] | None:
        """Which version of the rejected rows this file version's earlier run uploaded, as ``get_object``
        takes it (``{}`` for the current one); None when none is found."""
        try:
            current = self._s3.head_object(Bucket=self._bucket, Key=self.key)
        except ClientError:
            return None
        if self._file_version is None or current["Metadata"].get(FILE_VERSION_METADATA) in (None, self._file_version):
            return {}  # unmarked: written before the marks were, by this file version as far as can be told
        for version in key_versions(self._s3, self._bucket, self.key)[1:]:
            which = {"VersionId": version["VersionId"]}
            if self._s3.head_object(Bucket=self._bucket, Key=self.key, **which)["Metadata"].get(
                    FILE_VERSION_METADATA) == self._file_version:
                return which
        return None

    def discard(self) -> None:
        """Forget this run's rows without uploading them."""
        self._file.close()
        self.discarded = True

    def upload(self) -> str | None:
        """The key written, or None when nothing was rejected."""
        try:
            if not self.count:
                return None
            self._file.seek(0)
            marks = {"Metadata": {FILE_VERSION_METADATA: self._file_version}} if self._file_version else {}
            self._s3.upload_fileobj(self._file, self._bucket, self.key,
                                    ExtraArgs={"ContentType": "application/x-ndjson", **marks})
            return self.key
        finally:
            self._file.close()


@dataclass
class RunReport:
    """Counts, timings and outcome of one file run. ``failed`` counts records not delivered."""

    bucket: str
    key: str
    version_id: str | None
    destination: str
    status: str = "running"
    read: int = 0
    sent: int = 0
    rejected: int = 0
    failed: int = 0
    unknown: int = 0  # sent, but the answer was lost: may or may not have landed
    duplicates: int = 0  # records whose key repeats later in the file: only the last is sent
    reads: int = 0  # records read back from the vendor (merge mode)
    batches: int = 0
    token_refreshes: int = 0
    rejected_rows: str | None = None
    rejected_reasons: dict[str, int] = field(default_factory=dict)  # rows set aside by reason, most first
    resume_from: int = 0  # with status "continuing": records settled so far; the next run starts after them
    runs: int = 1  # invocations the file took
    errors: list[str] = field(default_factory=list)
    waiting_for: dict[str, Any] | None = None  # with status "waiting": the earlier version of the file it waits for
    # Names as the file writes them that were taken as a field written otherwise (Customer ID: customer_id), and
    # (Monetate, UnknownColumns=drop) names left out of what was sent, with why: what a report's counts cannot say.
    read_as: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False  # the object's metadata asked only to check the file (dry-run=true): nothing was sent
    checked: int = 0  # in a dry run, the records that would have been sent
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def finish(self, status: str) -> None:
        self.status = status
        self.finished_at = time.time()

    def retry_later(self, reason: Exception, note: str = "", kind: str = "transient") -> RetryLater:
        """Mark the run as going back to its queue (``note``: which try, and what comes next); the
        caller raises what this returns."""
        self.errors.append(f"{kind} ({note}): {reason}" if note else f"{kind}: {reason}")
        self.finish("retrying")
        return RetryLater(str(reason))

    def fail(self, reason: Exception, rejected: RejectedRows) -> None:
        """A permanent failure: what was read but neither sent, rejected, repeated nor unknown has failed."""
        self.errors.append(str(reason))
        self.failed = max(0, self.read - self.sent - rejected.count - self.duplicates - self.unknown)
        self.finish("failed")

    def close(self, s3: Any, rejected: RejectedRows) -> None:
        """Upload the rejected rows and write the report, however the run ended."""
        self.rejected = rejected.count
        self.rejected_reasons = dict(rejected.reasons.most_common())
        self.rejected_rows = rejected.upload()
        self.write(s3)

    @classmethod
    def carried_over(cls, s3: Any, bucket: str, key: str, version_id: str | None, resume_from: int) -> RunReport | None:
        """The report an earlier run of this file version left to go on from: stopped for time at
        ``resume_from``, or stopped by a transient failure at ``resume_from`` or later. Without a
        version id (a bucket without versioning) the object under the key may have been replaced
        since the failure, so the retry starts from the top."""
        try:
            earlier = json.loads(s3.get_object(Bucket=bucket, Key=report_key(key))["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None
        if earlier.get("version_id") != version_id:
            earlier = version_report(s3, bucket, key, version_id)
            if earlier is None:
                return None
        status, at = earlier.get("status"), earlier.get("resume_from") or 0
        stopped_for_time = status == "continuing" and at == resume_from > 0
        stopped_by_failure = status == "retrying" and version_id is not None and at >= max(resume_from, 1)
        if not (stopped_for_time or stopped_by_failure):
            if status == "retrying" and version_id is not None and at == 0:
                return cls._tried_before(earlier)
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        report = cls(**{k: v for k, v in earlier.items() if k in known})
        report.started_at = _from_iso(earlier["started_at"])
        report.status, report.finished_at, report.runs = "running", None, report.runs + 1
        return report

    @classmethod
    def _tried_before(cls, earlier: dict[str, Any]) -> RunReport:
        """For a run retried after a failure that settled nothing: a report that starts from the top, as
        the run does, and keeps the file's tries (the runs, when the first began, each failure's note)."""
        notes = [error for error in earlier.get("errors", []) if _RETRY_NOTE.match(error)]
        report = cls(earlier["bucket"], earlier["key"], earlier["version_id"], destination=earlier["destination"],
                     runs=int(earlier.get("runs") or 1) + 1, errors=notes)
        report.started_at = _from_iso(earlier["started_at"])
        return report

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if self.destination != "optimove":  # only its files count repeated keys and records read back: elsewhere
            del out["duplicates"], out["reads"]  # a 0 would say no key repeats, which nobody looked at
        if self.destination not in ("monetate", "mona"):  # Optimove takes API keys: no token to refresh
            del out["token_refreshes"]
        if self.waiting_for is None:
            del out["waiting_for"]
        for name in ("read_as", "left_out"):  # none, the usual case: the names as written were the fields
            if not out[name]:
                del out[name]
        if not self.dry_run:
            del out["dry_run"], out["checked"]
        if len(self.errors) > ERRORS_SHOWN:  # a batch's lost answer each, say: the report stays small
            first, last = self.errors[:ERRORS_SHOWN - 10], self.errors[-9:]
            hidden = len(self.errors) - len(first) - len(last)
            out["errors"] = [*first, f"and {hidden} more errors like those above", *last]
        out["started_at"] = _iso(self.started_at)
        out["finished_at"] = _iso(self.finished_at) if self.finished_at else None
        out["seconds"] = round((self.finished_at or time.time()) - self.started_at, 3)
        return out

    def write(self, s3: Any) -> str:
        key = report_key(self.key)
        s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(self.as_dict(), indent=2).encode(),
                      ContentType="application/json")
        return key


def _iso(when: float) -> str:
    """UTC to the millisecond, as people read it: ``2026-05-01T10:15:00.123Z``."""
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _from_iso(when: str | float) -> float:
    if isinstance(when, (int, float)):  # a report written before times were ISO-8601
        return float(when)
    return dt.datetime.fromisoformat(when).timestamp()  # Python 3.11 reads the Z
