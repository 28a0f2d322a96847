"""Run the bundle locally on the embedded default: no AWS account, no Docker.

    python -m sandbox.local run     # start, drop the samples in events/, call the webhooks, summarise, stop
    python -m sandbox.local serve   # start and keep running, for curl and `aws --endpoint-url`
    python -m sandbox.local serve --env CSV_NULLS=NULL --env UNKNOWN_COLUMNS=drop   # settings to try
    python -m sandbox.local run --file day.csv=monetate/customers/   # your files instead of the samples
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import requests

from sandbox.local.functions import import_layer
from sandbox.local.stack import ROOT, LocalStack
from sandbox.local.template import Template

import_layer()  # the functions' settings, read as they read them
from martech.names import did_you_mean  # noqa: E402
from martech.settings import Settings, SettingsError  # noqa: E402

EVENTS = ROOT / "events"
DATA_SUFFIXES = (".csv", ".json", ".jsonl", ".ndjson", ".gz")
SETUP_SUFFIXES = (".schema.json", ".connection.json", ".webhook.json")


def sample_files(vendor: str) -> list[Path]:
    """Data files of events/<vendor>/: not schemas, connections or webhook bodies."""
    return sorted(p for p in (EVENTS / vendor).glob("*") if p.name.endswith(DATA_SUFFIXES)
                  and not p.name.endswith(SETUP_SUFFIXES))


def sample_key(vendor: str, path: Path) -> str:
    """events/monetate/<schema>.csv -> monetate/<schema>/<file>;
    events/optimove/<connection>.<operation>.csv -> optimove/<connection>/<operation>/<file>;
    events/mona/<arcClass>.jsonl -> mona/<arcClass>/<file>;
    events/monetate-sessions/<file> -> monetate-sessions/<file>."""
    parts = path.name.split(".")
    if vendor == "monetate-sessions":
        return f"{vendor}/{path.name}"
    if vendor == "optimove":
        return f"optimove/{parts[0]}/{parts[1]}/{path.name}"
    return f"{vendor}/{parts[0]}/{path.name}"


def prepare_vendors(stack: LocalStack) -> None:
    """What a retailer sets up in the vendors' UIs before using the bundle."""
    for schema_file in sorted((EVENTS / "monetate").glob("*.schema.json")):
        stack.monetate.create_schema(json.loads(schema_file.read_text()))
    creds = stack.optimove.credentials()
    for connection_file in sorted((EVENTS / "optimove").glob("*.connection.json")):
        requests.post(f"{stack.optimove_server.url}/api/data-connections/v1/connections",
                      data=connection_file.read_bytes(),
                      headers={"x-api-key": creds["api_key"], "x-brand-key": creds["brand_key"]}).raise_for_status()


def drop_samples(stack: LocalStack) -> list[str]:
    return drop_files(stack, [(path, sample_key(vendor, path))
                              for vendor in ("monetate", "optimove", "mona", "monetate-sessions")
                              for path in sample_files(vendor)])


def drop_files(stack: LocalStack, files: list[tuple[Path, str]]) -> list[str]:
    for path, key in files:
        stack.s3.upload_file(str(path), stack.bucket, key)
    return [key for _, key in files]


def call_webhooks(stack: LocalStack) -> list[tuple[str, int, Any]]:
    """The calls listed in events/webhooks.json, each with its body file."""
    calls = []
    for call in json.loads((EVENTS / "webhooks.json").read_text()):
        body = (EVENTS / call["body"]).read_bytes() if "body" in call else None
        answer = requests.request(call["method"], stack.api.url + call["path"], data=body,
                                  headers={"x-api-key": stack.api.api_key, "Content-Type": "application/json"})
        calls.append((f"{call['method']} {call['path']}", answer.status_code, answer.json()))
    return calls


def refresh_summary(result: dict[str, Any], events: list[dict[str, Any]]) -> str:
    lines = ["", f"Metadata refresh (the schedule, fired once): {result['refreshed_at']}"]
    for kind, count in result["counts"].items():
        change = result["changed"].get(kind)
        changed = ", ".join(f"{n} {k}" for k, n in change.items() if n) if change else "unchanged"
        lines.append(f"  {kind}: {count} items, {changed}")
    lines.append(f"  snapshots s3://{{bucket}}/metadata/latest/ ; {len(events)} change event(s) on EventBridge")
    return "\n".join(lines)


def sessions_summary(stack: LocalStack, key: str) -> list[str]:
    from martech.session_stream import summary_key

    found = json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=summary_key(key))["Body"].read())
    lines = [f"      interpreted s3://{stack.bucket}/{found['interpreted']} (+ .summary.json)"]
    top = ", ".join(f"{e['experience_name']} ({e['sessions']})" for e in found["top_experiences"][:3])
    lines.append(f"      most seen   {top}")
    for city, events in list(found["page_events_by_city"].items())[:2]:
        lines.append(f"      in {city:<8} " + ", ".join(f"{title} {n}" for title, n in list(events.items())[:3]))
    unknown = {kind: list(ids) for kind, ids in found["unknown_ids"].items()}
    lines.append(f"      unknown ids {unknown or 'none'}; refresh triggered: {found['refresh']['triggered']}")
    return lines


def _place(row: dict[str, Any]) -> str:
    """Where a rejected row was: its line, and its item's index when it is one of a JSON array's."""
    return f"line {row['line']}" + (f", item {row['index']}" if "index" in row else "")


def rejected_summary(stack: LocalStack, report: dict[str, Any], shown: int = 3) -> list[str]:
    """The first rejected rows with their reasons, so the summary says why."""
    body = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read()
    rows = [json.loads(row) for row in body.splitlines()[:shown]]
    lines = [f"        {_place(row)}: {'; '.join(row['reasons'])}" for row in rows]
    if report["rejected"] > shown:
        lines.append(f"        and {report['rejected'] - shown} more; by reason, most first:")
        lines += reason_counts(report["rejected_reasons"])
    return lines


def reason_counts(reasons: dict[str, int], shown: int = 10) -> list[str]:
    """A report's rejected rows by reason, the ``shown`` most common first, the rest in one line: every
    row set aside is counted, the rows past the first few included."""
    counts = list(reasons.items())
    lines = [f"        {count:>7,}  {reason}" for reason, count in counts[:shown]]
    if rest := counts[shown:]:
        lines.append(f"        {sum(count for _, count in rest):>7,}  for {len(rest)} other reason(s), in the report")
    return lines


def summary(stack: LocalStack, keys: list[str], calls: list[tuple[str, int, Any]]) -> tuple[str, bool]:
    lines, ok = ["", "Files"], True
    for key in keys:
        report = stack.report(key)
        if report is None:
            lines.append(f"  {key}: no report")
            ok = False
            continue
        ok &= report["status"] == "complete"
        extra = "".join(f", {name} {report[name]}" for name in ("duplicates", "reads", "unknown") if report.get(name))
        lines.append(f"  {key}: {report['status']} - read {report['read']}, sent {report['sent']}, "
                     f"rejected {report['rejected']}, failed {report['failed']}{extra}, {report['seconds']} s")
        lines.append(f"      report   s3://{stack.bucket}/reports/{key}.json")
        lines += [f"      read as  {name} -> {field}" for name, field in report.get("read_as", {}).items()]
        lines += [f"      left out {name}: {why}" for name, why in report.get("left_out", {}).items()]
        if report["rejected_rows"]:
            lines.append(f"      rejected s3://{stack.bucket}/{report['rejected_rows']}")
            lines += rejected_summary(stack, report)
        for error in report["errors"]:
            lines.append(f"      error    {error}")
        if key.startswith("monetate-sessions/") and report["status"] == "complete":
            lines += sessions_summary(stack, key)
    finished = Counter(event["detail"]["status"] for event in stack.file_events())
    lines.append(f"  File run finished events on EventBridge: {sum(finished.values())} "
                 f"({', '.join(f'{count} {status}' for status, count in sorted(finished.items()))})")
    lines += ["", "Webhooks"] if calls else []
    for route, status, body in calls:
        ok &= status == 200
        shown = {k: v for k, v in body.items() if k != "results"} if isinstance(body, dict) else body
        lines.append(f"  {route}: {status} - " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    lines += ["", "Records held by the vendors"]
    for schema, count in stack.monetate.state()["schemas"].items():
        lines.append(f"  monetate dataset {schema}: {count}")
    for connection in stack.optimove.state()["connections"].values():
        lines.append(f"  optimove connection {connection['name']}: {connection['records']}")
    for arc_class, count in stack.mona.state()["contexts"].items():
        lines.append(f"  mona context class {arc_class}: {count} contexts")
    dead = {q: n for q, n in stack.dead_letters().items() if n}
    if dead:
        ok = False
        lines.append(f"\nDead-letter queues: {dead}")
    return "\n".join(lines), ok


EVENT_LABELS = {"file-events": "events (files)", "metadata-changes": "events (meta)"}  # aligned with the lines above


def endpoints(stack: LocalStack) -> str:
    return "\n".join([
        "The bundle is running locally:",
        f"  inbox bucket   s3://{stack.bucket}   (aws --endpoint-url {stack.aws_endpoint} s3 cp FILE s3://{stack.bucket}/monetate/customers/)",
        f"  webhooks       {stack.api.url}   (header x-api-key: {stack.api.api_key})",
        f"  monetate       {stack.monetate_server.url}   (inspect: {stack.monetate_server.url}/_sandbox/state)",
        f"  optimove       {stack.optimove_server.url}   (inspect: {stack.optimove_server.url}/_sandbox/state)",
        f"  mona           {stack.mona_server.url}   (inspect: {stack.mona_server.url}/_sandbox/contexts)",
        f"  AWS (moto)     {stack.aws_endpoint}   "
        "(AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1)",
        *(f"  {EVENT_LABELS[name]:<14} {url}   (aws --endpoint-url {stack.aws_endpoint} sqs receive-message --queue-url {url})"
          for name, url in stack.event_queue_urls.items()),
    ])


SETTING_NAMES = frozenset(f.metadata["env"] for f in dataclasses.fields(Settings))


def setting(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` from the command line, as (name, value): one of the functions' settings (or
    Powertools' own), so that a name written wrong is not passed on unread."""
    name, equals, value = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: write a setting as NAME=VALUE, e.g. CSV_NULLS=NULL")
    if name not in SETTING_NAMES and not name.startswith("POWERTOOLS_"):
        raise argparse.ArgumentTypeError(f"{name}: no such setting{did_you_mean(name, SETTING_NAMES)}; README.md"
                                         " (Configuration) lists them")
    return name, value


@cache
def inbox_prefixes() -> tuple[str, ...]:
    """The key prefixes whose files reach a function, as the template's notifications say."""
    return tuple(n.prefix for n in Template(ROOT / "template.yaml", {}).notifications("InboxBucket"))


def file_to_drop(text: str) -> tuple[Path, str]:
    """``PATH=KEY`` from the command line: a file, and the key it is dropped under (a key ending in /
    is a folder, and the file keeps its name there). A key that reaches no function is refused, as
    nothing would happen to the file."""
    path, equals, key = text.partition("=")
    if not equals or not path or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: write a file as PATH=KEY, e.g. day.csv=monetate/customers/")
    file = Path(path).expanduser()
    if not file.is_file():
        raise argparse.ArgumentTypeError(f"{path}: no such file")
    key = key.lstrip("/") + (file.name if key.endswith("/") else "")
    prefixes = inbox_prefixes()
    if not key.startswith(prefixes):
        raise argparse.ArgumentTypeError(f"{key}: no function takes files there; keys start with {', '.join(prefixes)}"
                                         " (README.md: Dropping files)")
    return file, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "serve"])
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="the functions' log level: INFO for serve (each file and call, as CloudWatch shows"
                             " them), WARNING for run")
    parser.add_argument("--env", action="append", default=[], type=setting, metavar="NAME=VALUE",
                        help="a setting of the functions' environment, over the template's (README: Settings);"
                             " repeat it for more")
    parser.add_argument("--file", action="append", default=[], type=file_to_drop, metavar="PATH=KEY",
                        help="run: a file of yours to drop under KEY (a folder ending in / keeps its name) instead of"
                             " the sample files and webhook calls; repeat it for more")
    args = parser.parse_args(argv)
    if args.file and args.command != "run":
        parser.error("--file goes with run; under serve, drop files with aws --endpoint-url as it prints")
    try:
        Settings.from_env(dict(args.env))  # values the functions would refuse, said before anything starts
    except SettingsError as exc:
        parser.error(str(exc))
    log_level = args.log_level or ("INFO" if args.command == "serve" else "WARNING")
    with LocalStack(log_level=log_level, function_env=dict(args.env)) as stack:
        prepare_vendors(stack)
        if args.command == "serve":
            print(endpoints(stack), "\nCtrl-C stops.", flush=True)
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                return 0
        refreshed = stack.run_schedule("MonetateFunction")
        refresh_text = refresh_summary(refreshed, stack.metadata_changes()).replace("{bucket}", stack.bucket)
        keys = drop_files(stack, args.file) if args.file else drop_samples(stack)
        stack.wait_idle()  # the webhooks below update what the files created
        calls = [] if args.file else call_webhooks(stack)  # the sample calls go with the sample files
        stack.wait_idle()
        text, ok = summary(stack, keys, calls)
        print(f"Ran the bundle locally: moto at {stack.aws_endpoint}, sandboxes at {stack.monetate_server.url} (Monetate)"
              f", {stack.optimove_server.url} (Optimove) and {stack.mona_server.url} (Mona)"
              f"\n{refresh_text}\n{text}\n\n`make serve` keeps it running for curl and `aws --endpoint-url`.", flush=True)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
