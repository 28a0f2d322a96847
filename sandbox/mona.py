"""The Mona sandbox: the identity provider's api-token endpoints and the ``/export``
endpoint that merges messages into contexts, as the official ``mona-sdk`` expects."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson

from sandbox.faults import Faults
from sandbox.server import INSPECTION_PREFIX, HttpError, Request, Response, SandboxApp

AUTH_PREFIX = "/identity/resources/auth/v1/api-token"
ACTIONS = ("OVERWRITE", "ADD", "NEW")
ARC_CLASS = re.compile(r"^[A-Za-z0-9_@-]+$")
AUTH_ERROR = {"errors": ["Invalid authentication"]}
# A request with some bad messages keeps the good ones and answers this status with
# {"failed": n, "failure_reasons": {...}}; the SDK reads that body only from a non-2xx answer.
PARTIAL_FAILURE_STATUS = 400


def failure_reasons(failures: dict[int, tuple[str | None, list[str]]]) -> dict[str, Any]:
    """``failure_reasons`` keyed by the message's index in the request."""
    return {str(i): {"contextId": cid, "reasons": reasons} for i, (cid, reasons) in failures.items()}


@dataclass
class MonaSettings:
    client_id: str = field(default_factory=lambda: secrets.token_hex(12))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    user_id: str = field(default_factory=lambda: f"sandbox{secrets.randbelow(10**6):06d}")
    token_lifetime: int = 4 * 3600  # the vendor's pages say 4 h in one place: clients must read expiresIn


@dataclass
class Context:
    arc_class: str
    context_id: str
    fields: dict[str, Any]
    first_arrival: float
    main_time: float
    messages: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "arcClass": self.arc_class, "contextId": self.context_id, "fields": self.fields,
            "mainTime": self.main_time, "messages": self.messages,
        }


class MonaSandbox(SandboxApp):
    vendor = "mona"

    def __init__(self, settings: MonaSettings | None = None, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.settings = settings or MonaSettings()
        self._signing_key = secrets.token_bytes(32)
        self.access_tokens: dict[str, float] = {}  # token -> when it really stops working
        self.refresh_tokens: dict[str, str] = {}  # unused refresh token -> client id
        self.contexts: dict[tuple[str, str], Context] = {}
        add = self.vendor_routes.add
        add("POST", AUTH_PREFIX, self.api_token)
        add("POST", f"{AUTH_PREFIX}/token/refresh", self.refresh)
        for path, authenticated in (("/export", True), ("/sendEvent", True), ("/monaExport", False), ("/monaSendEvent", False)):
            add("POST", path, lambda r, a=authenticated: self.export(r, authenticated=a))
        inspect = self.inspection_routes.add
        inspect("GET", f"{INSPECTION_PREFIX}/contexts", self._inspect_contexts)
        inspect("GET", f"{INSPECTION_PREFIX}/contexts/{{arc_class}}/{{context_id}}", self._inspect_context)

    # -- SandboxApp ----------------------------------------------------------------------
    def error_body(self, status: int, message: Any) -> Any:
        if status == 401:
            return AUTH_ERROR
        return {"topLevelError": message}

    def credentials(self) -> dict[str, Any]:
        return {"client_id": self.settings.client_id, "secret": self.settings.secret, "user_id": self.settings.user_id}

    def state(self) -> dict[str, Any]:
        per_class: dict[str, int] = {}
        for arc_class, _ in self.contexts:
            per_class[arc_class] = per_class.get(arc_class, 0) + 1
        return {"contexts": per_class, "live_access_tokens": len(self.access_tokens)}

    def reset_state(self) -> None:
        self.contexts.clear()
        self.access_tokens.clear()
        self.refresh_tokens.clear()

    # -- auth ------------------------------------------------------------------------------
    def api_token(self, request: Request) -> Response:
        body = _object(request, AUTH_ERROR, status=401)
        if not (secrets.compare_digest(str(body.get("clientId", "")), self.settings.client_id)
                and secrets.compare_digest(str(body.get("secret", "")), self.settings.secret)):
            return Response(401, AUTH_ERROR)
        return Response(200, self._issue())

    def refresh(self, request: Request) -> Response:
        body = _object(request, AUTH_ERROR, status=401)
        client = self.refresh_tokens.pop(str(body.get("refreshToken", "")), None)  # rotated: one use
        if client is None:
            return Response(401, AUTH_ERROR)
        return Response(200, self._issue())

    def _issue(self) -> dict[str, Any]:
        now = self.clock.now()
        lifetime = self.settings.token_lifetime
        access = jwt.encode(
            {"tenantId": self.settings.user_id, "sub": self.settings.client_id, "iat": int(now),
             "exp": int(now + lifetime), "jti": secrets.token_hex(8)},
            self._signing_key, algorithm="HS256",
        )
        real = self.faults.settings.token_ttl
        self.access_tokens[access] = now + (min(lifetime, real) if real else lifetime)
        refresh = secrets.token_urlsafe(32)
        self.refresh_tokens[refresh] = self.settings.client_id
        return {"accessToken": access, "refreshToken": refresh, "expiresIn": lifetime}

    def _tenant(self, request: Request) -> str:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        dies_at = self.access_tokens.get(token.strip()) if scheme == "Bearer" else None
        if dies_at is None or self.clock.now() >= dies_at:
            raise HttpError(401, "Invalid authentication")
        try:
            claims = jwt.decode(token.strip(), self._signing_key, algorithms=["HS256"], options={"verify_exp": False})
        except jwt.PyJWTError:
            raise HttpError(401, "Invalid authentication") from None
        return str(claims["tenantId"])

    # -- export ------------------------------------------------------------------------------
    def export(self, request: Request, *, authenticated: bool) -> Response:
        tenant = self._tenant(request) if authenticated else self.settings.user_id
        body = _object(request, None, status=400)
        if str(body.get("userId")) != tenant:
            raise HttpError(400, "userId is missing or does not match the credentials")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise HttpError(400, "messages must be a non-empty list")
        default_action = body.get("defaultAction")
        if default_action is not None and default_action not in ACTIONS:
            raise HttpError(400, f"defaultAction must be one of {', '.join(ACTIONS)}")
        failures: dict[int, tuple[str | None, list[str]]] = {}
        now = self.clock.now()
        for i, message in enumerate(messages):
            reasons = _message_errors(message)
            if reasons:
                cid = message.get("contextId") if isinstance(message, dict) else None
                failures[i] = (cid if isinstance(cid, str) else None, reasons)
                continue
            self._merge(message, default_action, now)
        if failures:
            return Response(PARTIAL_FAILURE_STATUS, {"failed": len(failures), "failure_reasons": failure_reasons(failures)})
        return Response(200, {"failed": 0, "failure_reasons": {}})

    def _merge(self, message: dict[str, Any], default_action: str | None, now: float) -> None:
        arc_class = message["arcClass"]
        context_id = message.get("contextId")
        context_id = uuid.uuid4().hex if context_id is None else str(context_id)
        action = message.get("action") or default_action or "OVERWRITE"
        stamp = message.get("sendTimestamp")
        stamp = message.get("exportTimestamp") if stamp is None else stamp
        fields = message["message"]
        context = self.contexts.get((arc_class, context_id))
        if context is None or action == "NEW":
            first = context.first_arrival if context else now
            context = Context(arc_class, context_id, {}, first, first)
            self.contexts[(arc_class, context_id)] = context
        if action == "ADD":
            for name, value in fields.items():
                old = context.fields.get(name, [])
                old = old if isinstance(old, list) else [old]
                context.fields[name] = old + (value if isinstance(value, list) else [value])
        else:
            context.fields.update(fields)
        context.messages += 1
        if stamp is not None:
            context.main_time = to_epoch(stamp)

    # -- inspection --------------------------------------------------------------------------
    def _inspect_contexts(self, request: Request) -> Response:
        wanted = request.arg("arcClass")
        return Response(200, [c.view() for (arc, _), c in self.contexts.items() if not wanted or arc == wanted])

    def _inspect_context(self, request: Request) -> Response:
        context = self.contexts.get((request.params["arc_class"], request.params["context_id"]))
        if context is None:
            raise HttpError(404, "no such context")
        return Response(200, context.view())


def _object(request: Request, auth_error: dict[str, Any] | None, status: int) -> dict[str, Any]:
    """The body as an object; NaN and Infinity are not JSON and are refused."""
    try:
        body = orjson.loads(request.body)  # strict: NaN and Infinity are not JSON
    except orjson.JSONDecodeError as exc:
        if auth_error is not None:
            raise HttpError(status, auth_error) from None
        raise HttpError(status, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        if auth_error is not None:
            raise HttpError(status, auth_error)
        raise HttpError(status, "the body must be a JSON object")
    return body


def _message_errors(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return ["a message must be a JSON object"]
    reasons = []
    arc_class = message.get("arcClass")
    if not isinstance(arc_class, str) or not ARC_CLASS.match(arc_class):
        reasons.append("arcClass is required: letters, digits, _, @ and - only")
    if not isinstance(message.get("message"), dict):
        reasons.append("message is required and must be a JSON object")
    context_id = message.get("contextId")
    if context_id is not None and (isinstance(context_id, bool) or not isinstance(context_id, (str, int)) or context_id == ""):
        reasons.append("contextId must be a non-empty string")
    action = message.get("action")
    if action is not None and action not in ACTIONS:
        reasons.append(f"action must be one of {', '.join(ACTIONS)}")
    for name in ("exportTimestamp", "sendTimestamp"):
        value = message.get(name)
        if value is not None:
            try:
                to_epoch(value)
            except ValueError as exc:
                reasons.append(f"{name}: {exc}")
    return reasons


def to_epoch(value: Any) -> float:
    """Unix seconds (10 digits, float allowed), Unix milliseconds (13 digits) or ISO-8601."""
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    if isinstance(value, (int, float)):
        digits = len(str(int(abs(value))))
        if digits == 10:
            return float(value)
        if digits == 13:
            return value / 1000.0
        raise ValueError(f"{value} is neither Unix seconds (10 digits) nor milliseconds (13 digits)")
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    raise ValueError("a timestamp must be a number or an ISO-8601 string")
