"""Mona client: tokens from the api-token endpoint, and ``/export``.

Credentials ``{"api_key", "secret", "user_id"?}`` come from Secrets Manager. The access and
refresh tokens are cached in memory and renewed when less than a margin remains (the
refresh token first, a new login if that fails); a 401 from ``/export`` logs in again
once. The user id is the access token's ``tenantId`` claim unless the secret names it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
import requests
import urllib3

from martech.http import make_pool, make_session, out_of_time, pool_failure, within
from martech.vendor_secrets import Fetch, fetch_json_secret, read_secret, secret_fields
from martech.settings import Settings

ACTIONS = ("OVERWRITE", "ADD", "NEW")


class MonaAuthError(Exception):
    """Mona refused the api key and secret: check the Mona secret."""


class MonaUnavailable(Exception):
    """Mona kept failing (429/5xx/connection) after the retries; try again later."""


class TopLevelError(Exception):
    """Mona rejected the whole request; the message is its reason."""


class FateUnknown(Exception):
    """The export was sent but its answer was lost; resending could apply ADD/NEW twice."""


def overwrites_only(messages: list[dict[str, Any]], default_action: str | None = None) -> bool:
    """Whether every message overwrites, so that sending them again changes nothing."""
    return all((m.get("action") or default_action or "OVERWRITE") == "OVERWRITE" for m in messages)


@dataclass
class ExportResult:
    """Messages Mona refused, by their index in the request, with its reasons."""

    failed: dict[int, list[str]] = field(default_factory=dict)


def _checked_secret(secret: Any) -> dict[str, Any]:
    try:
        return secret_fields(secret, ("api_key", "secret"), ("user_id",))
    except ValueError as exc:
        raise MonaAuthError(f"the Mona secret{exc}") from None


def failure_reasons(body: dict[str, Any], count: int) -> dict[int, list[str]]:
    """[inferred] ``failure_reasons`` keyed by the message's index; other keys fail the whole batch."""
    reasons = body.get("failure_reasons") or {}
    failed: dict[int, list[str]] = {}
    if isinstance(reasons, dict):
        for key, value in reasons.items():
            try:
                index = int(str(key).split()[0])
            except ValueError:
                continue
            if 0 <= index < count:
                if isinstance(value, dict):
                    value = value.get("reasons") or value.get("reason") or value
                failed[index] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    if not failed and body.get("failed"):
        text = str(reasons) if reasons else "refused by Mona"
        failed = {i: [text] for i in range(count)}
    return failed


class MonaTokens:
    def __init__(self, settings: Settings, session: requests.Session,
                 fetch_secret: Fetch = fetch_json_secret,
                 clock: Callable[[], float] = time.time) -> None:
        settings.require("mona_secret_name", "mona_auth_url")
        self._settings, self._session, self._fetch, self._clock = settings, session, fetch_secret, clock
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0
        self.user_id: str | None = None
        self.logins = 0

    def token(self) -> str:
        with self._lock:
            if self._access and self._clock() < self._expires_at - self._settings.mona_token_margin:
                return self._access
            return self._renew()

    def invalidate(self, token: str) -> None:
        with self._lock:
            if self._access == token:
                self._access, self._refresh = None, None  # a 401: log in again, not refresh

    def _renew(self) -> str:
        answer = None
        if self._refresh:
            answer = self._post(self._settings.mona_refresh_url or f"{self._settings.mona_auth_url}/token/refresh",
                                {"refreshToken": self._refresh})
        if answer is None or answer.status_code != 200:
            secret = self._secret(force=False)
            answer = self._post(self._settings.mona_auth_url or "", {"clientId": secret["api_key"], "secret": secret["secret"]})
            if answer.status_code == 401:  # rotated? read the secret past its cache, once
                secret = self._secret(force=True)
                answer = self._post(self._settings.mona_auth_url or "",
                                    {"clientId": secret["api_key"], "secret": secret["secret"]})
            if answer.status_code == 401:
                raise MonaAuthError("Mona refused the api_key and secret (401)")
            self.logins += 1
        if answer.status_code != 200:
            raise MonaUnavailable(f"Mona's auth answered {answer.status_code}")
        data = answer.json()
        self._access, self._refresh = data["accessToken"], data.get("refreshToken")
        self._expires_at = self._clock() + float(data["expiresIn"])
        if not self.user_id:
            claims = jwt.decode(self._access, options={"verify_signature": False})
            self.user_id = str(claims["tenantId"])
        return self._access

    def _secret(self, force: bool) -> dict[str, Any]:
        secret = read_secret(self._fetch, self._settings.mona_secret_name or "", self._settings.secret_cache_seconds,
                             _checked_secret, MonaAuthError, force)
        if secret.get("user_id"):
            self.user_id = str(secret["user_id"])
        return secret

    def _post(self, url: str, body: dict[str, Any]) -> requests.Response:
        try:
            return self._session.post(url, json=body)
        except requests.RequestException as exc:
            raise MonaUnavailable(f"Mona's auth could not be reached: {type(exc).__name__}") from None


class MonaClient:
    def __init__(self, settings: Settings, tokens: MonaTokens | None = None,
                 session: requests.Session | None = None) -> None:
        settings.require("mona_export_url")
        self._settings = settings
        self._session = session or make_session(settings)
        self.tokens = tokens or MonaTokens(settings, self._session)
        self._pools: dict[bool, urllib3.PoolManager] = {}  # by whether a lost answer may be resent

    def _pool(self, safe: bool) -> urllib3.PoolManager:
        """Batches go through bare urllib3 pools (a post costs a third of the CPU it costs through
        requests), made on first use: the export host is known once logged in."""
        if safe not in self._pools:
            self._pools[safe] = make_pool(self._settings, self.export_url(), posts_are_safe=safe)
        return self._pools[safe]

    def export_url(self) -> str:
        """The export URL; ``{user_id}`` in the setting is filled (Mona's host is per user)."""
        return (self._settings.mona_export_url or "").replace("{user_id}", self.tokens.user_id or "")

    def export(self, messages: list[dict[str, Any]], default_action: str | None = None,
               deadline: float | None = None) -> ExportResult:
        """Send one batch. Resent after a lost answer only when every message overwrites. With a
        ``deadline`` (``time.monotonic()``), no try starts or waits for its answer past it."""
        token = self.tokens.token()
        body: dict[str, Any] = {"userId": self.tokens.user_id, "messages": messages}
        if default_action:
            body["defaultAction"] = default_action
        overwrite_only = overwrites_only(messages, default_action)
        pool = self._pool(safe=overwrite_only)
        data = orjson.dumps(body)
        for attempt in range(2):
            try:
                answer = pool.request("POST", self.export_url(), body=data, headers={
                    "Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                    **within(pool, self._settings, deadline))
            except urllib3.exceptions.HTTPError as exc:
                failure, never_sent = pool_failure(exc)
                failure = out_of_time(failure, deadline)
                if overwrite_only or never_sent:
                    raise MonaUnavailable(f"export failed: {failure}") from None
                raise FateUnknown(f"the answer was lost ({failure})") from None
            if answer.status == 401 and attempt == 0:
                self.tokens.invalidate(token)
                token = self.tokens.token()
                continue
            break
        status = answer.status
        if status == 200:
            return ExportResult()
        if status == 401:  # a token fresh from a login that worked: try the batch again later
            raise MonaUnavailable("Mona refused a fresh access token")
        if status == 429 or status >= 500:
            if not overwrite_only and status not in (429, 503):
                raise FateUnknown(f"Mona answered {status}; the messages may or may not have landed")
            raise MonaUnavailable(f"Mona answered {status} after retries")
        try:
            payload = orjson.loads(answer.data)
        except orjson.JSONDecodeError:
            payload = {"topLevelError": answer.data[:500].decode(errors="replace") or f"HTTP {status}"}
        if isinstance(payload, dict) and payload.get("topLevelError"):
            raise TopLevelError(str(payload["topLevelError"]))
        if isinstance(payload, dict) and "failed" in payload:
            return ExportResult(failure_reasons(payload, len(messages)))
        raise TopLevelError(f"Mona answered {status}: {str(payload)[:300]}")
