"""Turning a record into a Mona export message.

contextId comes from the first configured field present (default ``contextId``, then
``id``); exportTimestamp from a configured field (Unix seconds, milliseconds or ISO-8601),
else the time the file was written; action from a field or the default. Fields starting
with ``MONA_`` are renamed ``MY_MONA_``, as the official SDK does, because Mona reserves them.
A record that is already such a message (``arcClass``, ``message``, ...) is taken as it is.

Example::

    builder = MessageBuilder(settings)
    message, reasons = builder.build({"id": "o-1", "score": 0.9}, arc_class="orders", default_time=1714557600)
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from martech.csv_values import typed_row
from martech.iso_times import from_iso, from_written, date_hint
from martech.csv_records import trimmed
from martech.names import written_otherwise
from martech.mona import ACTIONS
from martech.settings import Settings
from martech.value_hints import key_hint, no_value_hint

ARC_CLASS = re.compile(r"^[A-Za-z0-9_@-]+$")


def to_epoch_seconds(value: Any, common_forms: bool = True, day_first: bool = False, zone: dt.tzinfo | None = None
                     ) -> float:
    """Unix seconds, Unix milliseconds (13 digits), ISO-8601 or, with ``common_forms``, a common date
    format (as Monetate's DATETIME reads them; a date alone is its midnight), as Unix seconds.
    ``day_first``: a date written with slashes has its day first (DATE_ORDER=day-first). ``zone``:
    where a time written without an offset was (TIME_ZONE); UTC without one."""
    zone = zone or dt.UTC
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be true/false")
    written = None
    if isinstance(value, str):
        text = written = value.strip()
        try:
            if len(text) in (8, 14) and common_forms:  # 20240501 and 20240501101500, as DATETIME reads them
                return from_written(text, day_first)[0].replace(tzinfo=zone).timestamp()
            value = float(text)
        except ValueError:
            try:
                parsed = from_written(text, day_first)[0] if common_forms else from_iso(text)
            except ValueError:
                forms = "Unix seconds or milliseconds, ISO-8601 or a common date format (05/01/2024 10:15)" \
                    if common_forms else "Unix seconds, milliseconds or ISO-8601"
                raise ValueError(f"{text!r} is not {forms}"
                                 f"{_time_hint(text, common_forms, day_first)}") from None
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)).timestamp()
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        digits = len(str(int(value)))
        if digits == 10:
            return float(value)
        if digits == 13:
            return value / 1000.0
    if written is not None:  # numeric text, as a CSV holds it: 45413 from a spreadsheet, say
        raise ValueError(f"{written!r} is not Unix seconds (10 digits) or milliseconds (13 digits)"
                         f"{_time_hint(written, common_forms, day_first)}")
    raise ValueError(f"{value!r} is not Unix seconds (10 digits) or milliseconds (13 digits)")


def _time_hint(text: str, common_forms: bool, day_first: bool) -> str:
    """What a time that does not read looks like: a date in another order or form, or a word for none."""
    return (date_hint(text, day_first) if common_forms else "") or no_value_hint(text)


def check_arc_class(arc_class: str) -> None:
    if not ARC_CLASS.match(arc_class):
        raise ValueError(f"{arc_class!r}: a context class holds only letters, digits, _, @ and -")


def _blank(value: Any) -> bool:
    """No value given: a CSV's blank cell may hold spaces."""
    return value is None or (type(value) is str and not value.strip())


class MessageBuilder:
    def __init__(self, settings: Settings) -> None:
        self.context_fields = [f.strip() for f in settings.mona_context_fields.split(",") if f.strip()]
        self.timestamp_field = settings.mona_timestamp_field
        self.action_field = settings.mona_action_field
        self.default_action = settings.mona_default_action
        self.drop_nulls = settings.mona_drop_nulls
        self.csv_numbers = settings.csv_values == "typed"
        self.day_first = settings.day_first
        self.zone = settings.time_zone
        self._shape: set[str] = set()  # the field names of the last record, and what to rename in them
        self._shape_renames: dict[str, str] = {}
        self.read_as: dict[str, str] = {}  # every rename made so far, each name with the field it was read as

    def _renames(self, record: dict[str, Any]) -> dict[str, str]:
        """The record's fields to rename as configured: a context id, time or action field written
        otherwise (ID, EXPORTTIMESTAMP, as warehouses export headers, or export_timestamp), where no field
        is written as configured and one alone is so. Worked out once for the records of one shape."""
        if record.keys() == self._shape:
            return self._shape_renames
        renames: dict[str, str] = {}
        context = next((name for name in self.context_fields if name in record or written_otherwise(name, record)), None)
        for wanted in (context, self.timestamp_field, self.action_field):
            if wanted and wanted not in record and (found := written_otherwise(wanted, record)):
                renames[found] = wanted
        self._shape, self._shape_renames = set(record), renames
        self.read_as.update(renames)
        return renames

    def build(self, record: dict[str, Any], arc_class: str, default_time: float | None, from_csv: bool = False
              ) -> tuple[dict[str, Any] | None, list[str]]:
        """The message, or None and every reason it cannot be one. A CSV row's cells are all text: with
        ``from_csv``, blank cells are left out and, unless CSV_VALUES=text, plain numbers become numbers.
        A record that is a message already, as Mona's SDK and ``/export`` take it, is taken as it is."""
        if "arcClass" in record and isinstance(record.get("message"), dict):
            return self._as_exported(record, arc_class, default_time)
        reasons: list[str] = []
        fields = dict(record)
        context_id = None
        for name in self.context_fields:
            if not _blank(fields.get(name)):
                context_id = fields.pop(name)
                break
        else:  # no context id as configured: a warehouse export may name the fields in capitals (ID, EXPORTTIMESTAMP)
            if renames := self._renames(record):
                fields = {renames.get(name, name): value for name, value in record.items()}
                context_id = next((fields.pop(name) for name in self.context_fields
                                   if not _blank(fields.get(name))), None)
        if isinstance(context_id, (dict, list, bool)):
            reasons.append("contextId: must be text or a number")
        elif context_id is not None:
            context_id = trimmed(str(context_id))  # " o-1 " in a CSV cell is o-1
            if hint := key_hint(context_id):  # #N/A, 1.23457E+11, 1001.0
                reasons.append(f"contextId: found {context_id!r}{hint}")
        stamp: float | None = default_time
        raw_stamp = fields.pop(self.timestamp_field, None)
        if not _blank(raw_stamp):
            try:
                stamp = to_epoch_seconds(raw_stamp, day_first=self.day_first, zone=self.zone)
            except ValueError as exc:
                reasons.append(f"{self.timestamp_field}: {exc}")
        action = fields.pop(self.action_field, None)
        action = self.default_action if not action or _blank(action) else action
        if isinstance(action, str) and action.strip().upper() in ACTIONS:  # "add", as a CSV may hold it
            action = action.strip().upper()
        if action not in ACTIONS:
            reasons.append(f"{self.action_field}: must be one of {', '.join(ACTIONS)}, found {action!r}")
        if from_csv:  # after contextId, time and action are taken out: those are read as written
            fields = typed_row(fields, numbers=self.csv_numbers)
        for name, value in fields.items():
            if type(value) is float and not math.isfinite(value):
                reasons.append(f"{name}: NaN and Infinity are not JSON")
        if reasons:
            return None, reasons
        if self.drop_nulls:
            fields = {k: v for k, v in fields.items() if v is not None}
        if any(k.startswith("MONA_") for k in fields):
            fields = {f"MY_{k}" if k.startswith("MONA_") else k: v for k, v in fields.items()}
        if not fields:
            return None, ["the message has no fields left to send"]
        message: dict[str, Any] = {"arcClass": arc_class, "message": fields, "action": action}
        if context_id is not None:
            message["contextId"] = context_id
        if stamp is not None:
            message["exportTimestamp"] = stamp
        return message, []

    def _as_exported(self, record: dict[str, Any], arc_class: str, default_time: float | None
                     ) -> tuple[dict[str, Any] | None, list[str]]:
        """A record in the shape of Mona's export message (``arcClass``, ``message``, ``contextId``...):
        sent as it is, given the time the file was written and the default action where it has none,
        once its ``arcClass`` is the one the folder or path names."""
        reasons = check_export_message(record)
        if record["arcClass"] != arc_class:
            reasons.append(f"arcClass: {record['arcClass']!r}, where the folder or path says {arc_class!r}; a message of"
                           " another context class goes under its own, or to /mona/export")
        if reasons:
            return None, reasons
        message = {name: value for name, value in record.items() if value is not None}
        times_in_zone(message, self.zone)
        message.setdefault("action", self.default_action)
        if default_time is not None:
            message.setdefault("exportTimestamp", default_time)
        return message, []


def times_in_zone(message: dict[str, Any], zone: dt.tzinfo | None) -> None:
    """A message in Mona's form with a time written without an offset has it read in ``zone``
    (TIME_ZONE), as records of any other shape have, and sent as Unix seconds; unset, as Mona reads it."""
    if zone is None:
        return
    for name in ("exportTimestamp", "sendTimestamp"):
        if _without_offset(message.get(name)):
            message[name] = to_epoch_seconds(message[name], common_forms=False, zone=zone)


def _without_offset(value: Any) -> bool:
    """Whether ``value`` is an ISO-8601 time with no offset (``2024-05-01T10:15:00``)."""
    if not isinstance(value, str):
        return False
    try:
        return from_iso(value.strip()).tzinfo is None
    except ValueError:  # Unix seconds or milliseconds as text
        return False


def check_export_message(message: Any) -> list[str]:
    """What is wrong with a message in the shape of Mona's ``/export`` (nulls allowed, as the SDK sends)."""
    if not isinstance(message, dict):
        return ["a message must be a JSON object"]
    reasons = []
    arc_class = message.get("arcClass")
    if not isinstance(arc_class, str) or not ARC_CLASS.match(arc_class):
        reasons.append("arcClass: required; letters, digits, _, @ and - only")
    if not isinstance(message.get("message"), dict) or not message["message"]:
        reasons.append("message: required, a non-empty JSON object")
    context_id = message.get("contextId")
    if context_id is not None and (isinstance(context_id, (dict, list, bool)) or context_id == ""):
        reasons.append("contextId: must be non-empty text or a number")
    if message.get("action") is not None and message["action"] not in ACTIONS:
        reasons.append(f"action: must be one of {', '.join(ACTIONS)}")
    for name in ("exportTimestamp", "sendTimestamp"):
        if message.get(name) is not None:
            try:
                to_epoch_seconds(message[name], common_forms=False)  # sent as it is: as Mona reads it
            except ValueError as exc:
                reasons.append(f"{name}: {exc}")
    return reasons
