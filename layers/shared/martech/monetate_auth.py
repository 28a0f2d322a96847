"""The Monetate token provider.

Credentials ``{"username", "private_key", "algorithm"?}`` come from Secrets Manager through
Powertools Parameters (cached). A JWT with ``username`` and ``iat``, signed with the
private key, is traded at the Auth API for a token, which is cached in memory until
``expires_at`` minus a margin. One refresh runs at a time across threads. A 401 from the
Auth API re-reads the secret past the cache once, so a rotated key is picked up; a 403
means the key was deactivated and stops everything with :class:`KeyRevoked`.

Example::

    tokens = MonetateTokenProvider(settings, session)
    session.get(url, headers={"Authorization": f"Token {tokens.token()}"})
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

import jwt
import requests
from cryptography.hazmat.primitives import serialization

from martech.vendor_secrets import Fetch, fetch_json_secret, read_secret
from martech.settings import Settings

ALGORITHMS = ("RS256", "RS384", "RS512")


class MonetateAuthError(Exception):
    """Monetate refused the credentials: check the secret's username and private key."""


class KeyRevoked(MonetateAuthError):
    """Monetate answered 403: the API key was deactivated. Upload a new public key and update the secret."""


class AuthUnavailable(Exception):
    """The Auth API could not be reached or kept failing; worth retrying later."""


@dataclass(frozen=True)
class Credentials:
    username: str
    private_key: Any  # a loaded key object: parsing the PEM on every JWT costs ~50x
    algorithm: str


_KEY_CACHE: dict[str, Any] = {}


def load_credentials(secret: Any) -> Credentials:
    """Credentials from the secret's JSON; the message never contains the key itself."""
    if not isinstance(secret, dict):
        raise MonetateAuthError('the Monetate secret must be JSON: {"username": ..., "private_key": ...}')
    username, pem = secret.get("username"), secret.get("private_key")
    username = username.strip() if isinstance(username, str) else username  # as copied, with a line break after it
    algorithm = secret.get("algorithm") or "RS256"
    if not username or not pem:
        raise MonetateAuthError("the Monetate secret needs both 'username' and 'private_key'")
    if algorithm not in ALGORITHMS:
        raise MonetateAuthError(f"the Monetate secret's algorithm must be one of {', '.join(ALGORITHMS)}")
    digest = hashlib.sha256(pem.encode()).hexdigest()
    key = _KEY_CACHE.get(digest)
    if key is None:
        try:
            key = serialization.load_pem_private_key(_pem_lines(pem).encode(), password=None)
        except (ValueError, TypeError):
            raise MonetateAuthError(f"the Monetate secret's private_key {_what_the_key_is(pem)}") from None
        _KEY_CACHE[digest] = key
    return Credentials(username, key, algorithm)


# A PEM block: its label (PRIVATE KEY, RSA PRIVATE KEY) and its base64 body.
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


def _pem_lines(pem: str) -> str:
    """The PEM with its newlines, where a secret's editor wrote each as the two characters \\n (JSON
    escaped twice, as a shell or Terraform string may do); lines joined by spaces read as they are."""
    return pem.replace("\\r\\n", "\n").replace("\\n", "\n")


def _what_the_key_is(pem: str) -> str:
    """Why ``pem`` is no key to sign with, without a word of the key itself."""
    block = _PEM.search(_pem_lines(pem))
    if block is None:
        return "is no PEM key: it must run from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY-----"
    if "ENCRYPTED" in block[0]:
        return ("is encrypted: store it unencrypted (openssl pkcs8 -topk8 -nocrypt -in key.pem), as the function has"
                " no password to open it")
    if "PRIVATE" not in block[1]:
        return (f"is a {block[1]} block, not a private key: the secret holds the private key, and Monetate the"
                " public one that goes with it")
    return "is not a readable unencrypted PEM key"


class MonetateTokenProvider:
    def __init__(self, settings: Settings, session: requests.Session,
                 fetch_secret: Fetch = fetch_json_secret,
                 clock: Callable[[], float] = time.time) -> None:
        settings.require("monetate_secret_name")
        self._settings = settings
        self._session = session
        self._fetch = fetch_secret
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.refreshes = 0

    def token(self) -> str:
        token = self._token
        if token and self._clock() < self._expires_at - self._settings.monetate_token_margin:
            return token
        with self._lock:  # one refresh at a time; the others wait and reuse it
            if self._token and self._clock() < self._expires_at - self._settings.monetate_token_margin:
                return self._token
            return self._refresh()

    def invalidate(self, token: str) -> None:
        """Forget ``token`` after a 401, unless another thread already replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _refresh(self) -> str:
        credentials = self._credentials(force=False)
        answer = self._ask(credentials)
        if answer.status_code == 401:  # maybe the key was rotated: read the secret past the cache
            credentials = self._credentials(force=True)
            answer = self._ask(credentials)
        if answer.status_code == 403:
            raise KeyRevoked(f"Monetate answered 403 for API user {credentials.username}: the key is deactivated")
        if answer.status_code == 401:
            raise MonetateAuthError(f"Monetate refused the JWT of API user {credentials.username} (401): "
                                    "check the username and that its public key is uploaded and active")
        if answer.status_code != 200:
            raise AuthUnavailable(f"the Monetate Auth API answered {answer.status_code}")
        data = answer.json()["data"]
        self._token, self._expires_at = data["token"], float(data["expires_at"])
        self.refreshes += 1
        return self._token

    def _credentials(self, force: bool) -> Credentials:
        return read_secret(self._fetch, self._settings.monetate_secret_name or "", self._settings.secret_cache_seconds,
                           load_credentials, MonetateAuthError, force)

    def _ask(self, credentials: Credentials) -> requests.Response:
        assertion = jwt.encode({"username": credentials.username, "iat": int(time.time())},
                               credentials.private_key, algorithm=credentials.algorithm)
        try:
            return self._session.get(self._settings.monetate_auth_url, params={"ttl": self._settings.monetate_token_ttl},
                                     headers={"Authorization": f"JWT {assertion}"})
        except requests.RequestException as exc:
            raise AuthUnavailable(f"the Monetate Auth API could not be reached: {type(exc).__name__}") from None
