"""Mona export: messages/s from a dropped file through the function's code, against the
official mona-sdk's ``send_events_batch`` sending the same messages to the same sandbox.

moto (S3, Secrets Manager) and the Mona sandbox each run in a process of their own; each
side runs in a fresh process and is logged in before its clock starts. The SDK is given the
messages ready-made, in calls of 1000 (it neither splits nor retries a batch); ours streams
the file from S3, converts and batches the records, four batches in flight.
Target: ours at least 1.5x the SDK.

    python bench/mona_export_throughput.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "shared"), str(ROOT / "bench")]

from monetate_file_throughput import measure, peak_rss_mb, wait_for  # noqa: E402
from recorded import record  # noqa: E402

from sandbox.local.stack import free_port  # noqa: E402

BUCKET, SECRET, ARC = "bench-inbox", "bench/mona", "orders"


def records(n: int) -> list[dict]:
    return [{"contextId": f"order-{i}", "model": "fraud-v3", "score": (i % 100) / 100, "country": "FR",
             "amount": i * 1.25, "exportTimestamp": 1714557600 + i} for i in range(n)]


def _ours(key: str, export_url: str, auth_url: str, queue: multiprocessing.Queue) -> None:
    from aws_lambda_powertools.utilities.streaming import S3Object

    from martech.mona import MonaClient
    from martech.mona_delivery import deliver_file
    from martech.settings import Settings

    settings = Settings(mona_secret_name=SECRET, mona_export_url=export_url, mona_auth_url=auth_url)
    s3 = boto3.client("s3")
    client = MonaClient(settings)
    client.tokens.token()  # logged in before the clock starts, as the SDK's client is
    begin = time.perf_counter()
    report = deliver_file(s3, S3Object(BUCKET, key, boto3_client=s3), BUCKET, key, None, None, client, settings)
    queue.put({"messages": report.sent, "seconds": time.perf_counter() - begin, "peak_rss_mb": peak_rss_mb(),
               "status": report.status})


def _sdk(count: int, export_url: str, auth_url: str, credentials: dict, queue: multiprocessing.Queue) -> None:
    from mona_sdk import Client, MonaSingleMessage

    client = Client(api_key=credentials["client_id"], secret=credentials["secret"], override_rest_api_full_url=export_url,
                    auth_api_token_url=auth_url, refresh_token_url=f"{auth_url}/token/refresh",
                    raise_authentication_exceptions=True)
    messages = []
    for fields in records(count):
        context_id, stamp = fields.pop("contextId"), fields.pop("exportTimestamp")
        messages.append(MonaSingleMessage(message=fields, contextClass=ARC, contextId=context_id, exportTimestamp=stamp))
    begin = time.perf_counter()
    sent = 0
    for start in range(0, len(messages), 1000):
        result = client.send_events_batch(messages[start:start + 1000])
        sent += result["sent"]
    queue.put({"messages": sent, "seconds": time.perf_counter() - begin, "peak_rss_mb": peak_rss_mb()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    moto_port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    os.environ.update(env)
    services = [
        subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env),
        subprocess.Popen([sys.executable, "-m", "sandbox", "mona", "--port", str(sandbox_port), "--json",
                          "--client-id", "bench-client", "--secret", "bench-secret", "--user-id", "bench"],
                         cwd=ROOT, stdout=subprocess.DEVNULL, env=env),
    ]
    url = f"http://127.0.0.1:{sandbox_port}"
    export_url, auth_url = f"{url}/export", f"{url}/identity/resources/auth/v1/api-token"
    try:
        wait_for(env["AWS_ENDPOINT_URL"])
        wait_for(f"{url}/_sandbox")
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("secretsmanager").create_secret(
            Name=SECRET, SecretString=json.dumps({"api_key": "bench-client", "secret": "bench-secret"}))
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for fields in records(args.messages):
                f.write(json.dumps(fields) + "\n")
        key = f"mona/{ARC}/orders.jsonl"
        s3.upload_file(f.name, BUCKET, key)
        os.unlink(f.name)

        sdk = measure(_sdk, args.messages, export_url, auth_url, {"client_id": "bench-client", "secret": "bench-secret"},
                      unit="messages")
        sdk_contexts = requests.get(f"{url}/_sandbox/state").json()["contexts"].get(ARC, 0)
        requests.post(f"{url}/_sandbox/reset")
        ours = measure(_ours, key, export_url, auth_url, unit="messages")
        our_contexts = requests.get(f"{url}/_sandbox/state").json()["contexts"].get(ARC, 0)
    finally:
        for service in services:
            service.terminate()
    record("mona_export_throughput", {
        "messages": args.messages,
        "mona_sdk_send_events_batch": {**sdk, "contexts_held": sdk_contexts},
        "file_through_function": {**ours, "contexts_held": our_contexts},
        "ours_vs_sdk": round(ours["messages_per_s"] / sdk["messages_per_s"], 3),
    })


if __name__ == "__main__":
    main()
