"""ISO-8601 date-times as warehouses export them, which Python's ``fromisoformat`` does not all take.

BigQuery writes ``2024-05-01 10:15:00 UTC``, Snowflake ``2024-05-01 10:15:00.000 -0700``, and
JavaScript ``2024-05-01T10:15:00.000Z``.

Example::

    from_iso("2024-05-01 10:15:00.123 UTC")  # datetime(2024, 5, 1, 10, 15, 0, 123000, tzinfo=UTC)
"""

from __future__ import annotations

import datetime as dt
import re

# A zone after the time: Z, UTC or GMT, or an offset after a space.
_ZONE = re.compile(r"(?<=[0-9])(?:\s*(?:Z|UTC|GMT)|\s+([+-][0-9]{2}(?::?[0-9]{2})?))$", re.IGNORECASE)


def from_iso(text: str) -> dt.datetime:
    """The date-time ``text`` writes; ValueError if it is not ISO-8601 as above."""
    try:
        return dt.datetime.fromisoformat(text)  # most values: the zone is looked at only when this fails
    except ValueError:
        zone = _ZONE.search(text)
        if not zone:
            raise
    return dt.datetime.fromisoformat(text[:zone.start()] + (zone[1] or "+00:00"))
