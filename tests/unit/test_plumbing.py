"""Settings, batching, S3 notifications, CSV values and the retry policy."""

import io
import json
import logging
import re
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
import requests
from aws_lambda_powertools import Metrics

from martech.batching import batched
from martech.dict_makers import dict_maker
from martech.http import make_pool, make_session
from martech.csv_values import typed_row, typed_value
from martech.s3_events import dropped_files
from martech.optimove_delivery import file_options
from martech.settings import Settings, SettingsError


# -- settings ------------------------------------------------------------------------------
def test_settings_read_and_convert_the_environment():
    settings = Settings.from_env({"MONETATE_BATCH_SIZE": "250", "UNKNOWN_COLUMNS": "drop", "HTTP_READ_TIMEOUT": "2.5"})
    assert (settings.monetate_batch_size, settings.unknown_columns, settings.http_read_timeout) == (250, "drop", 2.5)


def test_csv_nulls_are_a_comma_separated_set():
    assert Settings.from_env({"CSV_NULLS": "NULL, \\N,,"}).csv_null_texts == {"NULL", "\\N"}
    assert Settings.from_env({}).csv_null_texts == frozenset()


def test_malformed_settings_are_all_named_in_one_error():
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MONETATE_BATCH_SIZE": "many", "UNKNOWN_COLUMNS": "keep", "HTTP_MAX_ATTEMPTS": "0"})
    message = str(raised.value)
    assert "MONETATE_BATCH_SIZE='many'" in message and "UNKNOWN_COLUMNS='keep'" in message
    assert "HTTP_MAX_ATTEMPTS='0'" in message


def test_a_time_zone_is_an_iana_name_and_another_is_refused_saying_what_it_wants():
    from zoneinfo import ZoneInfo

    assert Settings.from_env({"TIME_ZONE": "America/New_York"}).time_zone == ZoneInfo("America/New_York")
    assert Settings.from_env({"TIME_ZONE": ""}).time_zone is None
    for name in ("Eastern", "GMT+2", "../etc/passwd"):
        with pytest.raises(SettingsError, match=re.escape(f"TIME_ZONE={name!r} is not a valid IANA time zone name"
                                                          " (America/New_York, Europe/Paris, UTC)")):
            Settings.from_env({"TIME_ZONE": name})


def test_require_names_the_missing_environment_variables():
    with pytest.raises(SettingsError, match="MONETATE_SECRET_NAME, INBOX_BUCKET"):
        Settings.from_env({}).require("monetate_secret_name", "inbox_bucket")


# -- batching ------------------------------------------------------------------------------
def test_batches_by_count():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_batches_by_size_and_an_oversized_item_goes_alone():
    items = ["a" * 10, "b" * 10, "c" * 50, "d"]
    assert list(batched(items, 100, max_bytes=30, size=len)) == [["a" * 10, "b" * 10], ["c" * 50], ["d"]]


# -- CSV values ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("0", 0), ("-3", -3), ("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000.0), ("1E-2", 0.01),
    ("12345678901234567890", 12345678901234567890), ("18446744073709551615", 18446744073709551615),
    ("-9223372036854775808", -9223372036854775808), ("89014103211118510720", "89014103211118510720"),
    ("-9223372036854775809", "-9223372036854775809"), ("1" * 5000, "1" * 5000), ("007", "007"),
    ("1,234", "1,234"), ("1e400", "1e400"),
    (" 5", " 5"), (".5", ".5"), ("5.", "5."), ("+5", "+5"), ("-", "-"), ("nan", "nan"), ("0x1F", "0x1F"), ("²", "²"),
])
def test_only_plain_numbers_become_numbers(text, value):
    assert typed_value(text) == value and type(typed_value(text)) is type(value)


def test_every_typed_value_can_be_sent():
    row = {"sim": "89014103211118510720", "big": "18446744073709551615", "low": "-9223372036854775808"}
    assert orjson.loads(orjson.dumps(typed_row(row))) == typed_row(row)


def test_a_typed_row_leaves_out_blank_cells_and_keeps_its_key_as_written():
    row = {"id": "42", "points": "150", "zip": "02134", "note": " "}
    assert typed_row(row, keep={"id"}) == {"id": "42", "points": 150, "zip": "02134"}
    assert typed_row(row, keep={"id"}, numbers=False) == {"id": "42", "points": "150", "zip": "02134"}


# -- S3 notifications ----------------------------------------------------------------------
def notification(key, event="ObjectCreated:Put", version="v1"):
    obj = {"key": key, "size": 10, "eTag": "e"}
    if version:
        obj["versionId"] = version
    return json.dumps({"Records": [{"eventName": event, "s3": {"bucket": {"name": "inbox"}, "object": obj}}]})


def test_keys_are_url_decoded_with_plus_as_space():
    files = dropped_files(notification("monetate/customers/May+file%2B1.csv"))
    assert files[0].key == "monetate/customers/May file+1.csv" and files[0].version_id == "v1"


def test_s3_test_events_and_other_event_names_name_no_files():
    assert dropped_files(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "inbox"})) == []
    assert dropped_files(notification("a.csv", event="ObjectRemoved:Delete")) == []


@pytest.mark.parametrize("key, data", [
    ("monetate/customers/export/_SUCCESS", False), ("monetate/customers/export/.part-00000.csv.crc", False),
    ("optimove/loyalty/upsert/.DS_Store", False), ("mona/orders/_committed_5107", False),
    ("mona/orders/_started_5107", False), ("monetate/customers/._day.csv", False),  # macOS's copy of a resource fork
    ("monetate/customers/Thumbs.db", False), ("monetate/customers/desktop.ini", False),
    ("monetate/customers/day_manifest", False), ("monetate/customers/manifest", False),  # Redshift UNLOAD's
    ("monetate/customers/manifest.csv", True), ("monetate/customers/manifest.jsonl", True),
    ("monetate/customers/export/_temporary/0/task_1/part-00000.csv", False),
    ("monetate/customers/export/part-00000-c000.csv", True), ("monetate/customers/my_file_.csv", True),
    ("monetate/customers/_by_day/2024-05-01.csv", True), ("monetate/customers/temporary/a.csv", True),
    ("monetate/customers/_daily.csv", True), ("monetate/customers/.daily.csv", True),  # named so: data all the same
    ("monetate/customers/_SUCCESS.csv", True), ("monetate/customers/day.csv.crc.csv", True),
])
def test_markers_a_spark_job_or_a_mac_leaves_beside_its_files_are_no_data_by_their_names(key, data):
    from martech.s3_events import no_data_by_name

    assert (no_data_by_name(key) is None) is data


def test_a_folder_made_in_the_s3_console_is_not_a_file():
    assert dropped_files(notification("monetate/customers/")) == []
    assert dropped_files(notification("monetate/customers%2F")) == []  # the slash as S3 may encode it


# -- retries -------------------------------------------------------------------------------
def test_get_is_retried_on_429_and_5xx_honouring_retry_after(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"script": ["429", "500", "503"]})
    session = make_session(Settings(http_backoff_factor=0.01))
    answer = session.get(f"{monetate_sandbox.url}/api/data/v1/sandbox/production/schema/")
    assert answer.status_code == 401  # reached the handler after three injected failures
    assert monetate_sandbox.app.stats()["by_status"] == {"429": 1, "500": 1, "503": 1, "401": 1}


def test_attempts_are_bounded(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"rate_500": 1.0})
    session = make_session(Settings(http_backoff_factor=0.01, http_max_attempts=3))
    assert session.get(f"{monetate_sandbox.url}/api/data/v1/sandbox/production/schema/").status_code == 500
    assert monetate_sandbox.app.stats()["by_status"] == {"500": 3}


def test_a_retry_with_a_deadline_gives_up_rather_than_wait_past_it_and_gives_the_last_answer(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"rate_429": 1.0, "retry_after": 1})
    pool = make_pool(Settings(http_max_attempts=5), monetate_sandbox.url)
    retries = pool.connection_pool_kw["retries"]
    began = time.monotonic()
    answer = pool.request("GET", f"{monetate_sandbox.url}/api/data/v1/sandbox/production/schema/",
                          retries=retries.until(time.monotonic() + 1.5))
    assert answer.status == 429 and time.monotonic() - began < 1.5  # waited once, for Retry-After: 1
    assert monetate_sandbox.app.stats()["by_status"] == {"429": 2}  # of the five tries it would have made


def test_unsafe_posts_are_resent_only_when_refused_before_processing(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"script": ["503", "500"]})
    session = make_session(Settings(http_backoff_factor=0.01), posts_are_safe=False)
    url = f"{monetate_sandbox.url}/api/data/v1/sandbox/production/data/x/"
    assert session.post(url, json={}).status_code == 500  # 503 resent, 500 not
    assert monetate_sandbox.app.stats()["by_status"] == {"503": 1, "500": 1}


def test_an_unsafe_post_whose_answer_is_lost_is_not_resent(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"script": ["drop-after"]})
    session = make_session(Settings(http_backoff_factor=0.01), posts_are_safe=False)
    with pytest.raises(requests.ConnectionError):
        session.post(f"{monetate_sandbox.url}/api/data/v1/sandbox/production/data/x/", json={})
    assert monetate_sandbox.app.stats()["by_status"] == {"dropped-after": 1}
    assert len(monetate_sandbox.app.received()) == 1


def test_proxies_from_the_environment_hold_for_every_request_though_read_once(monetate_sandbox, monkeypatch):
    from sandbox.local.stack import free_port

    url = f"{monetate_sandbox.url}/_sandbox"
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = make_session(Settings(http_max_attempts=1))
    for _ in range(2):  # the second request uses what the first read from the environment
        with pytest.raises(requests.exceptions.ProxyError):
            proxied.get(url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = make_session(Settings(http_max_attempts=1))
    assert [direct.get(url).status_code for _ in range(2)] == [200, 200]


def test_the_local_runtime_gives_functions_the_memory_and_timeout_the_template_sets(tmp_path):
    from sandbox.local.functions import LocalFunction
    from sandbox.local.template import Template

    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "app.py").write_text(
        "def handler(event, context):\n"
        "    return context.memory_limit_in_mb, context.get_remaining_time_in_millis()\n")
    (tmp_path / "template.yaml").write_text("""
Parameters:
  FunctionMemorySize: {Type: Number, Default: 1769}
Globals:
  Function: {MemorySize: !Ref FunctionMemorySize, Timeout: 60}
Resources:
  Plain: {Type: AWS::Serverless::Function, Properties: {CodeUri: f/, Handler: app.handler}}
  Own: {Type: AWS::Serverless::Function, Properties: {CodeUri: f/, Handler: app.handler, MemorySize: 512, Timeout: 900}}
""")
    specs = Template(tmp_path / "template.yaml", {"FunctionMemorySize": "3008"}).functions()
    seen = {spec.logical_id: LocalFunction(spec).invoke({}) for spec in specs}
    assert seen["Plain"][0] == 3008 and 59_000 < seen["Plain"][1] <= 60_000  # from Globals, through the parameter
    assert seen["Own"][0] == 512 and 890_000 < seen["Own"][1] <= 900_000  # the function's own settings win


def test_dict_maker_takes_text_keys_only():
    class Sneaky(str):
        def __repr__(self):
            return "__import__('os').getpid()"

    assert dict_maker(("a", "b"))(1, 2) == {"a": 1, "b": 2}
    with pytest.raises(TypeError):
        dict_maker((Sneaky("a"),))


# -- calls ---------------------------------------------------------------------------------
def test_each_webhook_call_is_logged_with_its_status_and_counts_not_its_records(capsys):
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from martech.handlers import dispatch

    class Api:
        def resolve(self, event, context):
            body = {"accepted": 2, "rejected": 1, "results": [{"index": 0, "status": "accepted"}], "message": "done"}
            return {"statusCode": 200, "headers": {}, "body": json.dumps(body)}

    event = {"httpMethod": "POST", "path": "/monetate/customers/records", "headers": {},
             "body": '{"records": [{"email": "ann@example.com"}]}', "requestContext": {"requestId": "r-1"}}
    logger = Logger(service="test", stream=None)
    answer = dispatch(event, None, logger, Api(), lambda record: None, None, IdempotencyConfig())
    assert answer["statusCode"] == 200
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "call answered" and line["correlation_id"] == "r-1"
    assert line["call"] == {"method": "POST", "path": "/monetate/customers/records", "status": 200, "replayed": False,
                            "answer": {"accepted": 2, "rejected": 1, "message": "done"}}
    assert "ann@example.com" not in json.dumps(line) and line["level"] == "INFO"


def test_a_call_that_publishes_no_metrics_leaves_no_warning_in_the_log():
    import subprocess
    import sys
    from pathlib import Path

    # A fresh interpreter, as a Lambda container is: pytest saves and restores warning filters around
    # each test, so one set at an import during an earlier test is gone here.
    code = """if True:
        import warnings
        warnings.simplefilter("always")  # every warning shows, every time, unless a later filter says not
        import martech.handlers
        from aws_lambda_powertools import Metrics

        @Metrics(namespace="MarketingBundle", service="calls").log_metrics
        def handler(event, context):
            return {"statusCode": 200}

        handler({}, None)
        warnings.warn("another warning", UserWarning)
    """
    layer = Path(__file__).resolve().parents[2] / "layers" / "shared"
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(layer), "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"})
    assert "another warning" in ran.stderr and "No application metrics" not in ran.stderr


@pytest.mark.parametrize("status, level", [(400, "INFO"), (404, "INFO"), (502, "WARNING"), (503, "WARNING")])
def test_a_webhook_call_the_bundle_or_the_vendor_failed_is_logged_as_a_warning(status, level):
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from martech.handlers import dispatch

    class Api:
        def resolve(self, event, context):
            return {"statusCode": status, "headers": {}, "body": '{"message": "no"}'}

    event = {"httpMethod": "POST", "path": "/mona/export", "headers": {}, "body": "{}", "requestContext": {"requestId": "r"}}
    stream = io.StringIO()
    dispatch(event, None, Logger(service=f"calls-{status}", stream=stream), Api(), lambda record: None, None,
             IdempotencyConfig())
    line = json.loads(stream.getvalue())
    assert (line["level"], line["message"], line["call"]["status"]) == (level, "call answered", status)


def test_a_file_whose_every_record_was_set_aside_is_logged_as_a_warning_with_its_reasons():
    from aws_lambda_powertools import Logger

    from martech.handlers import ERRORS_LOGGED, log_file_run
    from martech.reports import RunReport

    reasons = {f"field{i}: expected a number, found '...'": 10 - i for i in range(ERRORS_LOGGED + 2)}
    report = RunReport("inbox", "monetate/customers/day.csv", None, "monetate", status="complete", read=63, sent=0,
                       rejected=63, rejected_reasons=reasons).as_dict()
    stream = io.StringIO()
    log_file_run(Logger(service="files-all-set-aside", stream=stream), report, ("read", "sent", "rejected"))
    line = json.loads(stream.getvalue())
    assert (line["level"], line["message"]) == ("WARNING", "file delivered, every record set aside")
    assert line["report"]["reasons"] == dict(list(reasons.items())[:ERRORS_LOGGED])
    assert line["report"]["report"] == "reports/monetate/customers/day.csv.json"


@pytest.mark.parametrize("status, level, message", [
    ("complete", "INFO", "file delivered"), ("partial", "WARNING", "file partly delivered"),
    ("failed", "ERROR", "file failed"),
])
def test_a_file_that_did_not_complete_is_logged_at_a_level_that_says_so_with_its_errors(status, level, message):
    from aws_lambda_powertools import Logger

    from martech.handlers import ERRORS_LOGGED, log_file_run
    from martech.reports import RunReport

    report = RunReport("inbox", "monetate/customers/day.csv", None, "monetate", status=status, read=3, sent=1,
                       errors=[f"lines {i}-{i}: refused" for i in range(ERRORS_LOGGED + 2)]).as_dict()
    stream = io.StringIO()
    log_file_run(Logger(service=f"files-{status}", stream=stream), report, ("read", "sent"))
    line = json.loads(stream.getvalue())
    assert (line["level"], line["message"]) == (level, message)
    if status == "complete":
        assert line["report"] == {"status": "complete", "read": 3, "sent": 1}
    else:
        assert line["report"]["report"] == "reports/monetate/customers/day.csv.json"
        assert line["report"]["errors"] == report["errors"][:ERRORS_LOGGED] and len(report["errors"]) > ERRORS_LOGGED


def test_every_function_logs_to_a_group_of_the_template_that_keeps_lines_for_a_set_time():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    resources = load(ROOT / "template.yaml")["Resources"]
    functions = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    groups = [r["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for r in functions.values()]
    assert functions and len(set(groups)) == len(functions)
    for group in groups:
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_a_report_shows_its_first_and_last_errors_and_counts_the_others():
    from martech.reports import RunReport

    report = RunReport("inbox", "monetate/s/f.csv", None, "monetate")
    report.errors = [f"lines {i}-{i + 499}: the answer was lost" for i in range(0, 300_000, 500)] + ["the key was revoked"]
    shown = report.as_dict()["errors"]
    assert len(shown) == 50 and shown[0] == "lines 0-499: the answer was lost"
    assert shown[40] == "and 552 more errors like those above" and shown[-1] == "the key was revoked"
    few = RunReport("inbox", "k", None, "monetate", errors=["one", "two"])
    assert few.as_dict()["errors"] == ["one", "two"]


def test_rows_set_aside_are_counted_by_reason_whatever_value_each_quotes():
    from martech.reports import OTHER_REASONS, REASONS_COUNTED, RejectedRows

    rows = RejectedRows(None, "inbox", "monetate/s/f.csv")
    for line, value in enumerate(["lots", "many", 'it\'s "x"']):
        rows.add(line, [f"lifetime_value: expected a number, found {value!r}", "customer_id: required"])
    rows.add(9, ["Optimove's reason: the key's 'C1' is unknown"])
    for line, number in enumerate(["99999999999999999", "-1.5e300", "12345"]):  # numbers, as JSON files hold them
        rows.add(line, [f"exportTimestamp: {number} is not Unix seconds (10 digits) or milliseconds (13 digits)"])
        rows.add(line, [f"vip: expected true/false, 1/0 or yes/no, found {number}"])
    assert rows.reasons == {"lifetime_value: expected a number, found '...'": 3, "customer_id: required": 3,
                            "Optimove's reason: the key's '...' is unknown": 1,
                            "exportTimestamp: N is not Unix seconds (10 digits) or milliseconds (13 digits)": 3,
                            "vip: expected true/false, 1/0 or yes/no, found N": 3}
    for line in range(REASONS_COUNTED + 5):
        rows.add(line, [f"reason {line}"])
    assert len(rows.reasons) == REASONS_COUNTED + 1 and rows.reasons[OTHER_REASONS] == 10


def test_rows_set_aside_are_counted_by_reason_whatever_line_column_or_byte_it_names():
    from martech.readers import read_records
    from martech.reports import RejectedRows

    lines = [b"id,tier", b"1,gold", b'2,"silver', b"3,gold", b"4,gold,x", b"4b,gold,x,y", b"5,gr\xfcn", b"6,m\xfcller",
             b"7,caf\xe9"]
    jsonl = [b'{"id": 1}', b'{"id": 2', b'{"id": 3, "x": tru}', b'{"id": 4}']
    rows = RejectedRows(None, "inbox", "mona/a/f.csv")
    for key, data in (("f.csv", lines), ("f.jsonl", jsonl)):
        for record in read_records(io.BytesIO(b"\n".join(data)), key):
            if record.error:
                rows.add(record.line, [record.error])
    hint = ("(it would be '...' in Windows-1252: save the file as UTF-8; Excel calls it CSV UTF-8, or upload it with"
            " Content-Type text/csv; charset=windows-1252)")
    assert rows.reasons == {
        f"not UTF-8 text: byte N of the line is 0x.. {hint}": 3,
        "expected 2 columns as in the header, found N; a value holding a comma is written in double quotes ('...')": 2,
        "malformed CSV: unexpected end of data in a record that runs on to line N; a quote opened on this line is"
        " probably never closed, so lines N are read again as rows of their own": 1,
        "invalid JSON: unexpected end of data at column N": 1, "invalid JSON: invalid literal, expected '...' at column N": 1}


def test_uploads_of_a_key_without_versions_are_told_apart_by_their_content_and_time(monkeypatch):
    import datetime as dt

    from aws_lambda_powertools import Logger

    from martech import handlers
    from martech.s3_events import DroppedFile

    heads = iter([{"VersionId": "null", "ETag": '"abc"', "LastModified": dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)},
                  {"VersionId": "null", "ETag": '"def"', "LastModified": dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)},
                  {"VersionId": "v7", "ETag": '"def"', "LastModified": dt.datetime(2026, 11, 24, 11, tzinfo=dt.UTC)}])

    class S3:
        def head_object(self, **kwargs):
            return next(heads)

    monkeypatch.setattr(handlers, "s3", S3)
    first, second, versioned = (handlers.pinned(DroppedFile("inbox", "monetate/c/day.csv", None, 1), Logger("t"))
                                for _ in range(3))
    assert first["id"] == "inbox/monetate/c/day.csv@abc-2026-11-24T10:00:00+00:00" and first["version_id"] is None
    assert second["id"] != first["id"] and second["version_id"] is None  # read as the key's current object
    assert versioned["id"] == "inbox/monetate/c/day.csv@v7" and versioned["version_id"] == "v7"


@pytest.mark.parametrize("content_type, charset", [
    ("text/csv; charset=windows-1252", "windows-1252"), ('text/csv;charset="ISO-8859-1"', "ISO-8859-1"),
    ("text/plain; Charset=UTF-8; header=present", "UTF-8"), ("text/csv", None), ("binary/octet-stream", None),
    ("text/csv; charset=", None), ("", None), (None, None),
])
def test_the_charset_a_content_type_names(content_type, charset):
    from martech.handlers import charset_of

    assert charset_of(content_type) == charset


@pytest.mark.parametrize("query, flag", [
    ("", False), ("merge", True), ("merge=true", True), ("merge=False", False), ("merge=yes&merge=true", True),
    ("merge=true&merge=false", "?merge is given both true and false: give it once"),
    ("merge=true&merge=maybe", "?merge=maybe: write true or false"),
])
def test_a_query_switch_is_true_false_or_refused_however_often_it_is_given(query, flag):
    from types import SimpleNamespace
    from urllib.parse import parse_qs

    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    from martech.handlers import BadQuery, query_flag

    values = parse_qs(query, keep_blank_values=True)
    api = SimpleNamespace(current_event=APIGatewayProxyEvent({  # as API Gateway sends them: the last, and all
        "queryStringParameters": {k: v[-1] for k, v in values.items()} or None,
        "multiValueQueryStringParameters": values or None}))
    if isinstance(flag, bool):
        assert query_flag(api, "merge") is flag
    else:
        with pytest.raises(BadQuery, match=re.escape(flag)):
            query_flag(api, "merge")


@pytest.mark.parametrize("status, not_complete", [("complete", 0), ("partial", 1), ("failed", 1)])
def test_a_file_that_did_not_end_complete_is_counted_for_the_alarms(status, not_complete):
    from aws_lambda_powertools import Metrics

    from martech.handlers import report_metrics

    metrics = Metrics(namespace="MarketingBundle", service="monetate")
    metrics.clear_metrics()  # Powertools keeps one metric set per process: what stack tests put in it too
    report_metrics(metrics, {"status": status, "read": 7}, {"RecordsRead": "read"})
    assert metrics.metric_set["RecordsRead"]["Value"] == [7.0]
    assert metrics.metric_set["FilesNotComplete"]["Value"] == [float(not_complete)]
    metrics.clear_metrics()


@pytest.mark.parametrize("answer, level, not_complete", [
    ({"file": "monetate-sessions/a.jsonl", "sessions": 4, "rejected": 1, "refresh": {"triggered": False}}, "INFO", 0),
    ({"file": "monetate-sessions/a.jsonl", "error": "monetate-sessions/a.jsonl: not gzip"}, "ERROR", 1),
])
def test_a_session_stream_file_that_failed_is_logged_as_an_error_and_counted_for_the_alarms(answer, level, not_complete):
    from aws_lambda_powertools import Logger, Metrics

    from martech.handlers import log_sessions_run

    metrics, stream = Metrics(namespace="MarketingBundle", service="monetate"), io.StringIO()
    metrics.clear_metrics()
    log_sessions_run(Logger(service=f"sessions-{level}", stream=stream), metrics, answer)
    line = json.loads(stream.getvalue())
    assert line["level"] == level and metrics.metric_set["FilesNotComplete"]["Value"] == [float(not_complete)]
    if not_complete:
        assert line["summary"] == {"error": answer["error"], "report": "reports/monetate-sessions/a.jsonl.json"}
    else:
        assert line["summary"] == {"sessions": 4, "rejected": 1, "refresh": {"triggered": False}}
    metrics.clear_metrics()


def test_every_alarm_of_the_template_tells_the_alarm_topic():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    resources = load(ROOT / "template.yaml")["Resources"]
    alarms = {lid: r for lid, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    # A dead-letter queue and files not complete, for each of three functions; a failed metadata refresh.
    assert sorted(alarms) == sorted([f"{name}{alarm}" for name in ("Monetate", "Optimove", "Mona")
                                     for alarm in ("DeadLetterAlarm", "FilesNotCompleteAlarm")] + ["MonetateFunctionErrorsAlarm"])
    errors = alarms["MonetateFunctionErrorsAlarm"]["Properties"]
    assert errors["MetricName"] == "Errors"
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "MonetateFunction"}}]
    assert all(r["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for r in alarms.values())
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def _deploy_parameters() -> dict[str, dict[str, str]]:
    import shlex
    import tomllib

    from sandbox.local.stack import ROOT

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    return {env: dict(item.split("=", 1) for item in shlex.split(config[env]["deploy"]["parameters"]["parameter_overrides"]))
            for env in ("dev", "prod")}


def test_each_environment_of_samconfig_keeps_its_own_secrets():
    parameters = _deploy_parameters()
    names = ("MonetateSecretName", "OptimoveSecretName", "MonaSecretName")
    for env, values in parameters.items():
        assert all(f"/{env}/" in values[name] for name in names), (env, values)
    assert not {parameters["dev"][n] for n in names} & {parameters["prod"][n] for n in names}


def _stack_names() -> dict[str, str]:
    import tomllib

    from sandbox.local.stack import ROOT

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    return {env: config[env]["deploy"]["parameters"]["stack_name"] for env in ("dev", "prod")}


def test_the_inbox_bucket_name_the_stack_name_makes_is_one_s3_takes_and_the_readme_says_which_names_do():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    made = load(ROOT / "template.yaml")["Resources"]["InboxBucket"]["Properties"]["BucketName"]["Fn::Sub"]

    def bucket_takes(stack_name):  # S3's rules for a bucket name in a standard region
        name = made.replace("${AWS::StackName}", stack_name).replace("${AWS::AccountId}", "123456789012")
        return bool(re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name)) and ".." not in name

    assert all(bucket_takes(name) for name in _stack_names().values())
    readme = (ROOT / "README.md").read_text()
    longest = int(re.search(r"letters, digits and hyphens, at most (\d+) characters", readme)[1])
    assert bucket_takes("m" * longest) and not bucket_takes("m" * (longest + 1))
    assert not bucket_takes("MarketingBundle-Dev")


def _holds(condition, parameters):
    """A template rule's assertion, for the parameter values given (the rule functions it uses)."""
    if isinstance(condition, dict) and len(condition) == 1:
        (function, argument), = condition.items()
        if function == "Ref":
            return parameters[argument]
        if function == "Fn::Not":
            return not _holds(argument[0], parameters)
        if function == "Fn::Equals":  # CloudFormation compares the values as text
            return str(_holds(argument[0], parameters)) == str(_holds(argument[1], parameters))
        raise AssertionError(f"no evaluation for {function}")
    return condition


def test_the_template_refuses_to_deploy_with_the_retailer_shortname_left_as_samconfig_ships_it():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    template = load(ROOT / "template.yaml")
    assertions = [a["Assert"] for rule in template["Rules"].values() for a in rule["Assertions"]]

    def deployable(shortname):
        return all(_holds(a, {"RetailerShortname": shortname}) for a in assertions)

    assert all(not deployable(values["RetailerShortname"]) for values in _deploy_parameters().values())
    assert deployable("fifthlevelfashion")
    pattern = template["Parameters"]["RetailerShortname"]["AllowedPattern"]
    assert re.fullmatch(pattern, "fifth-level_2") and not re.fullmatch(pattern, "a/b") and not re.fullmatch(pattern, "")


def _lifecycle_rules(template, parameters):
    """The inbox's lifecycle rules as deployed with ``parameters``: Fn::If resolved, AWS::NoValue left out."""
    rules = []
    for rule in template["Resources"]["InboxBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]:
        if "Fn::If" in rule:
            name, when_true, when_false = rule["Fn::If"]
            rule = when_true if _holds(template["Conditions"][name], parameters) else when_false
        if rule != {"Ref": "AWS::NoValue"}:
            rules.append(rule)
    return rules


def test_dropped_files_expire_only_when_a_retention_is_set_and_then_under_every_inbox_prefix_alone():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    template = load(ROOT / "template.yaml")
    bucket = template["Resources"]["InboxBucket"]["Properties"]
    inbox = {rule["Value"] for queue in bucket["NotificationConfiguration"]["QueueConfigurations"]
             for rule in queue["Filter"]["S3Key"]["Rules"] if rule["Name"] == "prefix"}
    assert inbox == {"monetate/", "monetate-sessions/", "optimove/", "mona/"}
    kept = _lifecycle_rules(template, {"DroppedFileRetentionDays": "0", "AlarmEmail": ""})
    expiring = _lifecycle_rules(template, {"DroppedFileRetentionDays": "7", "AlarmEmail": ""})
    assert not inbox & {rule.get("Prefix") for rule in kept}
    assert {rule["Prefix"] for rule in expiring if rule.get("ExpirationInDays") == {"Ref": "DroppedFileRetentionDays"}} == inbox
    for rules in (kept, expiring):  # nothing expires the metadata snapshots, and cut-off uploads are aborted
        assert all(rule.get("Prefix") for rule in rules if "ExpirationInDays" in rule)
        assert any(rule.get("AbortIncompleteMultipartUpload") for rule in rules)


# -- a file's options from its object metadata ---------------------------------------------------
@pytest.mark.parametrize("metadata, options", [
    ({}, (3600, False)),
    ({"ttl": "60"}, (60, False)),
    ({"merge": "True"}, (3600, True)),
    ({"merge": "no", "ttl": " 86400 "}, (86400, False)),
    ({"merge": ""}, (3600, False)),
    ({"mtime": "1700000000.5", "s3cmd-attrs": "uid:0"}, (3600, False)),  # what tools add is let be
    ({"ttl": "30m"}, (1800, False)), ({"ttl": "24h"}, (86400, False)), ({"ttl": "7d"}, (604800, False)),
    ({"ttl": "90 s"}, (90, False)), ({"ttl": "2D"}, (172800, False)),
])
def test_file_options_come_from_object_metadata_over_the_setting(metadata, options):
    assert file_options(metadata, 3600) == options


@pytest.mark.parametrize("metadata, named", [({"ttl": "1 day"}, "ttl='1 day'"), ({"ttl": "-5"}, "ttl='-5'"),
                                            ({"ttl": "1w"}, "ttl='1w' is not a whole number of seconds over 0 (or of"
                                                            " minutes, hours or days: 30m, 24h, 7d)"),
                                            ({"ttl": "0d"}, "ttl='0d'"), ({"ttl": "1.5h"}, "ttl='1.5h'"),
                                            ({"ttl": "0"}, "ttl='0'"), ({"merge": "sure"}, "merge='sure'"),
                                            ({"marge": "true"}, "marge='true' is no option (did you mean merge?)"),
                                            ({"ttl-seconds": "60"}, "(did you mean ttl?)")])
def test_file_options_that_mean_nothing_are_refused_by_name(metadata, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        file_options(metadata, None)


# -- a failed file's message comes back after a backoff -------------------------------------------
class RecordingSqs:
    def __init__(self):
        self.held = []

    def change_message_visibility(self, QueueUrl, ReceiptHandle, VisibilityTimeout):  # noqa: N803 - boto3's names
        self.held.append((QueueUrl, ReceiptHandle, VisibilityTimeout))


def _sqs_event(receive_count):
    return {"Records": [{"messageId": "m1", "receiptHandle": "r1", "body": "{}", "eventSource": "aws:sqs",
                         "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:inbox-monetate",
                         "attributes": {"ApproximateReceiveCount": str(receive_count)}, "messageAttributes": {}}]}


@pytest.mark.parametrize("receive_count, held_for", [(1, 300), (3, 1200), (12, 43_200)])
def test_a_message_whose_run_failed_comes_back_after_a_backoff_doubled_at_each_try(monkeypatch, receive_count, held_for):
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from martech import handlers

    recorded = RecordingSqs()
    monkeypatch.setattr(handlers, "sqs", lambda: recorded)

    def failing(record, lambda_context=None):
        raise RuntimeError("the vendor answered 503 after retries")

    lines = io.StringIO()
    logger = Logger(service=f"backoff-{receive_count}", logger_handler=logging.StreamHandler(lines))
    metrics = Metrics(namespace="MarketingBundle", service=f"backoff-{receive_count}")
    with pytest.raises(BatchProcessingError):  # a batch whose every message failed fails the invocation
        handlers.dispatch(_sqs_event(receive_count), None, logger, APIGatewayRestResolver(),
                          failing, BatchProcessor(event_type=EventType.SQS), IdempotencyConfig(), retry_after_seconds=300,
                          queue_url="https://sqs.local/inbox-monetate", metrics=metrics)
    assert recorded.held == [("https://sqs.local/inbox-monetate", "r1", held_for)]
    logged = [json.loads(line) for line in lines.getvalue().splitlines() if '"file back to its queue"' in line]
    assert [entry["retry"] for entry in logged] == [{"try": receive_count, "back_in_seconds": held_for,
                                                     "because": "the vendor answered 503 after retries"}]
    assert _counted(metrics) == {"FileRetries": 1.0}  # the dashboard sees a vendor's trouble before the DLQ does

    recorded.held.clear()
    handlers.dispatch(_sqs_event(receive_count), None, Logger(service="test"), APIGatewayRestResolver(),
                      lambda record, lambda_context=None: None, BatchProcessor(event_type=EventType.SQS),
                      IdempotencyConfig(), retry_after_seconds=300, queue_url="https://sqs.local/inbox-monetate",
                      metrics=metrics)
    assert recorded.held == []  # a message whose run went well is deleted as it was
    assert _counted(metrics) == {}


def test_the_metrics_of_an_invocation_that_fails_are_published(capsys, monkeypatch):
    """A batch whose every file run failed fails the invocation; its FileRetries must still reach CloudWatch."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV"):  # as Lambda runs it, not as the local stack does
        monkeypatch.delenv(name, raising=False)

    metrics = Metrics(namespace="MarketingBundle", service="published")

    @metrics.log_metrics
    def handler(event, context):
        metrics.add_metric(name="FileRetries", unit="Count", value=1)
        raise BatchProcessingError("every message failed", [])

    with pytest.raises(BatchProcessingError):
        handler({}, None)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [line.get("FileRetries") for line in emitted] == [[1.0]]


def _counted(metrics) -> dict[str, float]:
    """The metrics added since the last look, summed by name; cleared as a flush would."""
    counted = {name: sum(m["Value"]) if isinstance(m["Value"], list) else m["Value"]
               for name, m in metrics.metric_set.items()}
    metrics.clear_metrics()
    return counted


def test_each_file_function_knows_its_own_queue_and_may_send_to_it_and_hold_its_messages():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    resources = load(ROOT / "template.yaml")["Resources"]
    functions = {lid: r["Properties"] for lid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    for lid, props in functions.items():
        queues = [e["Properties"]["Queue"]["Fn::GetAtt"][0] for e in props["Events"].values() if e["Type"] == "SQS"]
        assert len(queues) == 1, lid
        assert props["Environment"]["Variables"]["FILE_QUEUE_URL"] == {"Ref": queues[0]}
        granted = {name for policy in props["Policies"] if isinstance(policy, dict) for name in policy
                   if policy[name] == {"QueueName": {"Fn::GetAtt": [queues[0], "QueueName"]}}}
        assert granted == {"SQSSendMessagePolicy", "SQSPollerPolicy"}, lid  # SendMessage; ChangeMessageVisibility
        # A run going on from an earlier one lists the report's versions (reports.RunReport.carried_over).
        statements = [s for policy in props["Policies"] if "Statement" in policy for s in policy["Statement"]]
        assert any(s["Action"] == "s3:ListBucketVersions" and s["Resource"] == {
            "Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::StackName}-inbox-${AWS::AccountId}"} for s in statements), lid
    # No policy grants sqs:GetQueueUrl: the code must not ask for a queue's URL.
    code = [path.read_text() for path in (ROOT / "layers" / "shared" / "martech").glob("*.py")]
    code += [path.read_text() for path in (ROOT / "functions").glob("*/app.py")]
    assert not any("get_queue_url" in text for text in code)


def test_the_functions_that_read_times_take_the_date_order_and_time_zone_the_template_is_given():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    template = load(ROOT / "template.yaml")
    assert template["Parameters"]["TimeZone"]["Default"] == ""  # none: times without an offset as before
    for function in ("MonetateFunction", "MonaFunction"):  # Monetate DATETIME fields, Mona times
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert (variables["DATE_ORDER"], variables["TIME_ZONE"]) == ({"Ref": "DateOrder"}, {"Ref": "TimeZone"}), function


def test_the_dashboard_shows_metrics_the_functions_emit_and_every_file_metric_of_each_function():
    from sandbox.local.stack import ROOT
    from sandbox.local.template import load

    resources = load(ROOT / "template.yaml")["Resources"]
    body = json.loads(re.sub(r"\$\{[^}]+\}", "x", resources["BundleDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]))
    shown = {(metric[1], metric[3]) for widget in body["widgets"] for metric in widget["properties"]["metrics"]
             if metric[0] == "MarketingBundle"}
    emitted = set()
    shared = (ROOT / "layers" / "shared" / "martech" / "handlers.py").read_text()  # what every file function emits
    for service in ("monetate", "optimove", "mona"):
        code = (ROOT / "functions" / service / "app.py").read_text()
        names = set(re.findall(r'add_metric\(name="(\w+)"', code + shared))
        names |= set(re.findall(r'"((?:Records|Messages)\w+)": "', code))
        emitted |= {(name, service) for name in names | {"FilesNotComplete"}}
        assert re.search(r"dispatch\([^)]*metrics=metrics", code), service  # FileRetries is counted in dispatch
        files = {name for name in names if name.endswith(("Read", "Sent", "Rejected", "Failed"))}
        assert len(files) == 4 and {(name, service) for name in files | {"FilesNotComplete", "FileRetries"}} <= shown, service
    assert shown <= emitted  # nothing on the dashboard that no function emits


@pytest.mark.parametrize("receive_count, note", [
    (1, "try 1 of 5; the next in 5 minutes"),
    (4, "try 4 of 5; the next in 40 minutes"),
    (5, "try 5 of 5; next, the dead-letter queue: redrive it once the cause is mended"),
])
def test_a_report_says_which_try_failed_and_what_comes_next(receive_count, note):
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from martech.handlers import retry_note

    record = SQSRecord(_sqs_event(receive_count)["Records"][0])
    assert retry_note(record, Settings(retry_after_seconds=300, file_tries=5)) == note


@pytest.mark.parametrize("names, found", [
    (["CUSTOMER_ID", "TIER"], "CUSTOMER_ID"), (["Customer_Id"], "Customer_Id"),
    (["customer_id", "CUSTOMER_ID"], "CUSTOMER_ID"),  # the name as written is not "written otherwise"
    (["CUSTOMER_ID", "Customer_ID"], None),  # two other cases: nothing says which
    (["Customer ID", "Tier"], "Customer ID"), (["customer-id"], "customer-id"),  # as BI tools and spreadsheets show it
    (["customerId", "tier"], "customerId"), (["CustomerID"], "CustomerID"),  # as APIs write JSON
    (["Customer ID", "customerId"], None),  # two ways: nothing says which
    (["customer", "id"], None), (["customerid"], None), (["_customer_id"], None), ([], None),
])
def test_a_name_written_otherwise_is_found_only_when_one_alone_matches(names, found):
    from martech.names import written_otherwise

    assert written_otherwise("customer_id", names) == found


def test_a_name_and_the_name_in_camel_case_match_as_written_in_lower_case_too():
    from martech.names import SpelledAlike, written_otherwise

    assert written_otherwise("lifetimeValue", ["LIFETIMEVALUE"]) == "LIFETIMEVALUE"  # a camelCase field, in capitals
    assert written_otherwise("lifetimeValue", ["lifetime value"]) == "lifetime value"
    fields = SpelledAlike(["customer_id", "customerId", "tier"])  # alike written otherwise: neither is meant
    assert (fields.get("Customer ID"), fields.get("CUSTOMERID"), fields.get("TIER")) == (None, "customerId", "tier")


def test_the_local_summary_places_a_rejected_item_of_a_json_array_by_its_index():
    import io
    from types import SimpleNamespace

    from sandbox.local.__main__ import rejected_summary

    rows = b'{"line": 1, "index": 4, "reasons": ["tier: expected text"], "record": {}}\n' \
           b'{"line": 7, "reasons": ["malformed CSV"], "record": "x"}\n'
    s3 = SimpleNamespace(get_object=lambda **_: {"Body": io.BytesIO(rows)})
    lines = rejected_summary(SimpleNamespace(s3=s3, bucket="b"), {"rejected_rows": "r", "rejected": 2})
    assert [line.strip() for line in lines] == ["line 1, item 4: tier: expected text", "line 7: malformed CSV"]


def test_the_csv_nulls_parameter_reaches_every_function_as_its_setting():
    from martech.settings import Settings
    from sandbox.local.template import Template

    template = Path(__file__).resolve().parents[2] / "template.yaml"
    made = {name: defaultdict(lambda: "made") for name in Template(template, {}).resources}  # every !Ref and !GetAtt resolves
    for parameters, expected in (({}, frozenset()), ({"CsvNulls": "NULL,\\N"}, frozenset({"NULL", "\\N"}))):
        specs = Template(template, parameters, made).functions()
        assert {spec.logical_id: Settings.from_env(spec.environment).csv_null_texts for spec in specs} == \
            {spec.logical_id: expected for spec in specs}, parameters


@pytest.mark.parametrize("name, value, alike", [
    ("1", "2", True), ("C-1", "C-22", True), ("user1", "user2", True), ("ann@example.com", "bob@example.org", True),
    ("customer_id", "C-1", False), ("username", "alice", False), ("id2", "C-1", False), ("1", 2, False),
])
def test_a_csv_columns_name_is_taken_for_a_value_when_it_is_written_as_the_value_under_it_is(name, value, alike):
    from martech.csv_records import written_alike

    assert written_alike(name, value) is alike
