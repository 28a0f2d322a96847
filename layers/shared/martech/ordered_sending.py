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
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from martech.file_runs import FileRun


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
    checked: int = 0  # in a dry run: checked, and not sent
    unknown: int = 0  # sent, but the answer was lost
    errors: list[str] = field(default_factory=list)
    refused: list[tuple[int, list[str], Any]] = field(default_factory=list)  # (line, reasons, original)

    def merge(self, other: BatchOutcome) -> None:
        self.sent += other.sent
        self.checked += other.checked
        self.unknown += other.unknown
        self.errors += other.errors
        self.refused += other.refused


def check_only(items: list[Any], *args: Any, **kwargs: Any) -> BatchOutcome:
    """What a dry run does with a batch in place of sending it (``file_runs.dry_run_asked``): counts it."""
    return BatchOutcome(checked=len(items))


def unsent_reason(failure: Exception, tried: bool) -> str:
    """Why a webhook's record was not sent: its batch was ``tried`` and not taken (it may have
    landed without an answer, which only batches safe to send again allow), or never tried."""
    return f"not taken: {failure}; sending it again is safe" if tried else f"not sent: {failure}"


# A batch waiting for its answer: how far into the file it reaches, its set-aside rows, its sending.
_InFlight = tuple[int, list[tuple[int, list[str], Any]], "Future[BatchOutcome] | None"]


def sendings_in_order(send: Callable[[list[Any]], BatchOutcome], batches: Iterable[Batch], in_flight: int,
                      alone: Callable[[list[Any]], bool] = lambda items: False,
                      keys: Callable[[list[Any]], set[Any]] = lambda items: set()) -> Iterator[_InFlight]:
    """Sends each batch's items, at most ``in_flight`` at once, and yields the batches in their order;
    the caller settles each (waits for its answer) before taking the next.

    A batch is sent only once every earlier batch it must follow is settled: all of them when
    ``alone(items)``, else those sharing one of its ``keys(items)``. A vendor that keeps the later
    record of a key then keeps the file's later row, even when an earlier batch is retried.
    """
    # What waits for its answer is the batch's place and its set-aside rows, not its items: those go
    # as soon as they are sent, and their memory is reused while still in the cache. Holding them
    # until the answer cost a tenth more CPU per record.
    in_flight = max(1, in_flight)
    window: deque[tuple[_InFlight, set[Any]]] = deque()
    pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="send")
    try:
        try:
            for batch in batches:
                sending, batch_keys = None, set()
                if batch.items:
                    if alone(batch.items):
                        follows = len(window)
                    else:
                        batch_keys = keys(batch.items)
                        follows = max((i + 1 for i, (_, earlier) in enumerate(window)
                                       if not batch_keys.isdisjoint(earlier)), default=0)
                    for _ in range(follows):
                        yield window.popleft()[0]
                    sending = pool.submit(send, batch.items)
                window.append(((batch.through, batch.set_aside, sending), batch_keys))
                del batch
                if len(window) >= in_flight:
                    yield window.popleft()[0]
        except Exception:  # the file broke part way, or reading it failed (S3, say): what was sent still counts,
            while window:  # so that a retry does not send it again
                yield window.popleft()[0]
            raise
        while window:
            yield window.popleft()[0]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class OrderedSender:
    """``send(items)`` for each batch with items, at most ``in_flight`` at once, so memory stays flat.

    ``resendable(items)`` says whether the vendor would store the items once however often they are
    sent (an upsert, say). A batch that is not waits until every batch before it is settled: if one
    of those fails, the file's retry sends again the batches after it that were in flight.
    ``keys(items)``: the records' keys, where the vendor keeps a key's later record (see
    ``sendings_in_order``).
    """

    def __init__(self, run: FileRun, send: Callable[[list[Any]], BatchOutcome], in_flight: int,
                 resendable: Callable[[list[Any]], bool] = lambda items: True,
                 keys: Callable[[list[Any]], set[Any]] = lambda items: set()) -> None:
        self._run, self._send, self._limit = run, send, in_flight
        self._alone, self._keys = (lambda items: not resendable(items)), keys
        self.confirmed = run.resumed_from

    def send_all(self, batches: Iterable[Batch]) -> None:
        """Raises what ``send`` raised for the first batch that failed; the batches after it are not settled."""
        with closing(sendings_in_order(self._send, batches, self._limit, self._alone, self._keys)) as sendings:
            for through, set_aside, sending in sendings:
                self._settle(through, set_aside, sending)

    def _settle(self, through: int, set_aside: list[tuple[int, list[str], Any]],
                sending: Future[BatchOutcome] | None) -> None:
        outcome = sending.result() if sending else BatchOutcome()  # raises the batch's failure
        report, rejected = self._run.report, self._run.rejected
        for line, reasons, original in sorted(set_aside + outcome.refused, key=itemgetter(0)):
            rejected.add(line, reasons, original)
        if sending is not None and not outcome.checked:  # a batch only checked, in a dry run, was not sent
            report.batches += 1
        report.sent += outcome.sent
        report.checked += outcome.checked
        report.unknown += outcome.unknown
        report.errors += outcome.errors
        self.confirmed = through
