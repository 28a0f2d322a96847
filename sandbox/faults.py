"""Fault injection: the failures a real vendor API shows, on demand.

Faults apply to vendor paths only, never to the ``/_sandbox`` inspection API. They are
drawn per request from independent rates, or taken in order from a script, which makes a
test deterministic: ``script=["500", "429", "drop"]`` fails exactly the next three requests, and
``script=["pass", "pass", "503"]`` fails only the third.
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

# What a request can be answered with instead of its normal answer.
THROTTLE = "429"  # 429 with Retry-After
THROTTLE_BARE = "429-bare"  # 429 without Retry-After
ERROR_500 = "500"
ERROR_503 = "503"
DROP = "drop"  # connection closed before the request is processed
DROP_AFTER = "drop-after"  # processed, then the connection closed without an answer
PASS = "pass"  # in a script only: this request is answered normally

FAULT_KINDS = (THROTTLE, THROTTLE_BARE, ERROR_500, ERROR_503, DROP, DROP_AFTER)


@dataclass
class Faults:
    """Rates are fractions of vendor requests in [0, 1]; latency is in seconds."""

    rate_429: float = 0.0
    rate_429_bare: float = 0.0
    retry_after: float = 1.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_drop: float = 0.0
    rate_drop_after: float = 0.0
    latency: float = 0.0
    token_ttl: float | None = None  # tokens really expire after this, whatever they announce
    paths: str | None = None  # regex on "path?query"; when set, only matching requests get faults
    script: list[str] = field(default_factory=list)
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _rate_field(name: str) -> bool:
    return name.startswith("rate_")


class FaultInjector:
    """Holds the fault settings and draws one outcome per vendor request."""

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = Faults()
        self._random = random.Random()
        self._paths: re.Pattern[str] | None = None
        self.update((faults or Faults()).to_dict())

    @property
    def settings(self) -> Faults:
        return self._faults

    def update(self, changes: dict[str, Any]) -> Faults:
        """Change some settings; unknown names or out-of-range rates raise ValueError."""
        known = {f.name for f in dataclasses.fields(Faults)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}; known: {sorted(known)}")
        merged = {**self._faults.to_dict(), **changes}
        for name, value in merged.items():
            if _rate_field(name) and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for kind in merged["script"]:
            if kind not in (*FAULT_KINDS, PASS):
                raise ValueError(f"unknown fault {kind!r} in script; use one of {(*FAULT_KINDS, PASS)}")
        if merged["latency"] < 0 or merged["retry_after"] < 0:
            raise ValueError("latency and retry_after must not be negative")
        with self._lock:
            self._faults = Faults(**merged)
            self._faults.script = list(merged["script"])
            self._paths = re.compile(merged["paths"]) if merged["paths"] else None
            if "seed" in changes and changes["seed"] is not None:
                self._random.seed(changes["seed"])
        return self._faults

    def clear(self) -> None:
        self.update(Faults().to_dict())

    def applies_to(self, path: str) -> bool:
        return self._paths is None or bool(self._paths.search(path))

    def draw(self) -> str | None:
        """The fault for the next request, or None to answer normally."""
        with self._lock:
            f = self._faults
            if f.script:
                kind = f.script.pop(0)
                return None if kind == PASS else kind
            roll = self._random.random()
            for kind, rate in (
                (THROTTLE, f.rate_429),
                (THROTTLE_BARE, f.rate_429_bare),
                (ERROR_500, f.rate_500),
                (ERROR_503, f.rate_503),
                (DROP, f.rate_drop),
                (DROP_AFTER, f.rate_drop_after),
            ):
                if roll < rate:
                    return kind
                roll -= rate
            return None
