"""Suggesting the known name nearest to one that is not known, for error messages.

Example::

    did_you_mean("Customer_ID", ["customer_id", "tier"])  # " (did you mean customer_id?)"
    did_you_mean("shoe_size", ["customer_id", "tier"])  # ""
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean <name>?)`` for a known name close to ``name`` (case aside), else nothing."""
    by_lower = {candidate.lower(): candidate for candidate in known}
    close = difflib.get_close_matches(name.lower(), by_lower, n=1, cutoff=0.75)
    return f" (did you mean {by_lower[close[0]]}?)" if close else ""
