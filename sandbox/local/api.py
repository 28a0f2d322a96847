"""A local API Gateway: REST proxy events from HTTP requests, API keys required."""

from __future__ import annotations

import base64
import queue
import re
import threading
import traceback
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.local.functions import LocalFunction


@dataclass
class Route:
    method: str
    resource: str  # /monetate/{schema}/records
    pattern: re.Pattern[str]
    function: LocalFunction


def _pattern(resource: str) -> re.Pattern[str]:
    """``{name}`` matches one path segment, greedy ``{name+}`` the rest of the path."""
    regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", resource)
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex) + "$")


def proxy_event(method: str, resource: str, path: str, params: dict[str, str], query: dict[str, list[str]],
                headers: dict[str, str], body: bytes, stage: str) -> dict[str, Any]:
    """The event API Gateway's REST proxy integration sends to a function."""
    try:
        text, encoded = body.decode(), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource, "httpMethod": method, "path": f"/{stage}{path}", "stage": stage,
            "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1", "apiKey": headers.get("x-api-key")},
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


INTEGRATION_TIMEOUT = 29.0  # seconds API Gateway waits for a function's answer (REST API default)
_JSON = {"Content-Type": "application/json"}


def answer_headers(result: dict[str, Any]) -> list[tuple[str, str]]:
    """A proxy answer's headers as API Gateway sends them: ``headers`` and ``multiValueHeaders`` (where
    Powertools puts them) merged, a name and value given in both sent once."""
    multi = [(name, str(value)) for name, values in (result.get("multiValueHeaders") or {}).items() for value in values]
    single = [(name, str(value)) for name, value in (result.get("headers") or {}).items()]
    return [pair for pair in single if pair not in multi] + multi


class LocalApi:
    """Serves every Api event of the template on one loopback port. As API Gateway does, it answers
    504 when a function has not answered within ``integration_timeout`` seconds (the function goes
    on, unheard) and 502 when it fails."""

    def __init__(self, api_key: str, stage: str = "local", host: str = "127.0.0.1", port: int = 0,
                 integration_timeout: float = INTEGRATION_TIMEOUT) -> None:
        self.api_key = api_key
        self.stage = stage
        self.integration_timeout = integration_timeout
        self.routes: list[Route] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = api.handle(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://{host}:{self._httpd.server_address[1]}"

    def add(self, method: str, resource: str, function: LocalFunction) -> None:
        self.routes.append(Route(method, resource, _pattern(resource), function))

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k.lower(): v for k, v in headers.items()}
        parts = urlsplit(raw_path)
        if headers.get("x-api-key") != self.api_key:
            return 403, list(_JSON.items()), b'{"message":"Forbidden"}'
        for route in self.routes:
            match = route.pattern.match(parts.path)
            if match and route.method in (method, "ANY"):
                event = proxy_event(method, route.resource, parts.path, match.groupdict(),
                                    parse_qs(parts.query, keep_blank_values=True), headers, body, self.stage)
                result = self._invoke(route.function, event)
                payload = result.get("body") or ""
                data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
                return int(result["statusCode"]), answer_headers(result), data
        return 404, list(_JSON.items()), b'{"message":"Missing Authentication Token"}'

    def _invoke(self, function: LocalFunction, event: dict[str, Any]) -> dict[str, Any]:
        answers: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

        def invoke() -> None:
            try:
                answers.put((True, function.invoke(event)))
            except Exception:  # noqa: BLE001 - as Lambda, the failure is logged and API Gateway answers 502
                traceback.print_exc()
                answers.put((False, None))

        threading.Thread(target=invoke, daemon=True, name="api-invocation").start()
        try:
            answered, result = answers.get(timeout=self.integration_timeout)
        except queue.Empty:
            return {"statusCode": 504, "headers": _JSON, "body": '{"message": "Endpoint request timed out"}'}
        return result if answered else {"statusCode": 502, "headers": _JSON, "body": '{"message": "Internal server error"}'}

    def start(self) -> LocalApi:
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
