"""Sending batches a few at a time: which batch waits for which."""

import threading

import pytest

from martech.ordered_sending import Batch, BatchOutcome, sendings_in_order
from martech.readers import UnreadableFile


class Recorder:
    """A vendor: notes, as each batch is sent, which batches were settled by then. A batch in
    ``overlaps`` answers only once the batch named there has been sent, if that comes in time."""

    def __init__(self, overlaps=None):
        self.settled: list[str] = []
        self.seen_settled: dict[str, list[str]] = {}
        self.started = {name: threading.Event() for name in "abcd"}
        self.overlaps = overlaps or {}
        self.overlapped: dict[str, bool] = {}

    def send(self, items):
        name = items[0][0]
        self.seen_settled[name] = list(self.settled)
        self.started[name].set()
        if name in self.overlaps:
            self.overlapped[name] = self.started[self.overlaps[name]].wait(timeout=1)
        return BatchOutcome(sent=len(items))

    def run(self, batches, **rules):
        for through, _, sending in sendings_in_order(self.send, batches, 4, **rules):
            sending.result()
            self.settled.append("abcd"[through - 1])


def batch(through, name, *keys):
    return Batch(through, [(name, key) for key in keys])


def by_key(items):
    return {key for _, key in items}


def test_a_batch_sharing_a_key_waits_for_the_earlier_batch_and_the_others_do_not():
    vendor = Recorder(overlaps={"a": "b", "c": "d"})
    vendor.run([batch(1, "a", "k1", "k2"), batch(2, "b", "k3"), batch(3, "c", "k2"), batch(4, "d", "k4")], keys=by_key)
    assert "a" in vendor.seen_settled["c"]  # k2: sent once "a" was answered, not before
    assert vendor.overlapped == {"a": True, "c": True}  # "b" went out while "a" was in flight, "d" while "c" was
    assert vendor.settled == ["a", "b", "c", "d"]


def test_a_batch_sharing_a_key_with_a_later_one_in_flight_waits_for_every_batch_up_to_it():
    vendor = Recorder()
    vendor.run([batch(1, "a", "k1"), batch(2, "b", "k2"), batch(3, "c", "k2")], keys=by_key)
    assert vendor.seen_settled["c"] == ["a", "b"]  # settling keeps the file's order


def test_a_batch_that_must_go_alone_waits_for_every_earlier_batch():
    vendor = Recorder()
    vendor.run([batch(1, "a", "k1"), batch(2, "b", "k2"), batch(3, "c", "k3")], alone=lambda items: items[0][0] == "c")
    assert vendor.seen_settled["c"] == ["a", "b"]


def test_without_rules_batches_go_out_together():
    vendor = Recorder(overlaps={"a": "c"})
    vendor.run([batch(1, "a", "k1"), batch(2, "b", "k1"), batch(3, "c", "k1")])
    assert vendor.overlapped == {"a": True}  # the third went out while the first was in flight


@pytest.mark.parametrize("failure", [UnreadableFile("truncated"), ConnectionResetError("S3 stopped answering")])
def test_when_the_file_breaks_or_cannot_be_read_on_what_was_sent_is_still_settled_before_the_error(failure):
    vendor = Recorder()

    def broken():
        yield batch(1, "a", "k1")
        yield batch(2, "b", "k2")
        raise failure

    with pytest.raises(type(failure)):
        vendor.run(broken(), keys=by_key)
    assert vendor.settled == ["a", "b"]  # counted, so that the file's retry does not send them again
