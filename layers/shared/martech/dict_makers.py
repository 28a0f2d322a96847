"""Making many dicts with the same keys, fast.

``dict_maker(keys)`` returns a function that takes one value per key, in order, and returns
the dict. It is a dict display compiled once per set of keys, as namedtuple makes its
classes: about twice as fast as ``dict(zip(keys, values))``, which matters where a file's
every row becomes a dict. Keys come from files, so they go into the code through repr(),
which always makes a plain string literal.

Example::

    make = dict_maker(("id", "tier"))
    make("c1", "gold")  # {"id": "c1", "tier": "gold"}
    list(map(make, ids, tiers))  # one dict per pair
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=256)  # a process sees a few headers and schemas; each is compiled once
def dict_maker(keys: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    if not all(type(key) is str for key in keys):  # only a str's repr() is sure to be a plain literal
        raise TypeError("dict_maker takes text keys only")
    params = ", ".join(f"v{i}" for i in range(len(keys)))
    items = ", ".join(f"{key!r}: v{i}" for i, key in enumerate(keys))
    return eval(f"lambda {params}: {{{items}}}", {})  # noqa: S307 - the text is built above from repr()s
