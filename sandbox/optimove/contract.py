"""Every Optimove shape the public material leaves open, decided once, here.

The vendor documents the paths, the upload/update/delete bodies and answers, and little
else. What follows is our reading ([inferred] in shared/vendor-contracts.md); change it
here and the sandbox follows.
"""

from __future__ import annotations

from typing import Any

BASE_PATH = "/api/data-connections/v1"
MAX_ROWS_PER_UPLOAD = 5000
DEFAULT_API_TTL = 30
DEFAULT_API_TIMEOUT = 10
# The classic Optimove API's documented limit, used here as the sandbox default.
RATE_LIMIT_REQUESTS, RATE_LIMIT_WINDOW = 50, 10.0
# update_data of a key the connection does not hold is a 400 ("Invalid primary key").
UPDATE_UNKNOWN_KEY_IS_ERROR = True


# -- errors (a FastAPI service) ------------------------------------------------------------
def detail(message: str) -> dict[str, Any]:
    return {"detail": message}


def invalid(loc: list[Any], msg: str, kind: str = "value_error") -> dict[str, Any]:
    """One item of a 422 ``detail`` list."""
    return {"loc": loc, "msg": msg, "type": kind}


def rate_limited(message: str) -> dict[str, Any]:
    return {"status": 429, "error": "Too Many Requests", "message": message}


# -- connections -----------------------------------------------------------------------------
def created(uuid: str) -> dict[str, Any]:
    return {"data_connection_uuid": uuid}  # [doc]


CREATE_STATUS = 200


def connection_list(views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return views


def deleted_connection(uuid: str) -> dict[str, Any]:
    return {"status": "success", "data_connection_uuid": uuid}


# -- data ------------------------------------------------------------------------------------
def uploaded(count: int, batch_uuid: str | None, completed: bool) -> dict[str, Any]:
    return {"status": "success", "uploaded_records": count, "batch_uuid": batch_uuid, "batch_completed": completed}


def updated(count: int) -> dict[str, Any]:
    return {"status": "success", "updated_records": count}  # [doc]


def deleted_records(count: int) -> dict[str, Any]:
    return {"status": "success", "deleted_records": count}  # [doc]


# A query names one record: {"primary_key": value} for an upload connection, or
# {"placeholder_values": {...}} for an API connection. A batch query is {"queries": [...]}.
QUERY_KEY = "primary_key"
QUERY_PLACEHOLDERS = "placeholder_values"
BATCH_QUERIES = "queries"


def query_result(data: Any) -> dict[str, Any]:
    return {"data": data}


def batch_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each result is ``{"data": ...}`` or ``{"error": "<reason>"}``, in query order."""
    return {"results": results}


def schema(primary_key: str, fields: dict[str, list[str]], count: int) -> dict[str, Any]:
    return {
        "primary_key": primary_key,
        "record_count": count,
        "fields": {name: types[0] if len(types) == 1 else types for name, types in fields.items()},
    }
