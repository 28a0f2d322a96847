"""Suggesting the known name nearest to one that is not known, for error messages; finding a
name written in another case, as warehouses export headers.

Example::

    did_you_mean("Customer_ID", ["customer_id", "tier"])  # " (did you mean customer_id?)"
    did_you_mean("shoe_size", ["customer_id", "tier"])  # ""
    in_another_case("customer_id", ["CUSTOMER_ID", "TIER"])  # "CUSTOMER_ID"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean <name>?)`` for a known name close to ``name`` (case aside), else nothing."""
    by_lower = {candidate.lower(): candidate for candidate in known}
    close = difflib.get_close_matches(name.lower(), by_lower, n=1, cutoff=0.75)
    return f" (did you mean {by_lower[close[0]]}?)" if close else ""


def in_another_case(wanted: str, names: Iterable[str]) -> str | None:
    """The one name among ``names`` that is ``wanted`` written in another case (``CUSTOMER_ID`` for
    ``customer_id``), or None: when there is none, or more than one and nothing says which."""
    found = [name for name in names if name != wanted and name.lower() == wanted.lower()]
    return found[0] if len(found) == 1 else None
