"""Cutting a stream of items into batches by count and by encoded size."""

from __future__ import annotations

import json
from typing import Any, TypeVar
from collections.abc import Callable, Iterable, Iterator

T = TypeVar("T")


def json_size(item: Any) -> int:
    return len(json.dumps(item, separators=(",", ":")).encode())


def batched(items: Iterable[T], max_count: int, max_bytes: int | None = None,
            size: Callable[[T], int] = json_size) -> Iterator[list[T]]:
    """Lists of at most ``max_count`` items and, when given, ``max_bytes`` of encoded size.

    An item bigger than ``max_bytes`` on its own still goes out, alone, for the vendor to judge.
    """
    if max_count < 1:
        raise ValueError("max_count must be at least 1")
    batch: list[T] = []
    used = 0
    for item in items:
        item_size = size(item) + 1 if max_bytes else 0  # +1 for the comma between items
        if batch and (len(batch) >= max_count or (max_bytes and used + item_size > max_bytes)):
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += item_size
    if batch:
        yield batch
