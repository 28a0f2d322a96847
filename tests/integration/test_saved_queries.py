"""The template's saved Logs Insights queries find what they are named for, run over the log lines the
functions write on the local stack."""

import dataclasses
import io
import json
import logging
import re

import pytest

from sandbox.local.stack import ROOT, LocalStack
from sandbox.local.template import load
from sandbox.monetate import MetadataSizes
from tests.integration.files import csv_bytes, drop
from tests.integration.webhook_contract import call

FUNCTIONS = ("MonetateFunction", "OptimoveFunction", "MonaFunction")
RESOURCES = load(ROOT / "template.yaml")["Resources"]
QUERIES = {r["Properties"]["Name"]["Fn::Sub"].split("/", 1)[1]: r["Properties"]["QueryString"]
           for r in RESOURCES.values() if r["Type"] == "AWS::Logs::QueryDefinition"}

# A string, ispresent(field), a number, a field (report.errors.0, @timestamp), an operator or a bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|ispresent\(([\w.@]+)\)|\d+|[A-Za-z_@][\w.@]*|!=|=|\S')


def field_of(line, path):
    value = line
    for part in path.removeprefix("@").split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def as_python(condition):
    """A filter's condition as a Python expression over ``get(field)`` and ``present(field)``."""
    out = []
    for match in _TOKEN.finditer(condition):
        token = match[0]
        if match[1]:
            out.append(f"present({match[1]!r})")
        elif token in ("and", "or", "not", "in") or token[0] in '"0123456789[],' or token == "!=":
            out.append(token)
        elif token == "=":
            out.append("==")
        else:
            out.append(f"get({token!r})")
    return " ".join(out)


def run_query(query, lines):
    """Logs Insights' ``fields``, ``filter`` and ``sort @timestamp desc``, in the forms the saved queries use."""
    shown, conditions, newest_first = [], [], False
    for command in (line.strip().removeprefix("|").strip() for line in query.strip().splitlines()):
        verb, _, rest = command.partition(" ")
        if verb == "fields":
            shown += [name.strip() for name in rest.split(",")]
        elif verb == "filter":
            conditions.append(compile(as_python(rest), "filter", "eval"))
        else:
            assert command in ("sort @timestamp desc", "sort @timestamp asc"), command
            newest_first = command.endswith("desc")
    found = []
    for line in lines:  # oldest first
        names = {"get": lambda path, line=line: field_of(line, path),
                 "present": lambda path, line=line: field_of(line, path) is not None}
        if all(eval(condition, names) for condition in conditions):  # noqa: S307 - the template's own queries
            found.append({name: field_of(line, name) for name in shown})
    return found[::-1] if newest_first else found


@pytest.fixture(scope="module")
def stack():
    env = {"HTTP_MAX_ATTEMPTS": "2", "HTTP_BACKOFF_FACTOR": "0.01", "HTTP_BACKOFF_MAX": "0.05"}
    with LocalStack(metadata=MetadataSizes(customtargets=5, pageevents=5, experiences=2), function_env=env) as stack:
        stack.monetate.create_schema(json.loads((ROOT / "events" / "monetate" / "customers.schema.json").read_text()))
        yield stack


@pytest.fixture
def logged(stack):
    """The JSON log lines the functions write during the test at the template's LogLevel (INFO), as
    CloudWatch Logs keeps them."""
    stream = io.StringIO()
    loggers = [stack.functions[name].module.logger for name in FUNCTIONS]
    kept = []
    for logger in loggers:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logger.registered_formatter)
        kept.append((handler, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger, (handler, level) in zip(loggers, kept, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)
    stack.monetate.faults.clear()


def test_every_saved_query_reads_the_log_groups_of_all_three_functions():
    groups = {RESOURCES[name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for name in FUNCTIONS}
    queries = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::Logs::QueryDefinition"]
    assert len(queries) == len(QUERIES) == 6
    for query in queries:
        assert {group["Ref"] for group in query["LogGroupNames"]} == groups
        assert query["Name"]["Fn::Sub"].startswith("${AWS::StackName}/")  # the stack's queries together


CUSTOMERS = [{"customer_id": "C1", "tier": "gold"}, {"customer_id": "C2", "tier": "silver"}]


def test_files_that_need_a_look_are_those_not_complete_or_with_every_record_set_aside(stack, logged):
    drop(stack, "monetate/customers/fine.csv", csv_bytes(CUSTOMERS))
    drop(stack, "monetate/nosuch/day.csv", csv_bytes(CUSTOMERS))
    drop(stack, "monetate/customers/all-bad.csv", b"customer_id,lifetime_value\nC1,lots\nC2,many\n")

    found = run_query(QUERIES["Files that need a look"], logged())

    assert [(row["correlation_id"], row["report.status"]) for row in found] == [
        ("monetate/customers/all-bad.csv", "complete"), ("monetate/nosuch/day.csv", "failed")]
    assert found[0]["report.rejected"] == 2 and found[0]["report.sent"] == 0
    assert "no schema named 'nosuch'" in found[1]["report.errors.0"]


def test_webhook_calls_not_answered_200_are_found_with_what_they_were_answered(stack, logged):
    assert call(stack, "POST", "/monetate/customers/records", json={"records": CUSTOMERS}).status_code == 200
    assert call(stack, "POST", "/monetate/customers/records", data="{not json").status_code == 400

    found = run_query(QUERIES["Webhook calls not answered 200"], logged())

    assert [(row["call.method"], row["call.path"], row["call.status"]) for row in found] == [
        ("POST", "/monetate/customers/records", 400)]
    assert found[0]["call.answer.message"] and found[0]["correlation_id"]


def test_files_sent_back_to_their_queue_are_found_with_their_try_and_why(stack, logged):
    stack.monetate.faults.update({"script": ["503"] * 2, "paths": "/data/customers/"})  # both tries of the first run
    report = drop(stack, "monetate/customers/later.csv", csv_bytes(CUSTOMERS))
    assert report["status"] == "complete" and report["runs"] == 2

    found = run_query(QUERIES["Files sent back to their queue"], logged())

    assert [(row["correlation_id"], row["retry.try"]) for row in found] == [("monetate/customers/later.csv", 1)]
    assert "503" in found[0]["retry.because"] and found[0]["retry.back_in_seconds"] > 0


def test_one_files_story_is_its_lines_oldest_first_once_its_key_is_put_in(stack, logged):
    drop(stack, "monetate/customers/other.csv", csv_bytes(CUSTOMERS))
    stack.monetate.faults.update({"script": ["503"] * 2, "paths": "/data/customers/"})
    drop(stack, "monetate/customers/story.csv", csv_bytes(CUSTOMERS))
    version = stack.s3.head_object(Bucket=stack.bucket, Key="monetate/customers/story.csv")["VersionId"]
    repeated = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": stack.bucket}, "object": {
        "key": "monetate/customers/story.csv", "versionId": version}}}]}  # S3 delivers an event at least once
    stack.sqs.send_message(QueueUrl=stack.queue_urls["MonetateQueue"], MessageBody=json.dumps(repeated))
    stack.wait_idle()
    query = QUERIES["One file's story (put its key in)"]
    assert '"monetate/customers/day.csv"' in query  # the README's example key, to be replaced

    found = run_query(query.replace("monetate/customers/day.csv", "monetate/customers/story.csv"), logged())

    assert [(row["level"], row["message"], row["report.status"]) for row in found] == [
        ("WARNING", "file back to its queue", None), ("INFO", "file delivered", "complete"),
        ("INFO", "file already delivered, event repeated", "complete")]
    assert "503" in found[0]["retry.because"] and found[1]["report.sent"] == 2 and found[2]["report.sent"] is None


def test_files_left_alone_by_their_name_or_gone_before_their_turn_are_found_with_why(stack, logged):
    drop(stack, "optimove/loyalty/upsert/_SUCCESS", b"")
    stack.s3.put_object(Bucket=stack.bucket, Key="mona/orders/gone.jsonl", Body=b'{"contextId": "o-1", "v": 1}\n')
    versions = stack.s3.list_object_versions(Bucket=stack.bucket, Prefix="mona/orders/gone.jsonl")["Versions"]
    stack.s3.delete_object(Bucket=stack.bucket, Key="mona/orders/gone.jsonl", VersionId=versions[0]["VersionId"])
    stack.wait_idle()

    found = run_query(QUERIES["Files left alone or gone before their turn"], logged())

    assert sorted((row["message"], row["file.key"]) for row in found) == [
        ("file gone", "mona/orders/gone.jsonl"), ("file left alone", "optimove/loyalty/upsert/_SUCCESS")]
    assert all(row["file.why"] for row in found)


def test_files_whose_columns_were_left_out_are_found_with_the_columns(stack, logged):
    module = stack.functions["MonetateFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, unknown_columns="drop")
    try:
        drop(stack, "monetate/customers/extra.csv", csv_bytes([{**row, "notes": "x"} for row in CUSTOMERS]))
        drop(stack, "monetate/customers/plain.csv", csv_bytes(CUSTOMERS))
    finally:
        module.settings = settings

    found = run_query(QUERIES["Files whose columns were left out (UnknownColumns=drop)"], logged())

    assert [row["correlation_id"] for row in found] == ["monetate/customers/extra.csv"]
    assert list(found[0]["report.left_out"]) == ["notes"]


def test_the_readme_shows_the_saved_query_of_the_files_that_need_a_look_as_the_template_saves_it():
    assert QUERIES["Files that need a look"].strip() in (ROOT / "README.md").read_text()


def test_the_dashboard_lists_the_files_that_need_a_look_with_the_saved_query_over_the_three_log_groups():
    body = RESOURCES["BundleDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    groups = {name: RESOURCES[name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for name in FUNCTIONS}
    widgets = json.loads(re.sub(r"\$\{(\w+)\}", lambda m: f"<{m[1]}>", body.replace("${AWS::Region}", "region")))["widgets"]
    [widget] = [w["properties"] for w in widgets if w["type"] == "log"]
    sources, _, query = widget["query"].partition(" | fields")
    assert sources == " | ".join(f"SOURCE '<{groups[name]}>'" for name in FUNCTIONS)
    saved = " | ".join(line.strip().removeprefix("| ") for line in QUERIES["Files that need a look"].strip().splitlines())
    assert f"fields{query}" == f"{saved} | limit 50"
