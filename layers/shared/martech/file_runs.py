"""One run over a dropped file, and carrying a file too big for one run on to the next.

A Lambda run lasts at most 15 minutes. A run still reading at ``stop_at`` stops taking
records, settles what is in flight and ends with status ``continuing`` and ``resume_from``
(records settled from the file's start). The next run, given that number, skips those
records and carries the report's counts and the rejected rows on, so nothing settled is
sent twice and the last run's report covers the whole file. A run that ends ``retrying``
with a ``resume_from`` (a transient failure, after the records before it were settled) is
carried on the same way when its file comes back.

Example::

    run = FileRun(s3, bucket, key, version_id, "mona", resume_from, stop_at)
    try:
        for record in run.records(stream):      # stops between records once time is up
            ...
        run.finish("complete")                  # or "continuing" when it stopped early
    except Transient as exc:
        raise run.retry_later(exc) from exc
    finally:
        run.close()
"""

from __future__ import annotations

import difflib
import gc
import itertools
import time
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from botocore.exceptions import BotoCoreError

from martech.names import written_otherwise
from martech.readers import CsvOptions, Record, UnreadableFile, read_records
from martech.reports import RejectedRows, RetryLater, RunReport
from martech.settings import yes_or_no

T = TypeVar("T")
DRY_RUN = "dry-run"  # object metadata asking only to check the file: aws s3 cp f.csv s3://... --metadata dry-run=true
CHECK_EVERY = 500  # records between looks at the clock
WHOLE_FILE_CHECK_EVERY = 65_536  # records between looks at the clock, where a file must be read whole in a run


@dataclass
class Progress:
    """How far a run has taken the file, and whether it stopped for the next run to go on."""

    settled: int  # records taken from the file, from its start
    stop_at: float | None = None  # on the time.monotonic() clock
    stopped: bool = False

    def time_is_up(self) -> bool:
        self.stopped = self.stop_at is not None and time.monotonic() >= self.stop_at
        return self.stopped


# The collector's first generation runs after this many more objects made than freed (700 by default).
COLLECT_AFTER = 20_000


@cache
def tune_collector_for_files() -> None:
    """Set the garbage collector up for moving records, once per process.

    A file's batches in flight keep a few thousand records alive, so with the default threshold the
    collector ran every hundred records or so (1,055 times for 300,000 records) and often walked
    everything the process holds. Measured on the Monetate delivery: 13.9 -> 11.6 µs of CPU per
    record. Cycles are still collected, after 20,000 objects instead of 700. What the process
    holds before its first file (modules, clients, their service models: some 85,000 objects) is
    frozen out of the full passes."""
    gc.freeze()
    gc.set_threshold(COLLECT_AFTER, *gc.get_threshold()[1:])


def read_whole_in_time(records: Iterable[T], stop_at: float | None, doing: str, unit: str = "records"
                       ) -> Iterator[tuple[int, T]]:
    """(number, record) from 0, for a reading that must go through the whole file in one run (an Optimove
    file's first pass, a Session Stream file). One that cannot before its time is up would time out on
    every retry and never end, so it fails instead: a ValueError that says to split the file."""
    for number, record in enumerate(records):
        if number % WHOLE_FILE_CHECK_EVERY == 0 and number and stop_at is not None and time.monotonic() >= stop_at:
            raise ValueError(f"the file is too big to {doing} in one run ({number:,} {unit} read before the time"
                             " was up); split it into smaller files")
        yield number, record


def dry_run_asked(metadata: Mapping[str, str]) -> bool:
    """Whether the object's metadata asks only to check the file (``dry-run=true``, or ``dry_run``, ``dryRun``):
    read and convert it, set its bad rows aside, send nothing. A value neither true nor false, or a name
    nearly that one (``dryrun``), is a ValueError: taken for false, the file meant only to be checked
    would be sent. Other metadata, that tools add (``mtime``), is let be."""
    name = DRY_RUN if DRY_RUN in metadata else written_otherwise(DRY_RUN, metadata)
    if name is None:
        if near := next((n for n in metadata if difflib.get_close_matches(n.lower(), [DRY_RUN], cutoff=0.8)), None):
            raise ValueError(f"the object's metadata {near}={metadata[near]!r} is no option (did you mean {DRY_RUN}?);"
                             " nothing was sent")
        return False
    raw = metadata[name].strip()
    try:
        return yes_or_no(raw) if raw else False
    except ValueError:
        raise ValueError(f"the object's metadata {DRY_RUN}={raw!r} is neither true nor false; nothing was sent") from None


class FileRun:
    def __init__(self, s3: Any, bucket: str, key: str, version_id: str | None, destination: str,
                 resume_from: int = 0, stop_at: float | None = None, retry_note: str = "",
                 csv_options: CsvOptions = CsvOptions()) -> None:
        tune_collector_for_files()
        self._s3, self.key, self._retry_note, self.csv_options = s3, key, retry_note, csv_options
        report = RunReport.carried_over(s3, bucket, key, version_id, resume_from)
        if report is None:  # a first run, or the earlier runs' report is gone: start from the top
            report = RunReport(bucket, key, version_id, destination=destination)
            # "running", for whoever looks before the run ends: the file was taken, and when. A later run
            # leaves the report it goes on from (continuing, retrying) as it is, since a retry reads it.
            report.write(s3)
        resume_from = report.resume_from  # a run retried after a transient failure goes on where it got to
        self.report, self.resumed_from = report, resume_from
        self.rejected = RejectedRows(s3, bucket, key, version_id)
        self.rejected.carry_over(report.rejected, report.rejected_reasons)
        self.progress = Progress(resume_from, stop_at)

    def records(self, stream: IO[bytes], objects_only: bool = True) -> Iterator[Record]:
        """The file's records after those earlier runs settled, one at a time, each counted as read
        and settled; the iteration ends early, between records, once time is up. ``objects_only``: as
        ``read_records`` takes it."""
        progress, report, first = self.progress, self.report, self.progress.settled
        for record in itertools.islice(read_records(stream, self.key, objects_only, options=self.csv_options), first,
                                       None):
            # The record in hand is not counted yet: if time is up, the next run starts with it.
            if (progress.settled - first) % CHECK_EVERY == 0 and progress.settled > first and progress.time_is_up():
                return
            progress.settled += 1
            report.read += 1
            yield record

    def batches(self, stream: IO[bytes], size: int, columns: list[str] | None = None) -> Iterator[list[Record]]:
        """As ``records``, ``size`` records at a time, taken by C code rather than one by one in
        Python. Time is looked at between batches. When the file breaks, the records read before
        it come as a last batch before the UnreadableFile. ``columns``: as ``read_records`` takes it."""
        progress, report = self.progress, self.report
        records = itertools.islice(read_records(stream, self.key, columns=columns, options=self.csv_options),
                                   progress.settled, None)
        while True:
            batch: list[Record] = []
            try:
                batch.extend(itertools.islice(records, size))  # keeps what was read if the reader raises
            except UnreadableFile:
                progress.settled += len(batch)
                report.read += len(batch)
                if batch:
                    yield batch
                raise
            # The batch in hand is not counted yet: if time is up, the next run starts with it.
            if not batch or (progress.settled > self.resumed_from and progress.time_is_up()):
                return
            progress.settled += len(batch)
            report.read += len(batch)
            yield batch

    def finish(self, status: str) -> None:
        """``status`` when the whole file was read; ``continuing`` when time ran out first."""
        if self.progress.stopped:
            self.report.resume_from = self.progress.settled
            self.report.finish("continuing")
        else:
            self.report.resume_from = 0
            self.report.finish(status)

    def retry_later(self, reason: Exception, confirmed: int | None = None, kind: str = "transient") -> RetryLater:
        """What to raise for a transient failure. ``confirmed``: records from the file's start that are
        settled for good (sent, set aside, refused), when the caller knows. The report then says
        ``retrying`` from there, and the retry goes on after them instead of sending them again.
        Otherwise a continued run leaves the earlier runs' report as it was, so the retry goes on
        from the same record."""
        if confirmed is not None and confirmed > self.resumed_from:
            self.report.read = self.report.resume_from = confirmed
            return self.report.retry_later(reason, self._retry_note, kind)
        if self.resumed_from:
            self.rejected.discard()
            return RetryLater(str(reason))
        return self.report.retry_later(reason, self._retry_note, kind)

    def unexpected(self, exc: Exception, confirmed: int | None = None) -> RetryLater:
        """What to raise for an error no handler expected: S3 failing part way through the file (transient),
        or a fault in this code or in a library's. The report says what it was, instead of ``running``
        for good, and the file goes back to its queue as for a transient failure, until the dead-letter
        queue takes it."""
        kind = "transient" if isinstance(exc, BotoCoreError) else f"unexpected {type(exc).__name__}"
        return self.retry_later(exc, confirmed, kind=kind)

    def fail(self, reason: Exception) -> None:
        self.report.fail(reason, self.rejected)

    def close(self) -> None:
        """Write the report and the rejected rows, unless a continued run is being retried."""
        if not self.rejected.discarded:
            self.report.close(self._s3, self.rejected)
