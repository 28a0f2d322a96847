"""EventBridge schedules, locally: the rule is made in moto, and a timer invokes the function
with the event EventBridge sends for a schedule. ``rate(...)`` expressions tick on their own;
``cron(...)`` ones run only when fired by hand (``ScheduleTimer.fire``)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from typing import Any

from sandbox.local.functions import LocalFunction
from sandbox.local.template import PSEUDO

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
log = logging.getLogger(__name__)


def interval_seconds(expression: str) -> float | None:
    """Seconds between runs of a ``rate(...)`` expression; None for ``cron(...)``."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


def scheduled_event(rule_arn: str, when: dt.datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends a function when its schedule fires."""
    when = when or dt.datetime.now(dt.UTC)
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": PSEUDO["AWS::AccountId"], "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": PSEUDO["AWS::Region"], "resources": [rule_arn], "detail": {},
    }


class ScheduleTimer:
    def __init__(self, function: LocalFunction, rule_arn: str, expression: str) -> None:
        self.function, self.rule_arn, self.expression = function, rule_arn, expression
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fire(self) -> Any:
        return self.function.invoke(scheduled_event(self.rule_arn))

    def start(self) -> ScheduleTimer:
        interval = interval_seconds(self.expression)
        if interval:
            self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True,
                                            name=f"schedule-{self.function.spec.logical_id}")
            self._thread.start()
        return self

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.fire()
            except Exception:  # as on AWS, a failed run is logged and the next one comes anyway
                log.exception("scheduled run of %s failed", self.function.spec.logical_id)

    def stop(self) -> None:
        self._stop.set()
