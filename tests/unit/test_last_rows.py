"""Telling the row that holds a key's last row, exactly, in memory bounded however many keys."""

import random
import tracemalloc

import pytest

from martech.last_rows import LastRows


@pytest.mark.parametrize("exact_keys", [1_000_000, 50])  # keys held exactly throughout, or a Bloom filter soon
def test_the_last_row_of_every_key_is_told_exactly(exact_keys):
    rng = random.Random(7)
    keys = [f"k{rng.randrange(30_000)}" if rng.random() < 0.3 else f"once-{i}" for i in range(60_000)]
    last = LastRows(exact_keys)
    for row, key in enumerate(keys):
        last.note(key, row)
    expected = {key: row for row, key in enumerate(keys)}
    assert [last.is_last(key, row) for row, key in enumerate(keys)] == [expected[key] == row for row, key in enumerate(keys)]


def test_past_the_keys_held_exactly_only_the_repeated_and_a_few_more_are_held():
    last = LastRows(exact_keys=10_000)
    for row in range(100_000):
        last.note(f"c{row}", row)
    for row in range(100_000, 100_100):
        last.note(f"c{row - 100_000}", row)  # 100 keys repeated
    assert 100 <= last.held < 100 + 3_000  # two filters, each taking about 1.4% of new keys for seen at most
    assert not last.is_last("c5", 5) and last.is_last("c5", 100_005) and last.is_last("c500", 500)


def test_memory_grows_by_bits_per_key_not_by_the_keys():
    def peak(exact_keys: int) -> int:
        tracemalloc.start()
        last = LastRows(exact_keys)
        for row in range(60_000):
            last.note(f"customer-{row:012d}", row)  # each key is freed once noted, unless held
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    held_exactly, filtered = peak(1_000_000), peak(1_000)
    assert held_exactly > 4 << 20  # some 90 bytes a key
    assert filtered < 1 << 20  # some 10 bits a key, as its filters grow
