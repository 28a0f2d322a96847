"""The Optimove sandbox: Opti-X Data Connections with records, batches, TTL and API
connections that call a real external URL."""

from __future__ import annotations

import collections
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sandbox.faults import Faults
from sandbox.optimove import contract as c
from sandbox.optimove import external
from sandbox.server import INSPECTION_PREFIX, BadJson, HttpError, Request, Response, SandboxApp

CONNECTIONS = f"{c.BASE_PATH}/connections"
ONE = f"{CONNECTIONS}/{{uuid}}"
UUID_FORMAT = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass
class OptimoveSettings:
    api_key: str = field(default_factory=lambda: secrets.token_hex(16))
    brand_key: str = field(default_factory=lambda: str(uuid.uuid4()))
    rate_limit: int | None = c.RATE_LIMIT_REQUESTS  # requests per window per key; None: no limit
    rate_window: float = c.RATE_LIMIT_WINDOW


@dataclass
class Stored:
    data: dict[str, Any]
    expires_at: float | None  # sandbox-clock time; None never expires


@dataclass
class Connection:
    uuid: str
    name: str
    primary_key: str
    description: str | None
    external_api_details: dict[str, Any] | None
    created_at: float
    records: dict[str, Stored] = field(default_factory=dict)
    open_batches: dict[str, dict[str, Stored]] = field(default_factory=dict)
    cache: dict[str, tuple[float, Any]] = field(default_factory=dict)
    references: list[Any] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "data_connection_uuid": self.uuid,
            "name": self.name,
            "primary_key": self.primary_key,
            "description": self.description,
            "type": "api" if self.external_api_details else "upload",
            "external_api_details": self.external_api_details,
        }

    def live(self, now: float) -> dict[str, Stored]:
        """Records whose TTL has not run out; expired ones are dropped on the way."""
        expired = [k for k, s in self.records.items() if s.expires_at is not None and s.expires_at <= now]
        for key in expired:
            del self.records[key]
        return self.records


class OptimoveSandbox(SandboxApp):
    vendor = "optimove"

    def __init__(self, settings: OptimoveSettings | None = None, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.settings = settings or OptimoveSettings()
        self.connections: dict[str, Connection] = {}
        self._calls: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._rate_lock = threading.Lock()
        self._add_routes()

    # -- SandboxApp ----------------------------------------------------------------------
    def error_body(self, status: int, message: Any) -> Any:
        if status == 429:
            return c.rate_limited(str(message))
        return {"detail": message}

    def credentials(self) -> dict[str, Any]:
        return {"api_key": self.settings.api_key, "brand_key": self.settings.brand_key}

    def state(self) -> dict[str, Any]:
        now = self.clock.now()
        return {
            "connections": {
                conn.uuid: {
                    "name": conn.name, "records": len(conn.live(now)),
                    "open_batches": {b: len(rows) for b, rows in conn.open_batches.items()},
                }
                for conn in self.connections.values()
            }
        }

    def reset_state(self) -> None:
        self.connections.clear()
        self._calls.clear()

    # -- request gate: keys and the rate limit --------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path.startswith(c.BASE_PATH):
            gate = self._gate(request)
            if gate is not None:
                self._count(request, str(gate.status), None)
                self._remember(request, gate)
                return gate
        return super().handle(request)

    def _gate(self, request: Request) -> Response | None:
        api_key, brand_key = request.header("x-api-key"), request.header("x-brand-key")
        missing = [c.invalid(["header", name], "field required", "value_error.missing")
                   for name, value in (("x-api-key", api_key), ("x-brand-key", brand_key)) if not value]
        if missing:
            return Response(422, {"detail": missing})
        if not (secrets.compare_digest(api_key, self.settings.api_key)
                and secrets.compare_digest(brand_key, self.settings.brand_key)):
            return Response(401, c.detail("Invalid x-api-key or x-brand-key"))
        limit = self.settings.rate_limit
        if limit:
            now = time.monotonic()
            with self._rate_lock:
                calls = self._calls[api_key]
                while calls and calls[0] <= now - self.settings.rate_window:
                    calls.popleft()
                if len(calls) >= limit:
                    wait = calls[0] + self.settings.rate_window - now
                    return Response(429, c.rate_limited(
                        f"at most {limit} requests per {self.settings.rate_window:g} s; retry in {wait:.1f} s"))
                calls.append(now)
        return None

    # -- routes --------------------------------------------------------------------------
    def _add_routes(self) -> None:
        add = self.vendor_routes.add
        add("POST", CONNECTIONS, self.create_connection, locked=False)  # may call an external API
        add("GET", CONNECTIONS, self.list_connections)
        add("GET", ONE, self.get_connection)
        add("PUT", ONE, self.update_connection)
        add("DELETE", ONE, self.delete_connection)
        add("GET", f"{ONE}/schema", self.get_schema)
        add("POST", f"{ONE}/references", self.add_reference)
        add("POST", f"{ONE}/upload_data", self.upload_data)
        add("PUT", f"{ONE}/update_data", self.update_data)
        add("POST", f"{ONE}/delete_data", self.delete_data)
        add("POST", f"{ONE}/query", self.query, locked=False)
        add("POST", f"{ONE}/api_batch_query", self.batch_query, locked=False)
        self.inspection_routes.add("GET", f"{INSPECTION_PREFIX}/records/{{uuid}}", self._inspect_records)

    def _connection(self, request: Request) -> Connection:
        conn_id = request.params["uuid"]
        if not UUID_FORMAT.match(conn_id):
            raise HttpError(422, [c.invalid(["path", "data_connection_uuid"], "value is not a valid uuid", "type_error.uuid")])
        conn = self.connections.get(conn_id.lower())
        if conn is None:
            raise HttpError(404, f"Data connection {conn_id} not found")
        return conn

    # -- connections ---------------------------------------------------------------------
    def create_connection(self, request: Request) -> Response:
        body = _object_body(request)
        errors = []
        for name in ("name", "primary_key"):
            if not isinstance(body.get(name), str) or not body.get(name):
                errors.append(c.invalid(["body", name], "field required (a non-empty string)"))
        if body.get("description") is not None and not isinstance(body["description"], str):
            errors.append(c.invalid(["body", "description"], "str type expected", "type_error.str"))
        details = body.get("external_api_details")
        if details is not None:
            details, detail_errors = _api_details(details)
            errors.extend(detail_errors)
        if errors:
            raise HttpError(422, errors)
        if details is not None:
            self._test_call(details)
        conn = Connection(
            uuid=str(uuid.uuid4()), name=body["name"], primary_key=body["primary_key"],
            description=body.get("description"), external_api_details=details, created_at=self.clock.now(),
        )
        with self.lock:
            self.connections[conn.uuid] = conn
        return Response(c.CREATE_STATUS, c.created(conn.uuid))

    def _test_call(self, details: dict[str, Any]) -> None:
        samples = details["sample_placeholder_values"]
        try:
            prepared = external.prepare(details, samples)
        except KeyError as exc:
            raise HttpError(400, f"sample_placeholder_values has no value for placeholder(s): {exc.args[0]}") from None
        try:
            external.call(prepared, details["timeout"], details["retries"])
        except external.ExternalCallFailed as exc:
            raise HttpError(400, f"The test call to the external API failed: {exc}") from None

    def list_connections(self, request: Request) -> Response:
        return Response(200, c.connection_list([conn.view() for conn in self.connections.values()]))

    def get_connection(self, request: Request) -> Response:
        return Response(200, self._connection(request).view())

    def update_connection(self, request: Request) -> Response:
        conn = self._connection(request)
        body = _object_body(request)
        if "primary_key" in body and body["primary_key"] != conn.primary_key:
            raise HttpError(400, "primary_key cannot be changed after a data connection is created")
        for name in ("name", "description"):
            if name in body and not isinstance(body[name], str):
                raise HttpError(422, [c.invalid(["body", name], "str type expected", "type_error.str")])
        conn.name = body.get("name", conn.name)
        conn.description = body.get("description", conn.description)
        return Response(200, conn.view())

    def delete_connection(self, request: Request) -> Response:
        conn = self._connection(request)
        del self.connections[conn.uuid]
        return Response(200, c.deleted_connection(conn.uuid))

    def get_schema(self, request: Request) -> Response:
        conn = self._connection(request)
        types: dict[str, set[str]] = {}
        records = conn.live(self.clock.now())
        for stored in records.values():
            for name, value in stored.data.items():
                types.setdefault(name, set()).add(_json_type(value))
        return Response(200, c.schema(conn.primary_key, {n: sorted(t) for n, t in types.items()}, len(records)))

    def add_reference(self, request: Request) -> Response:
        conn = self._connection(request)
        conn.references.append(_object_body(request))
        return Response(200, {"status": "success"})

    # -- data --------------------------------------------------------------------------------
    def upload_data(self, request: Request) -> Response:
        conn = self._upload_connection(request)
        body = _object_body(request)
        rows = body.get("data")
        if not isinstance(rows, list) or not rows:
            raise HttpError(422, [c.invalid(["body", "data"], "data must be a non-empty list of objects")])
        if len(rows) > c.MAX_ROWS_PER_UPLOAD:
            message = f"at most {c.MAX_ROWS_PER_UPLOAD} items per request, got {len(rows)}"
            raise HttpError(422, [c.invalid(["body", "data"], message)])
        ttl = _ttl(body, "ttl_seconds" if "ttl_seconds" in body else "ttl")
        batch_uuid = body.get("batch_uuid")
        completed = body.get("batch_completed", True)
        if batch_uuid is not None and not isinstance(batch_uuid, str):
            raise HttpError(422, [c.invalid(["body", "batch_uuid"], "str type expected", "type_error.str")])
        if not isinstance(completed, bool):
            raise HttpError(422, [c.invalid(["body", "batch_completed"], "value could not be parsed to a boolean",
                                            "type_error.bool")])
        staged: dict[str, Stored] = {}
        expires = self._expiry(ttl)
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise HttpError(422, [c.invalid(["body", "data", i], "value is not a valid dict", "type_error.dict")])
            key = _key(row.get(conn.primary_key))
            if key is None:
                raise HttpError(400, f"Invalid primary key: item {i} has no '{conn.primary_key}' value")
            staged[key] = Stored(dict(row), expires)
        if batch_uuid is None:
            conn.records.update(staged)
        else:
            conn.open_batches.setdefault(batch_uuid, {}).update(staged)
            if completed:
                conn.records.update(conn.open_batches.pop(batch_uuid))
        return Response(200, c.uploaded(len(rows), batch_uuid, completed))

    def update_data(self, request: Request) -> Response:
        conn = self._upload_connection(request)
        items = _json(request)
        if not isinstance(items, list) or not items:
            raise HttpError(422, [c.invalid(["body"], "the body must be a non-empty list of {primary_key, data, ttl}")])
        if len(items) > c.MAX_ROWS_PER_UPLOAD:
            raise HttpError(422, [c.invalid(["body"], f"at most {c.MAX_ROWS_PER_UPLOAD} items per request")])
        records = conn.live(self.clock.now())
        updates: dict[str, Stored] = {}
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
                raise HttpError(422, [c.invalid(["body", i, "data"], "each item needs a data object")])
            key = _key(item.get("primary_key"))
            if key is None:
                raise HttpError(400, f"Invalid primary key: item {i} has no primary_key")
            if c.UPDATE_UNKNOWN_KEY_IS_ERROR and key not in records:
                raise HttpError(400, f"Invalid primary key: {key} does not exist in this data connection")
            updates[key] = Stored({**item["data"], conn.primary_key: item["primary_key"]},
                                  self._expiry(_ttl(item, "ttl", where=["body", i, "ttl"])))
        records.update(updates)
        return Response(200, c.updated(len(items)))

    def delete_data(self, request: Request) -> Response:
        conn = self._upload_connection(request)
        body = _object_body(request)
        keys = body.get("primary_keys")
        if not isinstance(keys, list) or not keys or any(_key(k) is None for k in keys):
            raise HttpError(422, [c.invalid(["body", "primary_keys"],
                                            "primary_keys must be a non-empty list of strings or numbers")])
        records = conn.live(self.clock.now())
        deleted = sum(1 for k in {_key(k) for k in keys} if records.pop(k, None) is not None)
        return Response(200, c.deleted_records(deleted))

    def query(self, request: Request) -> Response:
        with self.lock:
            conn = self._connection(request)
        result = self._answer(conn, _object_body(request))
        if "error" in result:
            raise HttpError(result["status"], result["error"])
        return Response(200, c.query_result(result["data"]))

    def batch_query(self, request: Request) -> Response:
        with self.lock:
            conn = self._connection(request)
        queries = _object_body(request).get(c.BATCH_QUERIES)
        if not isinstance(queries, list) or not queries:
            raise HttpError(422, [c.invalid(["body", c.BATCH_QUERIES], "a non-empty list of queries is required")])
        results = []
        for q in queries:
            answer = self._answer(conn, q) if isinstance(q, dict) else {"error": "a query must be an object"}
            results.append({"data": answer["data"]} if "data" in answer else {"error": answer["error"]})
        return Response(200, c.batch_result(results))

    def _answer(self, conn: Connection, query: dict[str, Any]) -> dict[str, Any]:
        """``{"data": ...}`` or ``{"error": reason, "status": code}`` for one query."""
        if conn.external_api_details is None:
            key = _key(query.get(c.QUERY_KEY))
            if key is None:
                return {"error": f"the query needs '{c.QUERY_KEY}'", "status": 422}
            with self.lock:
                stored = conn.live(self.clock.now()).get(key)
            if stored is None:
                return {"error": f"No record with primary key {key}", "status": 404}
            return {"data": stored.data}
        return self._fetch(conn, query.get(c.QUERY_PLACEHOLDERS) or {})

    def _fetch(self, conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
        details = conn.external_api_details or {}
        try:
            prepared = external.prepare(details, values)
        except KeyError as exc:
            return {"error": f"no value for placeholder(s): {exc.args[0]}", "status": 422}
        key, now, ttl = external.cache_key(prepared), self.clock.now(), details["ttl"]
        with self.lock:
            hit = conn.cache.get(key)
        if ttl and hit and hit[0] > now:
            return {"data": hit[1]}
        try:
            data = external.call(prepared, details["timeout"], details["retries"])
        except external.ExternalCallFailed as exc:
            return {"error": f"The external API call failed: {exc}", "status": 502}
        if ttl:
            with self.lock:
                conn.cache[key] = (now + ttl, data)
        return {"data": data}

    def _upload_connection(self, request: Request) -> Connection:
        conn = self._connection(request)
        if conn.external_api_details is not None:
            raise HttpError(400, "This is an API-based data connection; its data comes from the external API")
        return conn

    def _expiry(self, ttl: int | None) -> float | None:
        return None if ttl is None else self.clock.now() + ttl

    def _inspect_records(self, request: Request) -> Response:
        conn = self._connection(request)
        now = self.clock.now()
        return Response(200, {
            "records": {k: s.data for k, s in conn.live(now).items()},
            "expires_at": {k: s.expires_at for k, s in conn.records.items()},
            "open_batches": {b: {k: s.data for k, s in rows.items()} for b, rows in conn.open_batches.items()},
        })


def _json(request: Request) -> Any:
    try:
        return request.json()
    except BadJson as exc:
        raise HttpError(422, [c.invalid(["body"], str(exc), "value_error.jsondecode")]) from None


def _object_body(request: Request) -> dict[str, Any]:
    body = _json(request)
    if not isinstance(body, dict):
        raise HttpError(422, [c.invalid(["body"], "value is not a valid dict", "type_error.dict")])
    return body


def _key(value: Any) -> str | None:
    """Primary keys compare as strings: 54490 and "54490" are one record."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, str)) and str(value) != "":
        return str(value)
    return None


def _ttl(body: dict[str, Any], name: str, where: list[Any] | None = None) -> int | None:
    ttl = body.get(name)
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
        raise HttpError(422, [c.invalid(where or ["body", name], "ttl must be a whole number of seconds or null")])
    return ttl


def _api_details(raw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """external_api_details with defaults filled, and what is wrong with it."""
    loc = ["body", "external_api_details"]
    if not isinstance(raw, dict):
        return {}, [c.invalid(loc, "value is not a valid dict", "type_error.dict")]
    details = {
        "headers": {}, "body": None, "ttl": c.DEFAULT_API_TTL, "timeout": c.DEFAULT_API_TIMEOUT,
        "retries": 0, "is_batch_endpoint": False, "sample_placeholder_values": {}, **raw,
    }
    errors = []
    if not isinstance(details.get("url"), str) or not details["url"].startswith(("http://", "https://")):
        errors.append(c.invalid(loc + ["url"], "url must be an http(s) URL"))
    if not isinstance(details.get("http_method"), str) or details["http_method"].upper() not in external.HTTP_METHODS:
        errors.append(c.invalid(loc + ["http_method"], f"http_method must be one of {', '.join(external.HTTP_METHODS)}"))
    for name, kind in (("headers", dict), ("sample_placeholder_values", dict), ("is_batch_endpoint", bool)):
        if not isinstance(details[name], kind):
            errors.append(c.invalid(loc + [name], f"{name} must be a {kind.__name__}"))
    for name in ("ttl", "timeout", "retries"):
        value = details[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            errors.append(c.invalid(loc + [name], f"{name} must be a number of at least 0"))
    if details["body"] is not None and not isinstance(details["body"], (dict, list)):
        errors.append(c.invalid(loc + ["body"], "body must be an object"))
    return details, errors


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
