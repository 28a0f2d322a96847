"""Monetate's Data API rules: schema definitions, row validation and record storage."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
NAMED_IDENTIFIER = re.compile(r"^\w+$")
SCHEMA_TYPES = (
    "agil_one", "attribute", "behavioral_trigger", "custom_list", "customer_data_privacy",
    "email_metadata", "event", "inventory", "product", "product_recommendation", "purchase",
)
DATA_TYPES = ("STRING", "MULTI_STRING", "BOOLEAN", "DATETIME", "NUMBER", "GOOGLE_PRODUCT_CATEGORY")
FIELD_FLAGS = ("identifier", "unique_key", "event_time", "required")
MAX_FIELDS = 40
MAX_NAME_LENGTH = 64


def error(message: str, field_name: str | None = None, row: int | None = None) -> dict[str, Any]:
    """One item of ``meta.errors`` (row-level shape: {row, field, message})."""
    item: dict[str, Any] = {}
    if row is not None:
        item["row"] = row
    if field_name is not None:
        item["field"] = field_name
    item["message"] = message
    return item


def validate_fields(fields: Any, existing: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Errors in a ``fields`` object, alone (create) or added to ``existing`` (patch)."""
    if not isinstance(fields, dict) or not fields:
        return [error("fields must be an object with at least one field", "fields")]
    errors = []
    for name, spec in fields.items():
        where = f"fields.{name}"
        if existing and name in existing:
            errors.append(error("a field with this name already exists", where))
            continue
        if not isinstance(spec, dict):
            errors.append(error("a field must be an object with a data_type", where))
            continue
        if spec.get("data_type") not in DATA_TYPES:
            errors.append(error(f"data_type must be one of {', '.join(DATA_TYPES)}", where + ".data_type"))
        for flag in FIELD_FLAGS:
            if flag in spec and not isinstance(spec[flag], bool):
                errors.append(error(f"{flag} must be true or false", f"{where}.{flag}"))
        if spec.get("identifier") and spec.get("data_type") != "STRING":
            errors.append(error("the identifier field must be a STRING", where))
        if spec.get("unique_key") and spec.get("data_type") != "STRING":
            errors.append(error("the unique_key field must be a STRING", where))
        if spec.get("event_time") and spec.get("data_type") != "DATETIME":
            errors.append(error("the event_time field must be a DATETIME", where))
    merged = {**(existing or {}), **fields}
    if len(merged) > MAX_FIELDS:
        errors.append(error(f"a schema has at most {MAX_FIELDS} fields", "fields"))
    return errors


def validate_schema(body: Any, existing_names: set[str]) -> list[dict[str, Any]]:
    """Errors in a ``POST /schema/`` body."""
    if not isinstance(body, dict):
        return [error("the body must be a JSON object")]
    errors = []
    name = body.get("name")
    if not isinstance(name, str) or not SCHEMA_NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        errors.append(error("name must start with a letter, hold only letters, digits and _, "
                            f"and be at most {MAX_NAME_LENGTH} characters", "name"))
    elif name in existing_names:
        errors.append(error(f"a schema named {name} already exists", "name"))
    schema_type = body.get("type", "attribute")
    if schema_type not in SCHEMA_TYPES:
        errors.append(error(f"type must be one of {', '.join(SCHEMA_TYPES)}", "type"))
    ni = body.get("named_identifier")
    if ni is not None and (not isinstance(ni, str) or not NAMED_IDENTIFIER.match(ni)):
        errors.append(error("named_identifier must be letters, digits and _", "named_identifier"))
    field_errors = validate_fields(body.get("fields"))
    errors.extend(field_errors)
    if not field_errors:
        fields = body["fields"]
        identifiers = [n for n, f in fields.items() if f.get("identifier")]
        if len(identifiers) != 1:
            errors.append(error("exactly one field must be the identifier", "fields"))
        if len([n for n, f in fields.items() if f.get("unique_key")]) > 1:
            errors.append(error("at most one field may be the unique_key", "fields"))
        event_times = [n for n, f in fields.items() if f.get("event_time")]
        if schema_type == "event" and len(event_times) != 1:
            errors.append(error("an event schema needs exactly one event_time field", "fields"))
    return errors


@dataclass
class Dataset:
    """A schema and the records posted to it."""

    id: int
    name: str
    type: str
    fields: dict[str, dict[str, Any]]
    created_date: str
    named_identifier: str | None = None
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)  # with a unique key
    appended: list[dict[str, Any]] = field(default_factory=list)  # without one
    uploads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def identifier(self) -> str:
        return next(n for n, f in self.fields.items() if f.get("identifier"))

    @property
    def unique_key(self) -> str | None:
        return next((n for n, f in self.fields.items() if f.get("unique_key")), None)

    @property
    def row_count(self) -> int:
        return len(self.by_key) + len(self.appended)

    def describe(self, row_count: bool = False, latest_upload: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "fields": self.fields,
            "created_date": self.created_date,
        }
        if self.named_identifier:
            out["named_identifier"] = self.named_identifier
        if row_count:
            out["row_count"] = self.row_count
        if latest_upload:
            out["latest_upload"] = self.uploads[0] if self.uploads else None
        return out

    def _full(self, row: dict[str, Any]) -> dict[str, Any]:
        return {name: row.get(name) for name in self.fields}  # absent fields read as null

    def records(self) -> list[dict[str, Any]]:
        return [self._full(r) for r in (*self.by_key.values(), *self.appended)]

    def store(self, rows: list[dict[str, Any]]) -> None:
        """Keep rows as sent (validated); nulls for absent fields are filled on reading."""
        key = self.unique_key
        if key:
            self.by_key.update((row[key], row) for row in rows)
        else:
            self.appended.extend(rows)

    def find(self, record_id: str) -> list[dict[str, Any]]:
        key = self.unique_key
        if key:
            found = [self.by_key[record_id]] if record_id in self.by_key else []
        else:
            ident = self.identifier
            found = [r for r in self.appended if r.get(ident) == record_id]
        return [self._full(r) for r in found]

    def record_upload(self, status: str, when: dt.datetime, errors: list[str]) -> None:
        stamp = when.isoformat()
        self.uploads.insert(0, {
            "status": status,
            "upload_time": stamp,
            "import_start_time": stamp,
            "import_end_time": stamp,
            "validation_errors": errors,
            "validation_warnings": [],
        })


def validate_rows(dataset: Dataset, rows: list[Any]) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """Valid rows, and the errors of the others keyed by their index in the request."""
    if _all_fine(dataset, rows):
        return rows, {}
    return validate_each(dataset, rows)


def validate_each(dataset: Dataset, rows: list[Any]) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """``validate_rows`` a row at a time, with every error of every row."""
    checkers = {name: _CHECKERS[spec["data_type"]] for name, spec in dataset.fields.items()}
    known = checkers.keys()
    must_have = [n for n, f in dataset.fields.items() if f.get("identifier") or f.get("unique_key") or f.get("required")]
    valid, bad = [], {}
    for i, row in enumerate(rows):
        if type(row) is not dict:
            bad[i] = [error("a row must be a JSON object", row=i)]
            continue
        errors = None
        if not known >= row.keys():
            errors = [error("unknown field", name, i) for name in row if name not in known]
        for name in must_have:
            if row.get(name) is None:
                errors = (errors or []) + [error("this field is required", name, i)]
        for name, value in row.items():
            if value is not None and name in checkers:
                message = checkers[name](value)
                if message:
                    errors = (errors or []) + [error(message, name, i)]
        if errors:
            bad[i] = errors
        else:
            valid.append(row)
    return valid, bad


# One checker per data type: None when the value is fine, else what is wrong with it.
def _check_string(value: Any) -> str | None:
    if type(value) is not str or not value:
        return "must be a non-empty string"
    if value[0].isspace() or value[-1].isspace():
        return "must not have leading or trailing whitespace"
    return None


def _check_multi_string(value: Any) -> str | None:
    if type(value) is not str or not value.strip():
        return "must be a non-empty comma-separated string"
    return None


def _check_number(value: Any) -> str | None:
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return None
    return "must be a number"


def _check_boolean(value: Any) -> str | None:
    return None if type(value) is bool else "must be true or false"


def _check_datetime(value: Any) -> str | None:
    if type(value) is str and is_iso_datetime(value):
        return None
    return "must be an ISO-8601 date-time"


_CHECKERS = {
    "STRING": _check_string, "GOOGLE_PRODUCT_CATEGORY": _check_string, "MULTI_STRING": _check_multi_string,
    "NUMBER": _check_number, "BOOLEAN": _check_boolean, "DATETIME": _check_datetime,
}


def _all_fine(dataset: Dataset, rows: list[Any]) -> bool:
    """Whether every row is valid, judged a column at a time: the usual request, with every field
    of every row filled in, costs less than half as much as checking row by row. False only means the rows
    must be checked one by one."""
    if not all(type(row) is dict for row in rows) or set().union(*rows) != dataset.fields.keys():
        return False
    try:
        return all(_COLUMN_CHECKS[spec["data_type"]]([row[name] for row in rows])
                   for name, spec in dataset.fields.items())
    except (KeyError, TypeError, ValueError, OverflowError):  # a missing field, a value of another type
        return False


def _strings_fine(column: list[Any]) -> bool:
    return list(map(str.strip, column)) == column and all(column)  # str.strip: TypeError for non-text


def _numbers_fine(column: list[Any]) -> bool:
    return all(type(v) is int or type(v) is float for v in column) and math.isfinite(math.fsum(column))


def _datetimes_fine(column: list[Any]) -> bool:
    if not all(map(_ISO.match, column)):
        return False
    for value in column:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))  # ValueError for a date that does not exist
    return True


_COLUMN_CHECKS = {
    "STRING": _strings_fine, "GOOGLE_PRODUCT_CATEGORY": _strings_fine,
    "MULTI_STRING": lambda column: all(map(str.strip, column)),
    "NUMBER": _numbers_fine,
    "BOOLEAN": lambda column: all(type(v) is bool for v in column),
    "DATETIME": _datetimes_fine,
}


_ISO = re.compile(
    r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
)


def is_iso_datetime(value: str) -> bool:
    if not _ISO.match(value):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
