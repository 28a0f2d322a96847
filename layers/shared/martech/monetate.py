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
from collections.abc import Callable
from typing import Any

import orjson
import requests
import urllib3

from martech.http import REFUSED_BEFORE_PROCESSING, make_pool, make_session, out_of_time, pool_failure, within
from martech.monetate_auth import KeyRevoked, MonetateTokenProvider
from martech.monetate_rows import Schema
from martech.names import did_you_mean
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
        self.tokens = tokens or MonetateTokenProvider(settings, self._session)
        self._schemas: dict[str, tuple[float, Schema]] = {}
        self._schema_lock = threading.Lock()
        self.base = (settings.monetate_data_url or "").rstrip("/")
        # Batches go through bare urllib3 pools: a post costs a third of the CPU it costs through requests.
        self._posts = make_pool(settings, self.base)
        self._unsafe_posts = make_pool(settings, self.base, posts_are_safe=False)

    # -- calls with a token ----------------------------------------------------------------
    def _authorized(self, send: Callable[[str], tuple[int, Any]]) -> tuple[int, Any]:
        """``send(token)`` -> (status, answer); a 401 gets one fresh token and one retry, a 403
        raises KeyRevoked."""
        for attempt in range(2):
            token = self.tokens.token()
            status, answer = send(token)
            if status == 401 and attempt == 0:
                self.tokens.invalidate(token)  # expired or revoked early: one fresh token, one retry
                continue
            if status == 403:
                raise KeyRevoked("Monetate answered 403: the API key behind the token was deactivated")
            break
        return status, answer

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        def send(token: str) -> tuple[int, requests.Response]:
            answer = self._session.request(method, f"{self.base}{path}", headers={"Authorization": f"Token {token}"},
                                           **kwargs)
            return answer.status_code, answer

        return self._authorized(send)[1]

    # -- schemas -----------------------------------------------------------------------------
    def schema(self, name: str, max_age: float | None = None) -> Schema:
        """The schema, looked up again when the copy held is older than ``max_age`` seconds
        (MONETATE_SCHEMA_CACHE_SECONDS unless given)."""
        max_age = self._settings.monetate_schema_cache_seconds if max_age is None else max_age
        with self._schema_lock:
            cached = self._schemas.get(name)
            if cached and time.monotonic() - cached[0] < max_age:
                return cached[1]
        try:
            answer = self._call("GET", f"/schema/{name}/")
        except requests.RequestException as exc:
            raise TransientFailure(f"schema lookup failed: {type(exc).__name__}") from None
        if answer.status_code == 404:
            raise UnknownSchema(f"Monetate has no schema named {name!r}{did_you_mean(name, self._schema_names())}")
        if answer.status_code != 200:
            raise TransientFailure(f"schema lookup answered {answer.status_code}")
        schema = Schema.from_api(answer.json()["data"])
        with self._schema_lock:
            self._schemas[name] = (time.monotonic(), schema)
        return schema

    def _schema_names(self) -> list[str]:
        """The account's schema names (the first page), to name the nearest in an error; none if they cannot be had."""
        try:
            answer = self._call("GET", "/schema/")
            return [item["name"] for item in answer.json()["data"]] if answer.status_code == 200 else []
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return []

    # -- rows --------------------------------------------------------------------------------
    def post_rows(self, schema: Schema, rows: list[dict[str, Any]], deadline: float | None = None) -> None:
        """Post one batch; raises RowsRejected, TransientFailure, FateUnknown or KeyRevoked. With a
        ``deadline`` (``time.monotonic()``), no try starts or waits for its answer past it."""
        body = {"schema_rows": rows, "_sent_time": dt.datetime.now(dt.UTC).isoformat()}
        data = orjson.dumps(body)
        if len(data) > self._settings.monetate_batch_bytes and len(rows) > 1:
            raise BatchTooLarge(f"{len(rows)} rows encode to {len(data)} bytes")
        pool = self._posts if schema.unique_key else self._unsafe_posts
        url = f"{self.base}/data/{schema.name}/"
        in_time = within(pool, self._settings, deadline)

        def send(token: str) -> tuple[int, urllib3.BaseHTTPResponse]:
            answer = pool.request("POST", url, body=data, headers={"Content-Type": "application/json",
                                                                   "Authorization": f"Token {token}"}, **in_time)
            return answer.status, answer

        try:
            status, answer = self._authorized(send)
        except urllib3.exceptions.HTTPError as exc:
            failure, never_sent = pool_failure(exc)
            failure = out_of_time(failure, deadline)
            if schema.unique_key or never_sent:
                raise TransientFailure(f"posting failed: {failure}") from None
            raise FateUnknown(f"the answer was lost ({failure}); the rows may have landed") from None
        if status == 201:
            return
        if status == 400:
            raise RowsRejected(orjson.loads(answer.data).get("meta", {}).get("errors", []))
        if status == 404:
            raise UnknownSchema(f"Monetate has no schema named {schema.name!r}")
        if not schema.unique_key and status not in REFUSED_BEFORE_PROCESSING:
            raise FateUnknown(f"Monetate answered {status}; the rows may or may not have landed")
        raise TransientFailure(f"Monetate answered {status} after retries")
