"""A clock that tests can move forward, so TTLs and token expiry happen without waiting."""

from __future__ import annotations

import threading
import time


class SandboxClock:
    """Wall-clock time plus an offset that only ever grows.

    Example::

        clock = SandboxClock()
        clock.advance(3600)   # every token issued an hour ago has now expired
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
