"""Suggesting the known name nearest to one that is not known, for error messages; finding a
name written in another case, as warehouses export headers.

Example::

    did_you_mean("Customer_ID", ["customer_id", "tier"])  # " (did you mean customer_id?)"
    did_you_mean("shoe_size", ["customer_id", "tier"])  # ""
    did_you_mean("id", ["customer_id", "tier"])  # " (did you mean customer_id?)"
    in_another_case("customer_id", ["CUSTOMER_ID", "TIER"])  # "CUSTOMER_ID"
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

_WORD_BREAKS = re.compile(r"[\W_]+")  # snake_case, kebab-case, dotted and spaced names


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean <name>?)`` for a known name close to ``name`` (case aside), or else the one
    known name that holds ``name`` as a word, or is a word of it (``id`` and ``customer_id``,
    ``email`` and ``email_hash``); nothing when there is none, or several."""
    by_lower = {candidate.lower(): candidate for candidate in known}
    # A short name has few letters to match: one wrong in four (?idz for ?ids) is still near.
    close = difflib.get_close_matches(name.lower(), by_lower, n=1, cutoff=0.75 if len(name) > 4 else 0.6)
    if not close:
        close = [lower for lower in by_lower if _word_of(name.lower(), lower) or _word_of(lower, name.lower())]
    return f" (did you mean {by_lower[close[0]]}?)" if len(close) == 1 else ""


def _word_of(word: str, name: str) -> bool:
    return len(word) >= 2 and word != name and word in _WORD_BREAKS.split(name)


def in_another_case(wanted: str, names: Iterable[str]) -> str | None:
    """The one name among ``names`` that is ``wanted`` written in another case (``CUSTOMER_ID`` for
    ``customer_id``), or None: when there is none, or more than one and nothing says which."""
    found = [name for name in names if name != wanted and name.lower() == wanted.lower()]
    return found[0] if len(found) == 1 else None
