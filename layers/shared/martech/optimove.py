"""Optimove Opti-X Data Connections client.

Credentials ``{"api_key", "brand_key"}`` come from Secrets Manager. Connections are
addressed by uuid or by name (resolved through the cached connection list). Request
shapes the vendor does not publish are kept together below, marked [inferred].
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import requests

from martech.http import make_session
from martech.names import did_you_mean
from martech.vendor_secrets import Fetch, fetch_json_secret, read_secret, secret_fields
from martech.settings import Settings

MAX_ROWS_PER_UPLOAD = 5000  # [doc]


# -- [inferred] shapes, in one place --------------------------------------------------------
def query_body(primary_key: Any = None, placeholder_values: dict[str, Any] | None = None) -> dict[str, Any]:
    """[inferred] a query names a record by primary key, or fills an API connection's placeholders."""
    if placeholder_values is not None:
        return {"placeholder_values": placeholder_values}
    return {"primary_key": primary_key}


def query_data(answer: dict[str, Any]) -> Any:
    """[inferred] a query answers ``{"data": ...}``."""
    return answer.get("data")


def connection_list(answer: Any) -> list[dict[str, Any]]:
    """[inferred] the connection list is a JSON list of connections (or under ``data_connections``)."""
    return answer if isinstance(answer, list) else answer.get("data_connections", [])


# -- errors -------------------------------------------------------------------------------
class OptimoveError(Exception):
    """Optimove refused the request (4xx); ``status`` and ``detail`` are its answer. Status 0: no request
    was made, as the Optimove secret is not usable."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"Optimove answered {status}: {detail}" if status else str(detail))
        self.status, self.detail = status, detail


class OptimoveUnavailable(Exception):
    """Optimove kept failing (429/5xx/connection) after the retries; try again later."""


class UnknownConnection(OptimoveError):
    """No data connection has this uuid or name."""


def _headers_from(secret: Any) -> dict[str, str]:
    try:
        keys = secret_fields(secret, ("api_key", "brand_key"))
    except ValueError as exc:
        raise OptimoveError(0, f"the Optimove secret{exc}") from None
    return {"x-api-key": keys["api_key"], "x-brand-key": keys["brand_key"], "Content-Type": "application/json"}


class OptimoveClient:
    def __init__(self, settings: Settings, session: requests.Session | None = None,
                 fetch_secret: Fetch = fetch_json_secret) -> None:
        settings.require("optimove_base_url", "optimove_secret_name")
        self._settings = settings
        self._session = session or make_session(settings)
        # Creating a connection is the one call that is not idempotent: a lost answer is not resent.
        self._unsafe = make_session(settings, posts_are_safe=False)
        self._fetch = fetch_secret
        self.base = (settings.optimove_base_url or "").rstrip("/")
        self._connections: tuple[float, list[dict[str, Any]]] | None = None
        self._lock = threading.Lock()

    def _headers(self, force: bool = False) -> dict[str, str]:
        return read_secret(self._fetch, self._settings.optimove_secret_name or "", self._settings.secret_cache_seconds,
                           _headers_from, OptimoveError, force)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The answer's JSON; OptimoveError for 4xx, OptimoveUnavailable once retries are spent."""
        data = orjson.dumps(body) if body is not None else None
        session = self._unsafe if (method, path) == ("POST", "/connections") else self._session
        for attempt in range(2):
            try:
                answer = session.request(method, f"{self.base}{path}", data=data, headers=self._headers(attempt > 0))
            except requests.RequestException as exc:
                raise OptimoveUnavailable(f"Optimove could not be reached: {type(exc).__name__}") from None
            if answer.status_code in (401, 422) and attempt == 0 and _is_key_error(answer):
                continue  # keys rotated? read the secret past its cache, once
            break
        if answer.status_code >= 500 or answer.status_code == 429:
            raise OptimoveUnavailable(f"Optimove answered {answer.status_code} after retries")
        if answer.status_code >= 400:
            raise OptimoveError(answer.status_code, _detail(answer))
        return answer.json() if answer.content else None

    # -- connections ------------------------------------------------------------------------
    def connections(self, fresh: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            cached = self._connections
            if cached and not fresh and time.monotonic() - cached[0] < self._settings.optimove_connection_cache_seconds:
                return cached[1]
        found = connection_list(self.call("GET", "/connections"))
        with self._lock:
            self._connections = (time.monotonic(), found)
        return found

    def resolve(self, connection: str) -> dict[str, Any]:
        """The connection named by uuid or by name; UnknownConnection otherwise."""
        for fresh in (False, True):  # a connection made since the list was cached
            for conn in self.connections(fresh):
                if conn.get("data_connection_uuid") == connection or conn.get("name") == connection:
                    return conn
        names = [conn["name"] for conn in self.connections(False) if isinstance(conn.get("name"), str)]
        raise UnknownConnection(404, f"no data connection with uuid or name {connection!r}{did_you_mean(connection, names)}")

    def forget_connections(self) -> None:
        with self._lock:
            self._connections = None

    # -- data -------------------------------------------------------------------------------
    def upload(self, uuid: str, rows: list[dict[str, Any]], ttl: int | None, batch_uuid: str | None,
               completed: bool) -> Any:
        body = {"data": rows, "ttl_seconds": ttl, "batch_uuid": batch_uuid, "batch_completed": completed}
        return self.call("POST", f"/connections/{uuid}/upload_data", body)

    def update(self, uuid: str, items: list[dict[str, Any]]) -> Any:
        return self.call("PUT", f"/connections/{uuid}/update_data", items)

    def delete(self, uuid: str, keys: list[Any]) -> Any:
        return self.call("POST", f"/connections/{uuid}/delete_data", {"primary_keys": keys})

    def query(self, uuid: str, primary_key: Any) -> Any | None:
        """The stored record, or None when there is none."""
        try:
            return query_data(self.call("POST", f"/connections/{uuid}/query", query_body(primary_key)))
        except OptimoveError as exc:
            if exc.status == 404:
                return None
            raise


def _is_key_error(answer: requests.Response) -> bool:
    if answer.status_code == 401:
        return True
    detail = _detail(answer)
    return isinstance(detail, list) and any("header" in (d.get("loc") or []) for d in detail if isinstance(d, dict))


def _detail(answer: requests.Response) -> Any:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:500]
    return body.get("detail", body.get("message", body)) if isinstance(body, dict) else body
