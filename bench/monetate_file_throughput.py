"""Monetate file delivery: records/s against parse-only reading, and peak memory as files grow.

moto (S3, Secrets Manager) and the Monetate sandbox each run in a process of their own;
every measured run is a fresh process that streams the object from moto and delivers it
with the layer's own code (``deliver_file``), as the function does.

* throughput: a 1,000,000-row CSV delivered, against reading and parsing the same file
  only (``read_records``, rows as lists of values, as delivery reads a CSV), in the same run.
  Target: at least 0.5. The two alternate for ``--rounds`` rounds and the median round's ratio
  counts: on a shared machine one round's figures swing by half.
* placement: the measured process runs on CPU 0 and moto and the sandbox on the other CPUs, as
  a function has its vCPU and the vendor's servers are elsewhere. Left to the scheduler, the
  function's threads and the sandbox's share both cores and the function spends a third more
  CPU per record. ``--no-pin`` leaves placement to the scheduler.
* memory: peak RSS of delivering a ~100 MB and a ~1 GB CSV. Target: 1 GB at most 1.5x 100 MB.
  Their unique keys repeat, so the sandbox holds a bounded number of records.

    python bench/monetate_file_throughput.py [--rows 1000000] [--rounds 3] [--skip-memory] [--no-pin]
"""

from __future__ import annotations

import argparse
import csv
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
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "shared")]

from recorded import record  # noqa: E402
from sandbox.keys import generate_key_pair  # noqa: E402
from sandbox.local.stack import free_port  # noqa: E402

SCHEMA = json.loads((ROOT / "events" / "monetate" / "customers.schema.json").read_text())
BUCKET, USER, SECRET = "bench-inbox", "api-1-bench", "bench/monetate"


def write_csv(path: Path, rows: int, distinct: int | None = None) -> int:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(SCHEMA["fields"]))
        for i in range(rows):
            key = i % distinct if distinct else i
            writer.writerow([f"C{key}", "5f4dcc3b5aa765d61d8327deb882cf99", "gold", "shoes,bags",
                             f"{i * 1.5:.2f}", "yes" if i % 2 else "no", "2024-05-01 10:15:00"])
    return path.stat().st_size


def wait_for(url: str) -> None:
    for _ in range(200):
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not start")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process so far, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measured_cpus() -> tuple[set[int], set[int]]:
    """(CPUs for the measured process, CPUs for moto and the sandbox); both all CPUs on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, set(cpus[1:])) if len(cpus) > 1 else (set(cpus), set(cpus))


def _parse_only(key: str, pin: bool, queue: multiprocessing.Queue) -> None:
    from aws_lambda_powertools.utilities.streaming import S3Object

    from martech.readers import read_records

    if pin:
        os.sched_setaffinity(0, measured_cpus()[0])
    begin, cpu_begin = time.perf_counter(), cpu_seconds()
    stream = S3Object(BUCKET, key, boto3_client=boto3.client("s3"))
    count = sum(1 for _ in read_records(stream, key, columns=[]))  # rows as lists, as delivery reads a CSV
    queue.put({"records": count, "seconds": time.perf_counter() - begin, "peak_rss_mb": peak_rss_mb(),
               "cpu_us_per_record": round((cpu_seconds() - cpu_begin) / count * 1e6, 2)})


def _deliver(key: str, sandbox_url: str, pin: bool, queue: multiprocessing.Queue) -> None:
    from aws_lambda_powertools.utilities.streaming import S3Object

    from martech.monetate import MonetateClient
    from martech.monetate_delivery import deliver_file
    from martech.settings import Settings

    settings = Settings(monetate_auth_url=f"{sandbox_url}/api/auth/v0/refresh/", monetate_secret_name=SECRET,
                        monetate_data_url=f"{sandbox_url}/api/data/v1/sandbox/production")
    s3 = boto3.client("s3")
    if pin:
        os.sched_setaffinity(0, measured_cpus()[0])
    begin, cpu_begin = time.perf_counter(), cpu_seconds()
    report = deliver_file(s3, S3Object(BUCKET, key, boto3_client=s3), BUCKET, key, None, MonetateClient(settings), settings)
    queue.put({"records": report.sent, "seconds": time.perf_counter() - begin, "peak_rss_mb": peak_rss_mb(),
               "cpu_us_per_record": round((cpu_seconds() - cpu_begin) / max(report.sent, 1) * 1e6, 2),
               "status": report.status, "read": report.read})


def measure(target, *args, unit: str = "records") -> dict:
    """Run ``target(*args, queue)`` in a fresh interpreter (its peak RSS is this run's alone) and
    add ``<unit>_per_s`` to the result it puts on the queue."""
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    process = spawn.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get(timeout=3600)
    process.join()
    result[f"{unit}_per_s"] = round(result[unit] / result["seconds"])
    return result


def measure_with_services(services: list[subprocess.Popen], target, *args) -> dict:
    """``measure`` plus the CPU per record that moto and the sandbox spent meanwhile. Pinned on two
    cores, the two share one: their sum per record bounds the records/s any function could reach."""
    before = [cpu_seconds(service.pid) for service in services]
    result = measure(target, *args)
    spent = [cpu_seconds(service.pid) - start for service, start in zip(services, before, strict=True)]
    records = max(result["records"], 1)
    result["moto_cpu_us_per_record"] = round(spent[0] / records * 1e6, 2)
    result["sandbox_cpu_us_per_record"] = round(spent[1] / records * 1e6, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true", help="only the throughput comparison")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="leave process placement to the scheduler")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-monetate-"))
    moto_port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    os.environ.update(env)
    private_pem, public_pem = generate_key_pair()
    (work / "public.pem").write_text(public_pem)
    service_cpus = measured_cpus()[1]
    place = (lambda: os.sched_setaffinity(0, service_cpus)) if args.pin else None  # their threads inherit it
    services = [
        subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, preexec_fn=place),
        subprocess.Popen([sys.executable, "-m", "sandbox", "monetate", "--port", str(sandbox_port), "--json",
                          "--api-user", USER, "--public-key", str(work / "public.pem")], cwd=ROOT,
                         stdout=subprocess.DEVNULL, env=env, preexec_fn=place),
    ]
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    try:
        wait_for(env["AWS_ENDPOINT_URL"])
        wait_for(f"{sandbox_url}/_sandbox")
        requests.post(f"{sandbox_url}/_sandbox/schemas", json=SCHEMA).raise_for_status()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("secretsmanager").create_secret(
            Name=SECRET, SecretString=json.dumps({"username": USER, "private_key": private_pem}))

        def upload(name: str, rows: int, distinct: int | None = None) -> tuple[str, int]:
            path = work / name
            size = write_csv(path, rows, distinct)
            key = f"monetate/customers/{name}"
            s3.upload_file(str(path), BUCKET, key)
            path.unlink()
            return key, size

        key, size = upload("throughput.csv", args.rows)
        rounds = []
        for _ in range(args.rounds):
            # Where the CPU goes: the measured process's, and moto's and the sandbox's while it ran.
            parse = measure_with_services(services, _parse_only, key, args.pin)
            deliver = measure_with_services(services, _deliver, key, sandbox_url, args.pin)
            rounds.append({"parse_only": parse, "deliver": deliver,
                           "deliver_vs_parse_only": round(deliver["records_per_s"] / parse["records_per_s"], 3)})
        median = sorted(rounds, key=lambda r: r["deliver_vs_parse_only"])[len(rounds) // 2]
        result = {
            "pinned": args.pin and os.cpu_count() > 1,
            "rows": args.rows,
            "file_mb": round(size / 1e6, 1),
            **median,  # the round with the median ratio
            "ratios_by_round": [r["deliver_vs_parse_only"] for r in rounds],
            "rounds": rounds,
        }
        if not args.skip_memory:
            rows_100mb = int(args.rows * 100e6 / size)
            memory = {}
            for label, rows in (("100MB", rows_100mb), ("1GB", rows_100mb * 10)):
                key, size = upload(f"memory-{label}.csv", rows, distinct=100_000)
                memory[label] = {"file_mb": round(size / 1e6, 1), **measure(_deliver, key, sandbox_url, args.pin)}
                s3.delete_object(Bucket=BUCKET, Key=key)
            result["memory"] = memory
            result["peak_rss_1GB_vs_100MB"] = round(memory["1GB"]["peak_rss_mb"] / memory["100MB"]["peak_rss_mb"], 3)
    finally:
        for service in services:
            service.terminate()
    record("monetate_file_throughput", result)


if __name__ == "__main__":
    main()
