"""Batches by count and by encoded size."""

from martech.batching import batched


def test_batches_by_count():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_batches_by_size_and_an_oversized_item_goes_alone():
    items = ["a" * 10, "b" * 10, "c" * 50, "d"]
    assert list(batched(items, 100, max_bytes=30, size=len)) == [["a" * 10, "b" * 10], ["c" * 50], ["d"]]
