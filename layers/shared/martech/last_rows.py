"""Which row of a file holds the last of its key's rows, with bounded memory however many keys.

A file is read twice: the first pass notes each row's key, the second sends only the rows
``is_last`` says hold their key's last row. Only keys that repeat need their last row
remembered, but telling a repeat needs every key seen so far, at about 90 bytes a key: six
million customers took 919 MB. So the keys are held exactly up to ``exact_keys``; past
that, a Bloom filter of about 2 bytes a key takes their place and tells a key never seen
before, and only keys it cannot rule out are held, with their last row. A key the filter
wrongly takes for seen (about 1% of them) is held with its one row, which changes nothing:
the answers are exact either way. The filter costs about 1 µs a row more (bench/README.md).
Rows are numbered as the caller likes, rising: a JSON array's items may share a line.

Example::

    last = LastRows()
    for number, key in enumerate(first_pass_keys):
        last.note(key, number)
    rows = [row for number, (key, row) in enumerate(second_pass) if last.is_last(key, number)]
"""

from __future__ import annotations

from collections.abc import Hashable

EXACT_KEYS = 1 << 20  # about 90 MB of keys at most
# Two probes in 16 bits a key take about 1.4% of new keys for seen; more probes would cost more
# time than the bits they save.
BITS_PER_KEY = 16
# A new key is looked for in every filter, and each may take it for seen: few filters, then.
GROWTH = 4


class _BloomFilter:
    """A key's two probes are the two halves of its 64-bit hash."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.size = capacity, 0
        self._bits = capacity * BITS_PER_KEY
        self._table = bytearray(self._bits // 8 + 1)

    def holds(self, code: int) -> bool:
        bits, table = self._bits, self._table
        p, q = (code & 0xFFFFFFFF) % bits, (code >> 32) % bits
        return bool(table[p >> 3] & (1 << (p & 7))) and bool(table[q >> 3] & (1 << (q & 7)))

    def add(self, code: int) -> None:
        bits, table = self._bits, self._table
        p, q = (code & 0xFFFFFFFF) % bits, (code >> 32) % bits
        table[p >> 3] |= 1 << (p & 7)
        table[q >> 3] |= 1 << (q & 7)
        self.size += 1


def _code(key: Hashable) -> int:
    return hash(key) & 0xFFFFFFFFFFFFFFFF  # the same key, the same code within one process


class LastRows:
    def __init__(self, exact_keys: int = EXACT_KEYS) -> None:
        self._exact_keys = exact_keys
        self._seen: set[Hashable] | None = set()  # every key so far, until there are too many to hold
        self._filters: list[_BloomFilter] = []  # then these, each added holding GROWTH times as many keys
        self._maybe_repeated: dict[Hashable, int] = {}  # key -> its last row so far

    def note(self, key: Hashable, row: int) -> None:
        """Row number ``row`` (rising from call to call) holds ``key``."""
        repeated, seen = self._maybe_repeated, self._seen
        if key in repeated:
            repeated[key] = row
        elif seen is not None:
            if key in seen:
                repeated[key] = row
            else:
                seen.add(key)
                if len(seen) > self._exact_keys:
                    self._filter_instead(seen)
        else:
            code = _code(key)
            for kept in self._filters:
                if kept.holds(code):
                    repeated[key] = row
                    return
            self._newest().add(code)

    def is_last(self, key: Hashable, row: int) -> bool:
        """Whether row ``row`` holds the last of ``key``'s rows."""
        last = self._maybe_repeated.get(key)
        return last is None or last == row

    @property
    def held(self) -> int:
        """Keys held with their last row: those that repeat, and any the filter took for seen."""
        return len(self._maybe_repeated)

    def _filter_instead(self, seen: set[Hashable]) -> None:
        first = _BloomFilter(GROWTH * len(seen))
        for key in seen:
            first.add(_code(key))
        self._filters, self._seen = [first], None

    def _newest(self) -> _BloomFilter:
        newest = self._filters[-1]
        if newest.size >= newest.capacity:
            newest = _BloomFilter(GROWTH * newest.capacity)
            self._filters.append(newest)
        return newest
