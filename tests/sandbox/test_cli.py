"""`python -m sandbox` starts the sandboxes and prints where they are and how to log in."""

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import jwt
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def run_cli(*args, env=None):
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--json", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        line = process.stdout.readline()
        assert line, "the sandbox printed nothing"
        yield json.loads(line)
    finally:
        process.terminate()
        process.wait(timeout=10)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_three_start_and_their_printed_credentials_work(tmp_path):
    with run_cli("--key-dir", str(tmp_path)) as info:
        assert set(info) == {"monetate", "optimove", "mona"}
        monetate = info["monetate"]
        private_key = Path(monetate["credentials"]["private_key_file"]).read_text()
        assertion = jwt.encode({"username": monetate["credentials"]["api_user"], "iat": int(time.time())},
                               private_key, algorithm="RS256")
        assert requests.get(monetate["auth_url"], headers={"Authorization": f"JWT {assertion}"}).status_code == 200

        optimove = info["optimove"]
        headers = {"x-api-key": optimove["credentials"]["api_key"], "x-brand-key": optimove["credentials"]["brand_key"]}
        assert requests.get(f"{optimove['base_url']}/connections", headers=headers).status_code == 200

        mona = info["mona"]
        login = requests.post(mona["auth_api_token_url"], json={"clientId": mona["credentials"]["client_id"],
                                                                "secret": mona["credentials"]["secret"]})
        assert login.status_code == 200


def test_one_vendor_on_a_given_port_with_credentials_from_the_environment():
    port = free_port()
    env = {"SANDBOX_OPTIMOVE_API_KEY": "key-from-env", "SANDBOX_OPTIMOVE_BRAND_KEY": "brand-from-env"}
    with run_cli("optimove", "--port", str(port), "--rate-500", "1", env=env) as info:
        assert list(info) == ["optimove"] and info["optimove"]["url"] == f"http://127.0.0.1:{port}"
        headers = {"x-api-key": "key-from-env", "x-brand-key": "brand-from-env"}
        assert requests.get(f"{info['optimove']['base_url']}/connections", headers=headers).status_code == 500


def test_the_local_runtime_takes_settings_over_the_templates(monkeypatch):
    from sandbox.local import __main__ as local

    class Started(Exception):
        pass

    def stack(**kwargs):
        raise Started(kwargs)

    monkeypatch.setattr(local, "LocalStack", stack)
    with pytest.raises(Started) as started:
        local.main(["serve", "--env", "CSV_NULLS=NULL,\\N", "--env", "UNKNOWN_COLUMNS=drop"])
    assert started.value.args[0]["function_env"] == {"CSV_NULLS": "NULL,\\N", "UNKNOWN_COLUMNS": "drop"}


def test_a_setting_not_written_name_equals_value_is_refused_saying_how(capsys):
    from sandbox.local import __main__ as local

    with pytest.raises(SystemExit):
        local.main(["serve", "--env", "CSV_NULLS"])
    assert "'CSV_NULLS': write a setting as NAME=VALUE, e.g. CSV_NULLS=NULL" in capsys.readouterr().err


@pytest.mark.parametrize("given, said", [
    ("UNKOWN_COLUMNS=drop", "UNKOWN_COLUMNS: no such setting (did you mean UNKNOWN_COLUMNS?)"),
    ("UNKNOWN_COLUMNS=maybe", "UNKNOWN_COLUMNS='maybe' must be one of reject, drop"),
    ("MONETATE_BATCH_SIZE=0", "MONETATE_BATCH_SIZE='0' must be greater than 0"),
])
def test_a_setting_the_functions_do_not_have_or_would_refuse_is_refused_before_anything_starts(monkeypatch, capsys,
                                                                                             given, said):
    from sandbox.local import __main__ as local

    def stack(**kwargs):
        raise AssertionError("the stack was started")

    monkeypatch.setattr(local, "LocalStack", stack)
    with pytest.raises(SystemExit) as exited:
        local.main(["serve", "--env", given])
    assert exited.value.code == 2 and said in capsys.readouterr().err


def test_the_summary_counts_every_row_set_aside_by_reason_the_rarest_reasons_in_one_line():
    from sandbox.local.__main__ import reason_counts

    reasons = {f"reason {n}": 20 - n for n in range(12)}  # 12 reasons, most first, 174 rows
    lines = reason_counts(reasons, shown=10)
    assert lines[0] == "             20  reason 0" and lines[9] == "             11  reason 9"
    assert lines[10] == "             19  for 2 other reason(s), in the report"  # 10 + 9
    assert reason_counts({"only": 4}) == ["              4  only"]


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


def test_the_local_summary_places_a_rejected_item_of_a_json_array_by_its_index():
    import io
    from types import SimpleNamespace

    from sandbox.local.__main__ import rejected_summary

    rows = b'{"line": 1, "index": 4, "reasons": ["tier: expected text"], "record": {}}\n' \
           b'{"line": 7, "reasons": ["malformed CSV"], "record": "x"}\n'
    s3 = SimpleNamespace(get_object=lambda **_: {"Body": io.BytesIO(rows)})
    lines = rejected_summary(SimpleNamespace(s3=s3, bucket="b"), {"rejected_rows": "r", "rejected": 2})
    assert [line.strip() for line in lines] == ["line 1, item 4: tier: expected text", "line 7: malformed CSV"]
