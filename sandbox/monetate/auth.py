"""Monetate's Auth API rules: registered public keys, signed JWTs, expiring tokens.

A JWT is accepted when it is signed RS256/RS384/RS512 by an active key of the API user
named in its ``username`` claim and its ``iat`` is within 60 s of the sandbox clock.
Tokens are bound to the retailer they were issued for and expire on the sandbox clock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.server import HttpError

ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512")
IAT_LEEWAY_SECONDS = 60
TTL_MIN, TTL_MAX, TTL_DEFAULT = 600, 43200, 3600


@dataclass
class PublicKey:
    key_id: str
    username: str
    key: rsa.RSAPublicKey
    active: bool = True


@dataclass
class Token:
    value: str
    username: str
    key_id: str
    retailer: str
    issued_at: float
    expires_at: float  # announced to the client
    dies_at: float  # when it really stops working (earlier under the token_ttl fault)


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """Accepts SPKI (``BEGIN PUBLIC KEY``) and PKCS#1 (``BEGIN RSA PUBLIC KEY``) PEM."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("only RSA public keys are accepted")
    return key


class MonetateAuth:
    """Keys, JWT verification and token bookkeeping. Callers hold the app lock."""

    def __init__(self) -> None:
        self.keys: dict[str, PublicKey] = {}
        self.tokens: dict[str, Token] = {}

    def register_key(self, username: str, public_key_pem: str) -> PublicKey:
        key = PublicKey(f"key-{len(self.keys) + 1}", username, load_public_key(public_key_pem))
        self.keys[key.key_id] = key
        return key

    def set_active(self, key_id: str, active: bool) -> PublicKey:
        key = self.keys.get(key_id)
        if key is None:
            raise HttpError(404, f"no key {key_id}")
        key.active = active
        return key

    def usernames(self) -> list[str]:
        return sorted({k.username for k in self.keys.values()})

    # -- refresh -------------------------------------------------------------------------
    def verify_jwt(self, authorization: str | None, now: float) -> PublicKey:
        """The key that signed the JWT in ``Authorization: JWT <jwt>``; 401/403 otherwise."""
        scheme, _, assertion = (authorization or "").partition(" ")
        if scheme != "JWT" or not assertion.strip():
            raise HttpError(401, "Authentication credentials were not provided: use 'Authorization: JWT <jwt>'.")
        assertion = assertion.strip()
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise HttpError(401, "The JWT could not be decoded.") from None
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS:
            raise HttpError(401, f"JWT algorithm {algorithm!r} is not allowed; use RS256, RS384 or RS512.")
        username = claims.get("username")
        candidates = [k for k in self.keys.values() if k.username == username] if isinstance(username, str) else []
        if not candidates:
            raise HttpError(401, "Unknown or missing 'username' claim.")
        signer = self._signer(assertion, algorithm, candidates)
        if signer is None:
            raise HttpError(401, "The JWT signature does not match any key of this user.")
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, (int, float)):
            raise HttpError(401, "Missing or malformed 'iat' claim.")
        if abs(now - iat) > IAT_LEEWAY_SECONDS:
            raise HttpError(401, "The 'iat' claim is more than 60 seconds away from the server time.")
        if not signer.active:
            raise HttpError(403, "The public key for this JWT has been deactivated.")
        return signer

    @staticmethod
    def _signer(assertion: str, algorithm: str, candidates: list[PublicKey]) -> PublicKey | None:
        # Active keys first, so a user with an old inactive key and a new one gets the new one.
        for key in sorted(candidates, key=lambda k: not k.active):
            try:
                jwt.decode(
                    assertion, key.key, algorithms=[algorithm],
                    options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
                )
                return key
            except jwt.PyJWTError:
                continue
        return None

    def issue(self, key: PublicKey, retailer: str, ttl: int, now: float, real_ttl: float | None) -> Token:
        token = Token(
            value=f"1.{secrets.token_urlsafe(18)}.{secrets.token_urlsafe(32)}",
            username=key.username,
            key_id=key.key_id,
            retailer=retailer,
            issued_at=now,
            expires_at=now + ttl,
            dies_at=now + min(ttl, real_ttl) if real_ttl else now + ttl,
        )
        self.tokens[token.value] = token
        return token

    # -- every other call ----------------------------------------------------------------
    def check_token(self, authorization: str | None, retailer: str, now: float) -> Token:
        scheme, _, value = (authorization or "").partition(" ")
        if scheme != "Token" or not value.strip():
            raise HttpError(401, "Authentication credentials were not provided: use 'Authorization: Token <token>'.")
        token = self.tokens.get(value.strip())
        if token is None:
            raise HttpError(401, "Invalid token.")
        if now >= token.dies_at:
            raise HttpError(401, "Token has expired.")
        if token.retailer != retailer:
            raise HttpError(401, "Invalid token for this retailer.")
        if not self.keys[token.key_id].active:
            raise HttpError(403, "Token has been revoked: its public key was deactivated.")
        return token

    def token_payload(self, token: Token) -> dict[str, Any]:
        return {
            "token": token.value,
            "issued_at": token.issued_at,
            "expires_in": int(round(token.expires_at - token.issued_at)),
            "expires_at": token.expires_at,
        }


def parse_ttl(raw: str | None) -> int:
    if raw is None or raw == "":
        return TTL_DEFAULT
    try:
        ttl = int(raw)
    except ValueError:
        raise HttpError(400, {"field": "ttl", "message": f"ttl must be an integer, got {raw!r}"}) from None
    if not TTL_MIN <= ttl <= TTL_MAX:
        raise HttpError(400, {"field": "ttl", "message": f"ttl must be between {TTL_MIN} and {TTL_MAX} seconds"})
    return ttl
