"""How fast the Monetate sandbox takes 500-row posts on loopback, against a bare HTTP server.

Each server runs in a process of its own (as the sandbox does beside a function under
benchmark) and receives the same 500-row bodies over keep-alive connections. The baseline
reads the body and answers 201 without looking at
it: the cost of HTTP alone. The ratio says how much of a client's time the sandbox's own
work (JSON, auth, validation, storage) adds; the absolute figure says whether it can ever
be the bottleneck of a benchmark of our functions.

    python bench/sandbox_throughput.py [--requests 400] [--clients 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.keys import generate_key_pair  # noqa: E402
from sandbox.monetate import MonetateSandbox  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from recorded import record  # noqa: E402

ROWS = 500
SCHEMA = {
    "name": "bench", "type": "attribute", "named_identifier": "customer_id",
    "fields": {
        "customer_id": {"data_type": "STRING", "identifier": True, "unique_key": True},
        "tier": {"data_type": "STRING"}, "tags": {"data_type": "MULTI_STRING"},
        "spend": {"data_type": "NUMBER"}, "vip": {"data_type": "BOOLEAN"}, "joined": {"data_type": "DATETIME"},
    },
}


def body_for(batch: int) -> bytes:
    rows = [{"customer_id": f"c{batch}-{i}", "tier": "gold", "tags": "a,b", "spend": i * 1.5, "vip": i % 2 == 0,
             "joined": "2024-05-01T10:00:00Z"} for i in range(ROWS)]
    return json.dumps({"schema_rows": rows, "_sent_time": "2024-05-01T10:00:00Z"}).encode()


class _Bare(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def serve_bare(port_queue) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Bare)
    port_queue.put(httpd.server_address[1])
    httpd.serve_forever()


def serve_sandbox(port_queue, public_pem: str) -> None:
    app = MonetateSandbox()
    app.register_key("api-1-bench", public_pem)
    app.create_schema(SCHEMA)
    server = SandboxServer(app)
    port_queue.put(server.port)
    server.serve_forever()


def start(target, *args) -> tuple[multiprocessing.Process, int]:
    ports = multiprocessing.Queue()
    process = multiprocessing.Process(target=target, args=(ports, *args), daemon=True)
    process.start()
    return process, ports.get(timeout=30)


def timed_posts(url: str, bodies: list[bytes], headers: dict[str, str], clients: int) -> float:
    """Seconds to post every body, ``clients`` connections at a time."""
    shares = [bodies[i::clients] for i in range(clients)]

    def post_all(share: list[bytes]) -> None:
        with requests.Session() as session:
            for body in share:
                answer = session.post(url, data=body, headers=headers)
                if answer.status_code != 201:
                    raise SystemExit(f"unexpected {answer.status_code}: {answer.text[:200]}")

    post_all(bodies[:2])  # warm up
    with ThreadPoolExecutor(clients) as pool:
        begin = time.perf_counter()
        list(pool.map(post_all, shares))
        return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    bodies = [body_for(i) for i in range(args.requests)]
    json_headers = {"Content-Type": "application/json"}
    private_pem, public_pem = generate_key_pair()

    bare, bare_port = start(serve_bare)
    baseline = timed_posts(f"http://127.0.0.1:{bare_port}/data", bodies, json_headers, args.clients)
    bare.terminate()

    sandbox_process, port = start(serve_sandbox, public_pem)
    url = f"http://127.0.0.1:{port}"
    assertion = jwt.encode({"username": "api-1-bench", "iat": int(time.time())}, private_pem, algorithm="RS256")
    token = requests.get(f"{url}/api/auth/v0/refresh/", headers={"Authorization": f"JWT {assertion}"}).json()
    headers = {**json_headers, "Authorization": f"Token {token['data']['token']}"}
    sandbox = timed_posts(f"{url}/api/data/v1/sandbox/production/data/bench/", bodies, headers, args.clients)
    held = requests.get(f"{url}/_sandbox/state").json()["schemas"]["bench"]
    sandbox_process.terminate()

    record("sandbox_throughput", {
        "rows_per_request": ROWS,
        "requests": args.requests,
        "clients": args.clients,
        "baseline_requests_per_s": round(args.requests / baseline, 1),
        "sandbox_requests_per_s": round(args.requests / sandbox, 1),
        "sandbox_rows_per_s": round(args.requests * ROWS / sandbox),
        "sandbox_vs_baseline": round(baseline / sandbox, 3),
        "rows_held": held,
    })


if __name__ == "__main__":
    main()
