"""Sending a file's batches a few at a time, and settling them in the file's order.

A batch is settled (counted in the report, its bad rows written) only once the vendor has
answered for it and for every batch before it. So ``confirmed`` is always a point in the file
before which everything is done for good: when a batch fails for good, the report can say
how far the file got, and the file's retry goes on from there (``FileRun.retry_later``)
instead of sending again what the vendor already holds.

Example::

    sender = OrderedSender(run, partial(post_batch, client, schema), in_flight=4)
    try:
        sender.send_all(batches)  # Batch(through, items, set_aside), in the file's order
    except TransientFailure as exc:
        raise run.retry_later(exc, sender.confirmed) from exc
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from martech.file_runs import FileRun
from martech.readers import UnreadableFile


@dataclass
class Batch:
    """What to send, the records set aside on the way, and how many records from the file's start
    are settled once this batch is."""

    through: int
    items: list[Any]
    set_aside: list[tuple[int, list[str], Any]] = field(default_factory=list)  # (line, reasons, record)


@dataclass
class BatchOutcome:
    """What the vendor did with one batch."""

    sent: int = 0
    unknown: int = 0  # sent, but the answer was lost
    errors: list[str] = field(default_factory=list)
    refused: list[tuple[int, list[str], Any]] = field(default_factory=list)  # (line, reasons, original)

    def merge(self, other: BatchOutcome) -> None:
        self.sent += other.sent
        self.unknown += other.unknown
        self.errors += other.errors
        self.refused += other.refused


# A batch waiting for its answer: how far into the file it reaches, its set-aside rows, its sending.
_InFlight = tuple[int, list[tuple[int, list[str], Any]], "Future[BatchOutcome] | None"]


class OrderedSender:
    """``send(items)`` for each batch with items, at most ``in_flight`` at once, so memory stays flat.

    ``resendable(items)`` says whether the vendor would store the items once however often they are
    sent (an upsert, say). A batch that is not waits until every batch before it is settled: if one
    of those fails, the file's retry sends again the batches after it that were in flight.
    """

    def __init__(self, run: FileRun, send: Callable[[list[Any]], BatchOutcome], in_flight: int,
                 resendable: Callable[[list[Any]], bool] = lambda items: True) -> None:
        self._run, self._send, self._limit, self._resendable = run, send, max(1, in_flight), resendable
        self.confirmed = run.resumed_from

    def send_all(self, batches: Iterable[Batch]) -> None:
        """Raises what ``send`` raised for the first batch that failed; the batches after it are not settled."""
        # What waits for its answer is the batch's place and its set-aside rows, not its items: those go
        # as soon as they are sent, and their memory is reused while still in the cache. Holding them
        # until the answer cost a tenth more CPU per record.
        in_flight: deque[_InFlight] = deque()
        pool = ThreadPoolExecutor(max_workers=self._limit, thread_name_prefix="file-send")
        try:
            try:
                for batch in batches:
                    if batch.items and not self._resendable(batch.items):
                        self._settle_all(in_flight)  # a failed batch ends the sending here
                    sending = pool.submit(self._send, batch.items) if batch.items else None
                    in_flight.append((batch.through, batch.set_aside, sending))
                    del batch
                    if len(in_flight) >= self._limit:
                        self._settle(*in_flight.popleft())
            except UnreadableFile:  # the file broke part way: what was sent before still counts
                self._settle_all(in_flight)
                raise
            self._settle_all(in_flight)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _settle_all(self, in_flight: deque[_InFlight]) -> None:
        while in_flight:
            self._settle(*in_flight.popleft())

    def _settle(self, through: int, set_aside: list[tuple[int, list[str], Any]],
                sending: Future[BatchOutcome] | None) -> None:
        outcome = sending.result() if sending else BatchOutcome()  # raises the batch's failure
        report, rejected = self._run.report, self._run.rejected
        for line, reasons, original in sorted(set_aside + outcome.refused, key=itemgetter(0)):
            rejected.add(line, reasons, original)
        if sending is not None:
            report.batches += 1
        report.sent += outcome.sent
        report.unknown += outcome.unknown
        report.errors += outcome.errors
        self.confirmed = through
