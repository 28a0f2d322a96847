"""Suggesting the known name nearest to one that is not known, for error messages; finding a
name written otherwise: in another case, as warehouses export headers, with spaces, as BI tools and
spreadsheets show them, or in camelCase, as APIs write JSON.

Example::

    did_you_mean("Customer_ID", ["customer_id", "tier"])  # " (did you mean customer_id?)"
    did_you_mean("shoe_size", ["customer_id", "tier"])  # ""
    did_you_mean("id", ["customer_id", "tier"])  # " (did you mean customer_id?)"
    written_otherwise("customer_id", ["CUSTOMER_ID", "TIER"])  # "CUSTOMER_ID"
    written_otherwise("customer_id", ["Customer ID", "Tier"])  # "Customer ID"
    written_otherwise("customer_id", ["customerId", "tier"])  # "customerId"
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from collections.abc import Iterable

_WORD_BREAKS = re.compile(r"[\W_]+")  # snake_case, kebab-case, dotted and spaced names
_CAMEL_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")  # customerId, CustomerID
_SPACES = re.compile(r"[\s.-]+")  # Customer ID, customer-id, customer.id


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


@lru_cache(maxsize=4096)  # a file's names come again in every record
def spellings(name: str) -> frozenset[str]:
    """The forms two names written alike share: ``name`` in lower case, and its words joined by
    underscores (``Customer ID``, ``customer-id``, ``customerId`` and ``CUSTOMER_ID`` are ``customer_id``).
    Underscores at either end stay: ``_id`` is not ``id``."""
    return frozenset((name.lower(), _SPACES.sub("_", _CAMEL_BREAK.sub("_", name)).lower()))


def written_otherwise(wanted: str, names: Iterable[str]) -> str | None:
    """The one name among ``names`` that is ``wanted`` written otherwise (``CUSTOMER_ID``, ``Customer ID``
    or ``customerId`` for ``customer_id``), or None: when there is none, or more than one and nothing
    says which."""
    forms = spellings(wanted)
    found = [name for name in names if name != wanted and not forms.isdisjoint(spellings(name))]
    return found[0] if len(found) == 1 else None


class SpelledAlike:
    """Known names (a schema's fields) found by a name written otherwise (``spellings``); a form two of
    them share names neither, since nothing says which is meant."""

    def __init__(self, known: Iterable[str]) -> None:
        owners: dict[str, set[str]] = {}
        for name in known:
            for form in spellings(name):
                owners.setdefault(form, set()).add(name)
        self._by_form = {form: next(iter(names)) for form, names in owners.items() if len(names) == 1}

    def get(self, name: str) -> str | None:
        """The one known name ``name`` is written like, or None."""
        found = {self._by_form[form] for form in spellings(name) if form in self._by_form}
        return found.pop() if len(found) == 1 else None
