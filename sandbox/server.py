"""The HTTP layer every sandbox shares: requests, responses, routing and the server.

A vendor sandbox is a :class:`SandboxApp` subclass that registers its vendor routes and
says how its errors look; this module adds fault injection, the request log, counters and
the ``/_sandbox`` inspection API, and serves it on a threaded HTTP/1.1 server.
"""

from __future__ import annotations

import collections
import json
import re
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs, urlsplit

import orjson

from sandbox.clock import SandboxClock
from sandbox.faults import DROP, DROP_AFTER, THROTTLE, THROTTLE_BARE, FaultInjector, Faults

INSPECTION_PREFIX = "/_sandbox"
REQUEST_LOG_SIZE = 2000


class BadJson(ValueError):
    """The request body is not valid JSON."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str = ""
    raw_query: str = ""
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern
    _json: Any = None

    def json(self) -> Any:
        if self._json is None:
            if not self.body:
                raise BadJson("the request has no body")
            try:
                self._json = orjson.loads(self.body)  # strict: NaN and Infinity are not JSON
            except orjson.JSONDecodeError as exc:
                raise BadJson(f"the body is not valid JSON: {exc}") from None
        return self._json

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        try:
            return orjson.dumps(self.body)
        except TypeError:  # what orjson refuses (integers past 64 bits, say) the stdlib writes
            return json.dumps(self.body, separators=(",", ":")).encode()


class HttpError(Exception):
    """Raised by a handler to answer with the vendor's error shape."""

    def __init__(self, status: int, message: Any, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Dropped(Exception):
    """Close the connection without answering."""


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    name: str
    locked: bool


class Router:
    """Method + path regex routing; ``{name}`` in a path matches one segment."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, *, locked: bool = True) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        name = path.removesuffix("/?") + ("/" if path.endswith("/?") else "")
        self.routes.append(Route(method, re.compile(f"^{regex}$"), handler, name, locked))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """The route, its parameters, and whether the path exists under another method."""
        path_known = False
        for route in self.routes:
            m = route.pattern.match(path)
            if m:
                if route.method == method:
                    return route, m.groupdict(), True
                path_known = True
        return None, {}, path_known


class SandboxApp:
    """Base of a vendor sandbox: state, faults, clock, log, and the inspection API."""

    vendor = "vendor"

    def __init__(self, faults: Faults | None = None) -> None:
        self.clock = SandboxClock()
        self.faults = FaultInjector(faults)
        self.lock = threading.RLock()
        self.vendor_routes = Router()
        self.inspection_routes = Router()
        self._log: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self._by_status: collections.Counter[str] = collections.Counter()
        self._by_route: collections.Counter[str] = collections.Counter()
        self._stats_lock = threading.Lock()
        self._add_common_inspection_routes()

    # -- what a vendor sandbox provides ------------------------------------------------
    def error_body(self, status: int, message: Any) -> Any:
        """The vendor's error envelope for ``status``."""
        return {"error": message}

    def credentials(self) -> dict[str, Any]:
        """What a client needs to talk to this sandbox (printed by the CLI)."""
        return {}

    def state(self) -> dict[str, Any]:
        """A summary of what the sandbox holds."""
        return {}

    def reset_state(self) -> None:
        """Forget records; keep credentials and seeded data."""

    # -- dispatch ----------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Answer one request; raise :class:`Dropped` to close without answering."""
        if request.path == INSPECTION_PREFIX or request.path.startswith(INSPECTION_PREFIX + "/"):
            return self._dispatch(self.inspection_routes, request, record=False)
        target = f"{request.path}?{request.raw_query}" if request.raw_query else request.path
        fault = self.faults.draw() if self.faults.applies_to(target) else None
        latency = self.faults.settings.latency
        if latency:
            time.sleep(latency)
        if fault == DROP:
            self._count(request, "dropped", None)
            raise Dropped()
        if fault in (THROTTLE, THROTTLE_BARE, "500", "503"):
            status = 429 if fault in (THROTTLE, THROTTLE_BARE) else int(fault)
            headers = {}
            if fault == THROTTLE:
                headers["Retry-After"] = _retry_after_value(self.faults.settings.retry_after)
            response = Response(status, self.error_body(status, _FAULT_MESSAGES[status]), headers)
            self._count(request, str(status), None)
            self._remember(request, response, fault="injected")
            return response
        response = self._dispatch(self.vendor_routes, request, record=fault != DROP_AFTER)
        if fault == DROP_AFTER:  # processed, but the client never hears the answer
            self._count(request, "dropped-after", None)
            self._remember(request, response, fault="dropped-after")
            raise Dropped()
        return response

    def _dispatch(self, router: Router, request: Request, *, record: bool) -> Response:
        route, params, path_known = router.match(request.method, request.path)
        try:
            if route is None:
                if path_known:
                    raise HttpError(405, f"method {request.method} not allowed on {request.path}")
                raise HttpError(404, f"no such path: {request.path}")
            request.params = params
            if route.locked:
                with self.lock:
                    response = route.handler(request)
            else:
                response = route.handler(request)
        except HttpError as exc:
            response = Response(exc.status, self.error_body(exc.status, exc.message), exc.headers)
        except Dropped:
            raise
        except Exception:  # a sandbox bug answers 500 like the vendor would, and says why
            traceback.print_exc()
            response = Response(500, self.error_body(500, "unknown error in the sandbox"))
        if record:
            self._count(request, str(response.status), route.name if route else None)
            self._remember(request, response)
        return response

    # -- the log and counters ----------------------------------------------------------
    def _count(self, request: Request, outcome: str, route: str | None) -> None:
        with self._stats_lock:
            self._by_status[outcome] += 1
            if route:
                self._by_route[f"{request.method} {route}"] += 1

    def _remember(self, request: Request, response: Response, fault: str | None = None) -> None:
        entry = {
            "time": self.clock.now(),
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "status": response.status,
            "body": request.body,
        }
        if fault:
            entry["fault"] = fault
        self._log.append(entry)

    def received(self, path_contains: str | None = None) -> list[dict[str, Any]]:
        """Logged vendor requests, oldest first, bodies decoded where they are JSON."""
        entries = [e for e in list(self._log) if not path_contains or path_contains in e["path"]]
        return [{**e, "body": _decode_body(e["body"])} for e in entries]

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            return {
                "total": sum(self._by_status.values()),
                "by_status": dict(self._by_status),
                "by_route": dict(self._by_route),
            }

    def reset(self) -> None:
        with self.lock:
            self.reset_state()
            self._log.clear()
            with self._stats_lock:
                self._by_status.clear()
                self._by_route.clear()
            self.faults.clear()
            self.clock.reset()

    # -- inspection API ----------------------------------------------------------------
    def _add_common_inspection_routes(self) -> None:
        add = self.inspection_routes.add
        add("GET", INSPECTION_PREFIX, lambda r: Response(200, {"vendor": self.vendor, "ok": True}))
        add("GET", f"{INSPECTION_PREFIX}/requests", self._inspect_requests)
        add("GET", f"{INSPECTION_PREFIX}/stats", lambda r: Response(200, self.stats()))
        add("GET", f"{INSPECTION_PREFIX}/state", lambda r: Response(200, self.state()))
        add("GET", f"{INSPECTION_PREFIX}/credentials", lambda r: Response(200, self.credentials()))
        add("POST", f"{INSPECTION_PREFIX}/reset", self._inspect_reset)
        add("GET", f"{INSPECTION_PREFIX}/clock", self._inspect_clock)
        add("POST", f"{INSPECTION_PREFIX}/clock", self._inspect_advance_clock)
        add("GET", f"{INSPECTION_PREFIX}/faults", lambda r: Response(200, self.faults.settings.to_dict()))
        add("PUT", f"{INSPECTION_PREFIX}/faults", self._inspect_set_faults)

    def _inspect_requests(self, request: Request) -> Response:
        entries = self.received(request.arg("path"))
        limit = int(request.arg("limit", "0") or 0)
        return Response(200, entries[-limit:] if limit else entries)

    def _inspect_reset(self, request: Request) -> Response:
        self.reset()
        return Response(200, {"reset": True})

    def _inspect_clock(self, request: Request) -> Response:
        return Response(200, {"now": self.clock.now(), "offset": self.clock.offset})

    def _inspect_advance_clock(self, request: Request) -> Response:
        body = inspection_json(request)
        try:
            self.clock.advance(float(body.get("advance", 0)))
        except (TypeError, ValueError) as exc:
            raise HttpError(400, f"advance: {exc}") from None
        return self._inspect_clock(request)

    def _inspect_set_faults(self, request: Request) -> Response:
        try:
            settings = self.faults.update(inspection_json(request))
        except (TypeError, ValueError) as exc:
            raise HttpError(400, str(exc)) from None
        return Response(200, settings.to_dict())


def inspection_json(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except BadJson as exc:
        raise HttpError(400, str(exc)) from None
    if not isinstance(body, dict):
        raise HttpError(400, "the body must be a JSON object")
    return body


_FAULT_MESSAGES = {
    429: "Too many requests (injected by the sandbox)",
    500: "Unknown error (injected by the sandbox)",
    503: "Service unavailable (injected by the sandbox)",
}


def _retry_after_value(seconds: float) -> str:
    # The header carries whole seconds; fractions are rounded up so a wait is never short.
    whole = int(seconds)
    return str(whole if whole == seconds else whole + 1)


def _decode_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms stalls
    server: SandboxHTTPServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            base_url=self.server.base_url,
            raw_query=parts.query,
        )
        try:
            response = self.server.app.handle(request)
        except Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        payload = response.encoded()
        self.send_response(response.status)
        if response.body is not None and not isinstance(response.body, bytes):
            self.send_header("Content-Type", "application/json")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the request log is kept by the app and served under /_sandbox/requests


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, app: SandboxApp, host: str, port: int) -> None:
        self.app = app
        super().__init__((host, port), _Handler)
        self.base_url = f"http://{host}:{self.server_address[1]}"


class SandboxServer:
    """Serves a sandbox app on loopback in a background thread.

    Example::

        with SandboxServer(MonetateSandbox()) as server:
            requests.get(server.url + "/_sandbox/stats")
    """

    def __init__(self, app: SandboxApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._httpd = SandboxHTTPServer(app, host, port)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self._httpd.base_url

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
            name=f"sandbox-{self.app.vendor}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.1)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: Iterable[Any]) -> None:
        self.stop()
