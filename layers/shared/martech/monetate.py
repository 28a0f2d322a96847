"""Monetate Data API client: schema lookup (cached) and posting ``schema_rows``.

Every call carries a token from :class:`MonetateTokenProvider`; a 401 refreshes the token
once and retries; a 403 raises :class:`KeyRevoked`. A POST is resent after a lost answer
only when the schema has a unique key (the write is an upsert); otherwise the batch's fate
is reported as unknown rather than risking duplicates.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import orjson
import requests

from martech.http import REFUSED_BEFORE_PROCESSING, make_session
from martech.monetate_auth import KeyRevoked, MonetateTokenProvider
from martech.monetate_rows import Schema
from martech.settings import Settings


class UnknownSchema(Exception):
    """The schema does not exist in this Monetate account (404)."""


class RowsRejected(Exception):
    """Monetate refused the batch (400); ``errors`` holds its ``meta.errors``."""

    def __init__(self, errors: list[Any]) -> None:
        super().__init__(f"Monetate rejected the batch: {errors[:3]}")
        self.errors = errors


class TransientFailure(Exception):
    """Monetate kept failing (429/5xx/connection) after the retries; try the batch again later."""


class BatchTooLarge(Exception):
    """The encoded batch is over MONETATE_BATCH_BYTES; nothing was sent. Split it and try the halves."""


class FateUnknown(Exception):
    """The batch was sent but its answer was lost; resending could duplicate rows."""


class MonetateClient:
    def __init__(self, settings: Settings, tokens: MonetateTokenProvider | None = None,
                 session: requests.Session | None = None) -> None:
        settings.require("monetate_data_url")
        self._settings = settings
        self._session = session or make_session(settings)
        self._unsafe_posts = make_session(settings, posts_are_safe=False)
        self.tokens = tokens or MonetateTokenProvider(settings, self._session)
        self._schemas: dict[str, tuple[float, Schema]] = {}
        self._schema_lock = threading.Lock()
        self.base = (settings.monetate_data_url or "").rstrip("/")

    # -- calls with a token ----------------------------------------------------------------
    def _call(self, method: str, path: str, *, session: requests.Session | None = None, **kwargs: Any) -> requests.Response:
        session = session or self._session
        for attempt in range(2):
            token = self.tokens.token()
            headers = {**kwargs.pop("headers", {}), "Authorization": f"Token {token}"}
            answer = session.request(method, f"{self.base}{path}", headers=headers, **kwargs)
            if answer.status_code == 401 and attempt == 0:
                self.tokens.invalidate(token)  # expired or revoked early: one fresh token, one retry
                kwargs["headers"] = {k: v for k, v in headers.items() if k != "Authorization"}
                continue
            if answer.status_code == 403:
                raise KeyRevoked("Monetate answered 403: the API key behind the token was deactivated")
            return answer
        return answer

    # -- schemas -----------------------------------------------------------------------------
    def schema(self, name: str) -> Schema:
        with self._schema_lock:
            cached = self._schemas.get(name)
            if cached and time.monotonic() - cached[0] < self._settings.monetate_schema_cache_seconds:
                return cached[1]
        try:
            answer = self._call("GET", f"/schema/{name}/")
        except requests.RequestException as exc:
            raise TransientFailure(f"schema lookup failed: {type(exc).__name__}") from None
        if answer.status_code == 404:
            raise UnknownSchema(f"Monetate has no schema named {name!r}")
        if answer.status_code != 200:
            raise TransientFailure(f"schema lookup answered {answer.status_code}")
        schema = Schema.from_api(answer.json()["data"])
        with self._schema_lock:
            self._schemas[name] = (time.monotonic(), schema)
        return schema

    # -- rows --------------------------------------------------------------------------------
    def post_rows(self, schema: Schema, rows: list[dict[str, Any]]) -> None:
        """Post one batch; raises RowsRejected, TransientFailure, FateUnknown or KeyRevoked."""
        body = {"schema_rows": rows, "_sent_time": dt.datetime.now(dt.UTC).isoformat()}
        data = orjson.dumps(body)
        if len(data) > self._settings.monetate_batch_bytes and len(rows) > 1:
            raise BatchTooLarge(f"{len(rows)} rows encode to {len(data)} bytes")
        session = self._session if schema.unique_key else self._unsafe_posts
        try:
            answer = self._call("POST", f"/data/{schema.name}/", data=data, session=session,
                                headers={"Content-Type": "application/json"})
        except (requests.ConnectionError, requests.Timeout) as exc:
            if schema.unique_key or isinstance(exc, requests.exceptions.ConnectTimeout):
                raise TransientFailure(f"posting failed: {type(exc).__name__}") from None
            raise FateUnknown(f"the answer was lost ({type(exc).__name__}); the rows may have landed") from None
        if answer.status_code == 201:
            return
        if answer.status_code == 400:
            raise RowsRejected(answer.json().get("meta", {}).get("errors", []))
        if answer.status_code == 404:
            raise UnknownSchema(f"Monetate has no schema named {schema.name!r}")
        if not schema.unique_key and answer.status_code not in REFUSED_BEFORE_PROCESSING:
            raise FateUnknown(f"Monetate answered {answer.status_code}; the rows may or may not have landed")
        raise TransientFailure(f"Monetate answered {answer.status_code} after retries")
