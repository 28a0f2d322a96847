"""Start the vendor sandboxes from the command line.

    python -m sandbox                      # all three on free loopback ports
    python -m sandbox monetate --port 8101 # one of them
    python -m sandbox --help

Credentials come from the options, else from the environment (SANDBOX_* variables),
else they are generated; either way they are printed, so a client can be pointed here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from sandbox.faults import Faults
from sandbox.keys import generate_key_pair
from sandbox.mona import MonaSandbox, MonaSettings
from sandbox.monetate import MonetateSandbox, MonetateSettings
from sandbox.optimove import OptimoveSandbox, OptimoveSettings
from sandbox.server import SandboxApp, SandboxServer

VENDORS = ("monetate", "optimove", "mona")


def _option(args: argparse.Namespace, name: str, env: str) -> Any:
    value = getattr(args, name, None)
    return value if value is not None else os.environ.get(env)


def build_monetate(args: argparse.Namespace, faults: Faults) -> tuple[MonetateSandbox, dict[str, Any]]:
    app = MonetateSandbox(MonetateSettings(retailer=args.retailer), faults=faults)
    user = _option(args, "api_user", "SANDBOX_MONETATE_API_USER") or "api-1-sandbox"
    key_file = _option(args, "public_key", "SANDBOX_MONETATE_PUBLIC_KEY_FILE")
    info: dict[str, Any] = {"api_user": user, "retailer": args.retailer}
    if key_file:
        app.register_key(user, Path(key_file).read_text())
        info["public_key_file"] = key_file
    else:
        private_pem, public_pem = generate_key_pair()
        key_dir = Path(args.key_dir)
        key_dir.mkdir(parents=True, exist_ok=True)
        private_path = key_dir / "monetate-private-key.pem"
        private_path.write_text(private_pem)
        private_path.chmod(0o600)
        (key_dir / "monetate-public-key.pem").write_text(public_pem)
        app.register_key(user, public_pem)
        info["private_key_file"] = str(private_path)
    return app, info


def build_optimove(args: argparse.Namespace, faults: Faults) -> tuple[OptimoveSandbox, dict[str, Any]]:
    settings = OptimoveSettings(rate_limit=args.rate_limit or None)
    settings.api_key = _option(args, "api_key", "SANDBOX_OPTIMOVE_API_KEY") or settings.api_key
    settings.brand_key = _option(args, "brand_key", "SANDBOX_OPTIMOVE_BRAND_KEY") or settings.brand_key
    app = OptimoveSandbox(settings, faults=faults)
    return app, app.credentials()


def build_mona(args: argparse.Namespace, faults: Faults) -> tuple[MonaSandbox, dict[str, Any]]:
    settings = MonaSettings()
    settings.client_id = _option(args, "client_id", "SANDBOX_MONA_CLIENT_ID") or settings.client_id
    settings.secret = _option(args, "secret", "SANDBOX_MONA_SECRET") or settings.secret
    settings.user_id = _option(args, "user_id", "SANDBOX_MONA_USER_ID") or settings.user_id
    app = MonaSandbox(settings, faults=faults)
    return app, app.credentials()


BUILDERS = {"monetate": build_monetate, "optimove": build_optimove, "mona": build_mona}


def base_urls(vendor: str, url: str, app: SandboxApp) -> dict[str, str]:
    """The URLs a client is configured with, per vendor."""
    if isinstance(app, MonetateSandbox):
        r = app.settings.retailer
        return {
            "auth_url": f"{url}/api/auth/v0/refresh/",
            "data_url": f"{url}/api/data/v1/{r}/production",
            "metadata_url": f"{url}/api/metadata/v1/{r}/production",
        }
    if isinstance(app, OptimoveSandbox):
        return {"base_url": f"{url}/api/data-connections/v1"}
    return {
        "export_url": f"{url}/export",
        "auth_api_token_url": f"{url}/identity/resources/auth/v1/api-token",
        "refresh_token_url": f"{url}/identity/resources/auth/v1/api-token/token/refresh",
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vendor", nargs="?", choices=VENDORS, help="start only this sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="port for a single sandbox (0: a free one)")
    parser.add_argument("--json", action="store_true", help="print the URLs and credentials as one JSON line")
    mon = parser.add_argument_group("monetate")
    mon.add_argument("--retailer", default=os.environ.get("SANDBOX_MONETATE_RETAILER", "sandbox"))
    mon.add_argument("--api-user", help="API user name (env SANDBOX_MONETATE_API_USER)")
    mon.add_argument("--public-key", help="PEM public key file to register (env SANDBOX_MONETATE_PUBLIC_KEY_FILE)")
    mon.add_argument("--key-dir", default=".sandbox", help="where a generated key pair is written")
    opt = parser.add_argument_group("optimove")
    opt.add_argument("--api-key", help="x-api-key (env SANDBOX_OPTIMOVE_API_KEY)")
    opt.add_argument("--brand-key", help="x-brand-key (env SANDBOX_OPTIMOVE_BRAND_KEY)")
    opt.add_argument("--rate-limit", type=int, default=50, help="requests per 10 s per key; 0: none")
    mona = parser.add_argument_group("mona")
    mona.add_argument("--client-id", help="env SANDBOX_MONA_CLIENT_ID")
    mona.add_argument("--secret", help="env SANDBOX_MONA_SECRET")
    mona.add_argument("--user-id", help="env SANDBOX_MONA_USER_ID")
    faults = parser.add_argument_group("faults (changeable later: PUT /_sandbox/faults)")
    for name, help_text in (
        ("rate-429", "fraction answered 429 with Retry-After"),
        ("rate-429-bare", "fraction answered 429 without Retry-After"),
        ("rate-500", "fraction answered 500"),
        ("rate-503", "fraction answered 503"),
        ("rate-drop", "fraction whose connection is closed before processing"),
        ("rate-drop-after", "fraction processed, then closed without an answer"),
    ):
        faults.add_argument(f"--{name}", type=float, default=0.0, help=help_text)
    faults.add_argument("--retry-after", type=float, default=1.0, help="seconds in Retry-After")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    faults.add_argument("--token-ttl", type=float, help="tokens really die after this many seconds")
    return parser.parse_args(argv)


def faults_from(args: argparse.Namespace) -> Faults:
    return Faults(
        rate_429=args.rate_429, rate_429_bare=args.rate_429_bare, rate_500=args.rate_500,
        rate_503=args.rate_503, rate_drop=args.rate_drop, rate_drop_after=args.rate_drop_after,
        retry_after=args.retry_after, latency=args.latency, token_ttl=args.token_ttl,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    vendors = [args.vendor] if args.vendor else list(VENDORS)
    servers, summary = [], {}
    for vendor in vendors:
        app, creds = BUILDERS[vendor](args, faults_from(args))
        server = SandboxServer(app, args.host, args.port if args.vendor else 0).start()
        servers.append(server)
        summary[vendor] = {"url": server.url, **base_urls(vendor, server.url, app), "credentials": creds}
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        for vendor, info in summary.items():
            print(f"{vendor}: {info['url']}")
            for name, value in info.items():
                if name not in ("url", "credentials"):
                    print(f"  {name}: {value}")
            for name, value in info["credentials"].items():
                print(f"  {name}: {value}")
        print("inspection: <url>/_sandbox/{requests,stats,state,faults,clock,reset}; Ctrl-C stops", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop cleanly under `kill` too
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
