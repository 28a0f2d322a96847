"""The local API Gateway answers as API Gateway does: the function's answer, or its own 504 and 502."""

import json
import threading
import time

import pytest
import requests

from sandbox.local.api import LocalApi

KEY = "test-key"


class FakeFunction:
    """Answers with the event's path after ``delay`` seconds, or raises."""

    def __init__(self, delay=0.0, fails=False):
        self.delay, self.fails = delay, fails
        self.finished = threading.Event()

    def invoke(self, event):
        time.sleep(self.delay)
        self.finished.set()
        if self.fails:
            raise RuntimeError("the handler broke")
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"path": event["path"], "query": event["queryStringParameters"]})}


@pytest.fixture
def api():
    api = LocalApi(api_key=KEY, integration_timeout=0.3).start()
    yield api
    api.stop()


def call(api, path, key=KEY):
    return requests.post(f"{api.url}{path}", json={}, headers={"x-api-key": key}, timeout=5)


def test_a_function_that_answers_in_time_is_heard(api):
    api.add("POST", "/things/{name}", FakeFunction())
    answer = call(api, "/things/a?partial=true")
    assert answer.status_code == 200 and answer.json() == {"path": "/things/a", "query": {"partial": "true"}}


def test_a_function_slower_than_the_integration_timeout_gets_api_gateways_504_and_runs_on(api):
    slow = FakeFunction(delay=1.0)
    api.add("POST", "/slow", slow)
    began = time.monotonic()
    answer = call(api, "/slow")
    assert answer.status_code == 504 and answer.json() == {"message": "Endpoint request timed out"}
    assert time.monotonic() - began < 0.9 and not slow.finished.is_set()
    assert slow.finished.wait(2)  # unheard, but it went on


def test_a_function_that_fails_gets_api_gateways_502(api, capsys):
    api.add("POST", "/broken", FakeFunction(fails=True))
    answer = call(api, "/broken")
    assert answer.status_code == 502 and answer.json() == {"message": "Internal server error"}
    assert "the handler broke" in capsys.readouterr().err


def test_a_call_without_the_api_key_is_forbidden_and_an_unknown_path_is_api_gateways_404(api):
    api.add("POST", "/things/{name}", FakeFunction())
    assert call(api, "/things/a", key="wrong").status_code == 403
    assert call(api, "/other").json() == {"message": "Missing Authentication Token"}


def test_headers_and_multi_value_headers_of_an_answer_are_merged_as_api_gateway_merges_them(api):
    class Powertools(FakeFunction):  # Powertools answers with multiValueHeaders
        def invoke(self, event):
            return {"statusCode": 201, "body": "{}", "headers": {"Idempotency-Replayed": "true", "X-Both": "a"},
                    "multiValueHeaders": {"Content-Type": ["application/json"], "X-Both": ["a", "b"]}}

    api.add("POST", "/made", Powertools())
    answer = call(api, "/made")
    assert answer.status_code == 201 and answer.headers["Content-Type"] == "application/json"
    assert answer.headers["Idempotency-Replayed"] == "true" and answer.headers["X-Both"] == "a, b"
