"""The Monetate sandbox: Auth, Data and Metadata APIs on one server.

Paths are the vendor's: ``/api/auth/v0/refresh/``,
``/api/data/v1/{retailer}/production/...`` and
``/api/metadata/v1/{retailer}/production/metadata/...``. Every answer uses the vendor's
envelope ``{"meta": {"code", "errors", "warnings"}, "data": ...}``.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.faults import Faults
from sandbox.monetate import data as datasets
from sandbox.monetate import metadata
from sandbox.monetate.auth import MonetateAuth, Token, parse_ttl
from sandbox.server import INSPECTION_PREFIX, BadJson, HttpError, Request, Response, SandboxApp, inspection_json

AUTH_PATH = "/api/auth/v0/refresh/?"
DATA_PREFIX = "/api/data/v1/{retailer}/production"
METADATA_PREFIX = "/api/metadata/v1/{retailer}/production/metadata"


@dataclass
class MonetateSettings:
    retailer: str = "sandbox"
    reject_whole_request: bool = True  # one bad row fails the whole POST (the vendor default)
    max_rows_per_post: int = 1000
    spot_check_interval: float = 1.0  # seconds between accepted spot checks
    metadata: metadata.MetadataSizes = field(default_factory=metadata.MetadataSizes)


def envelope(status: int, data: Any, errors: list[Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {"meta": {"code": status, "errors": errors or [], "warnings": [], **meta}, "data": data}


class MonetateSandbox(SandboxApp):
    vendor = "monetate"

    def __init__(self, settings: MonetateSettings | None = None, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.settings = settings or MonetateSettings()
        self.auth = MonetateAuth()
        self.key_retailers: dict[str, str] = {}
        self.datasets: dict[str, datasets.Dataset] = {}
        self.items = metadata.generate(self.settings.metadata)
        self._last_spot_check = float("-inf")
        self._add_routes()

    # -- SandboxApp ----------------------------------------------------------------------
    def error_body(self, status: int, message: Any) -> Any:
        if isinstance(message, list):
            errors = message
        elif isinstance(message, dict):
            errors = [message]
        else:
            errors = [{"message": str(message)}]
        return envelope(status, {}, errors)

    def credentials(self) -> dict[str, Any]:
        return {
            "retailer": self.settings.retailer,
            "api_users": self.auth.usernames(),
            "keys": [{"key_id": k.key_id, "username": k.username, "active": k.active} for k in self.auth.keys.values()],
        }

    def state(self) -> dict[str, Any]:
        return {
            "schemas": {name: d.row_count for name, d in self.datasets.items()},
            "tokens_issued": len(self.auth.tokens),
            "metadata": {kind: len(items) for kind, items in self.items.items()},
        }

    def reset_state(self) -> None:
        self.datasets.clear()
        self.auth.tokens.clear()
        self.items = metadata.generate(self.settings.metadata)
        self._last_spot_check = float("-inf")

    def register_key(self, username: str, public_key_pem: str, retailer: str | None = None) -> str:
        """Register an API user's public key (as the vendor's UI does); returns its id."""
        with self.lock:
            key = self.auth.register_key(username, public_key_pem)
            self.key_retailers[key.key_id] = retailer or self.settings.retailer
            return key.key_id

    def create_schema(self, body: dict[str, Any]) -> datasets.Dataset:
        with self.lock:
            errors = datasets.validate_schema(body, set(self.datasets))
            if errors:
                raise HttpError(400, errors)
            dataset = datasets.Dataset(
                id=len(self.datasets) + 1, name=body["name"], type=body.get("type", "attribute"),
                fields={n: dict(f) for n, f in body["fields"].items()},
                created_date=self._now_datetime().isoformat(), named_identifier=body.get("named_identifier"),
            )
            self.datasets[dataset.name] = dataset
            return dataset

    def add_field(self, schema: str, name: str, spec: dict[str, Any]) -> None:
        """A field added to a dataset, as in Monetate's UI: the Data API has no call for it."""
        with self.lock:
            self.datasets[schema].fields[name] = dict(spec)

    # -- routes --------------------------------------------------------------------------
    def _add_routes(self) -> None:
        add = self.vendor_routes.add
        add("GET", AUTH_PATH, self.refresh)
        add("GET", f"{DATA_PREFIX}/schema/?", self.list_schemas)
        add("POST", f"{DATA_PREFIX}/schema/?", self.post_schema)
        add("GET", f"{DATA_PREFIX}/schema/{{name}}/?", self.get_schema)
        add("PATCH", f"{DATA_PREFIX}/schema/{{name}}/?", self.patch_schema)
        add("GET", f"{DATA_PREFIX}/upload/{{name}}/?", self.upload_history)
        add("POST", f"{DATA_PREFIX}/data/{{name}}/?", self.post_rows)
        add("GET", f"{DATA_PREFIX}/data/{{name}}/?", self.spot_check)
        # The spot-check form printed in the vendor's guide, /api/data/v1/{schema}/production/data
        add("GET", "/api/data/v1/{name}/production/data/?", self.spot_check_guide_form)
        add("GET", f"{METADATA_PREFIX}/{{kind}}/?", self.list_metadata)
        add("GET", f"{METADATA_PREFIX}/{{kind}}/{{item_id}}/?", self.get_metadata)

        inspect = self.inspection_routes.add
        inspect("GET", f"{INSPECTION_PREFIX}/keys", lambda r: Response(200, self.credentials()["keys"]))
        inspect("POST", f"{INSPECTION_PREFIX}/keys", self._inspect_register_key)
        inspect("POST", f"{INSPECTION_PREFIX}/keys/{{key_id}}/deactivate", lambda r: self._inspect_key_active(r, False))
        inspect("POST", f"{INSPECTION_PREFIX}/keys/{{key_id}}/activate", lambda r: self._inspect_key_active(r, True))
        inspect("POST", f"{INSPECTION_PREFIX}/schemas", self._inspect_create_schema)
        inspect("GET", f"{INSPECTION_PREFIX}/records/{{name}}", self._inspect_records)
        inspect("PUT", f"{INSPECTION_PREFIX}/metadata/{{kind}}/{{item_id}}", self._inspect_put_item)
        inspect("DELETE", f"{INSPECTION_PREFIX}/metadata/{{kind}}/{{item_id}}", self._inspect_delete_item)

    # -- Auth API --------------------------------------------------------------------------
    def refresh(self, request: Request) -> Response:
        now = self.clock.now()
        key = self.auth.verify_jwt(request.header("authorization"), now)
        ttl = parse_ttl(request.arg("ttl"))
        token = self.auth.issue(key, self.key_retailers[key.key_id], ttl, now, self.faults.settings.token_ttl)
        return Response(200, envelope(200, self.auth.token_payload(token)))

    def _authorize(self, request: Request, retailer: str | None = None) -> Token:
        return self.auth.check_token(
            request.header("authorization"),
            retailer if retailer is not None else request.params["retailer"],
            self.clock.now(),
        )

    # -- Data API --------------------------------------------------------------------------
    def _dataset(self, name: str) -> datasets.Dataset:
        dataset = self.datasets.get(name)
        if dataset is None:
            raise HttpError(404, f"Schema {name} does not exist.")
        return dataset

    def list_schemas(self, request: Request) -> Response:
        self._authorize(request)
        flags = _flags(request)
        items = [d.describe(**flags) for d in self.datasets.values()]
        return Response(200, envelope(200, items, count=len(items)))

    def post_schema(self, request: Request) -> Response:
        self._authorize(request)
        dataset = self.create_schema(_json_body(request))
        return Response(201, envelope(201, dataset.describe()))

    def get_schema(self, request: Request) -> Response:
        self._authorize(request)
        dataset = self._dataset(request.params["name"])
        return Response(200, envelope(200, dataset.describe(**_flags(request))))

    def patch_schema(self, request: Request) -> Response:
        self._authorize(request)
        dataset = self._dataset(request.params["name"])
        body = _json_body(request)
        if not isinstance(body, dict):
            raise HttpError(400, datasets.error("the body must be a JSON object"))
        has_fields, has_ni = "fields" in body, "named_identifier" in body
        if has_fields == has_ni:
            raise HttpError(400, datasets.error("send either fields to add or a named_identifier, not both or neither"))
        if has_ni:
            ni = body["named_identifier"]
            if not isinstance(ni, str) or not datasets.NAMED_IDENTIFIER.match(ni):
                raise HttpError(400, datasets.error("named_identifier must be letters, digits and _", "named_identifier"))
            dataset.named_identifier = ni
        else:
            errors = datasets.validate_fields(body["fields"], dataset.fields)
            if any(f.get("identifier") or f.get("unique_key") for f in body["fields"].values() if isinstance(f, dict)):
                errors.append(datasets.error("identifier and unique_key cannot be added to an existing schema", "fields"))
            if errors:
                raise HttpError(400, errors)
            dataset.fields.update({n: dict(f) for n, f in body["fields"].items()})
        return Response(200, envelope(200, dataset.describe()))

    def upload_history(self, request: Request) -> Response:
        self._authorize(request)
        uploads = self._dataset(request.params["name"]).uploads
        return Response(200, envelope(200, uploads, count=len(uploads)))

    def post_rows(self, request: Request) -> Response:
        self._authorize(request)
        dataset = self._dataset(request.params["name"])
        body = _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("schema_rows"), list):
            raise HttpError(400, datasets.error("the body must be an object with a schema_rows list", "schema_rows"))
        sent_time = body.get("_sent_time")
        if sent_time is not None and (not isinstance(sent_time, str) or not datasets.is_iso_datetime(sent_time)):
            raise HttpError(400, datasets.error("must be an ISO-8601 date-time", "_sent_time"))
        rows = body["schema_rows"]
        if len(rows) > self.settings.max_rows_per_post:
            raise HttpError(400, datasets.error(
                f"at most {self.settings.max_rows_per_post} rows per request, got {len(rows)}", "schema_rows"))
        if not dataset.named_identifier:
            raise HttpError(400, datasets.error(
                "this dataset has no Identifier Name yet; set named_identifier before posting data", "named_identifier"))
        valid, bad = datasets.validate_rows(dataset, rows)
        errors = [e for row_errors in bad.values() for e in row_errors]
        when = self._now_datetime()
        if bad and self.settings.reject_whole_request:
            dataset.record_upload("VALIDATION_ERROR", when, [e["message"] for e in errors])
            raise HttpError(400, errors)
        dataset.store(valid)
        dataset.record_upload("COMPLETE", when, [])
        return Response(201, envelope(201, {"schema_rows": valid}, errors))

    def spot_check(self, request: Request) -> Response:
        self._authorize(request)
        return self._spot_check(request, request.params["name"])

    def spot_check_guide_form(self, request: Request) -> Response:
        self._authorize(request, retailer=self.settings.retailer)
        return self._spot_check(request, request.params["name"])

    def _spot_check(self, request: Request, name: str) -> Response:
        now = time.monotonic()
        if now - self._last_spot_check < self.settings.spot_check_interval:
            raise HttpError(429, "The spot-check endpoint allows one request per second.")
        self._last_spot_check = now
        dataset = self._dataset(name)
        record_id = request.arg("id")
        if not record_id:
            raise HttpError(400, datasets.error("the id query parameter is required", "id"))
        rows = dataset.find(record_id)
        if not rows:
            raise HttpError(404, f"No record {record_id} in {name}.")
        return Response(200, envelope(200, {"schema_rows": rows}))

    # -- Metadata API ----------------------------------------------------------------------
    def _kind(self, request: Request) -> dict[int, dict[str, Any]]:
        kind = request.params["kind"]
        if kind not in self.items:
            raise HttpError(404, f"Unknown metadata kind {kind}; use one of {', '.join(metadata.KINDS)}.")
        return self.items[kind]

    def list_metadata(self, request: Request) -> Response:
        self._authorize(request)
        items = metadata.filter_by_name(request.params["kind"], list(self._kind(request).values()), request.arg("name"))
        chunk, meta = metadata.page_of(request, items)
        return Response(200, envelope(200, chunk, **meta))

    def get_metadata(self, request: Request) -> Response:
        self._authorize(request)
        items = self._kind(request)
        try:
            item = items[int(request.params["item_id"])]
        except (ValueError, KeyError):
            raise HttpError(404, f"No {request.params['kind']} with id {request.params['item_id']}.") from None
        return Response(200, envelope(200, item))

    # -- inspection ------------------------------------------------------------------------
    def _inspect_register_key(self, request: Request) -> Response:
        body = inspection_json(request)
        try:
            key_id = self.register_key(body["username"], body["public_key"], body.get("retailer"))
        except (KeyError, ValueError) as exc:
            raise HttpError(400, f"need username and public_key (PEM): {exc}") from None
        return Response(201, {"key_id": key_id})

    def _inspect_key_active(self, request: Request, active: bool) -> Response:
        key = self.auth.set_active(request.params["key_id"], active)
        return Response(200, {"key_id": key.key_id, "active": key.active})

    def _inspect_create_schema(self, request: Request) -> Response:
        return Response(201, self.create_schema(inspection_json(request)).describe())

    def _inspect_records(self, request: Request) -> Response:
        return Response(200, self._dataset(request.params["name"]).records())

    def _inspect_put_item(self, request: Request) -> Response:
        items = self._kind(request)
        item_id = _int_id(request)
        items[item_id] = {**inspection_json(request), "id": item_id}
        return Response(200, items[item_id])

    def _inspect_delete_item(self, request: Request) -> Response:
        self._kind(request).pop(_int_id(request), None)
        return Response(200, {"deleted": True})

    def _now_datetime(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.now(), dt.UTC)


def _json_body(request: Request) -> Any:
    try:
        return request.json()
    except BadJson as exc:
        raise HttpError(400, datasets.error(str(exc))) from None


def _flags(request: Request) -> dict[str, bool]:
    truthy = ("1", "true", "True", "yes")
    return {
        "row_count": request.arg("row_count") in truthy,
        "latest_upload": request.arg("latest_upload") in truthy,
    }


def _int_id(request: Request) -> int:
    try:
        return int(request.params["item_id"])
    except ValueError:
        raise HttpError(400, "metadata ids are integers") from None
