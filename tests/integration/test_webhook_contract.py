"""The check every stack test's webhook call goes through fails for an answer the description
(api/webhooks.openapi.yaml) does not hold, so that the description stays true."""

import json
from types import SimpleNamespace

import pytest
from openapi_core.exceptions import OpenAPIError

from sandbox.local.api import LocalApi
from tests.integration.webhook_contract import call


class Answers:
    def __init__(self, status, body):
        self.status, self.body = status, body

    def invoke(self, event):
        return {"statusCode": self.status, "multiValueHeaders": {"Content-Type": ["application/json"]},
                "body": json.dumps(self.body)}


@pytest.fixture
def local_api():
    api = LocalApi(api_key="k").start()
    yield api
    api.stop()


def stack_with(api, status, body):
    api.add("POST", "/monetate/{schema}/records", Answers(status, body))
    return SimpleNamespace(api=SimpleNamespace(url=api.url, api_key="k"))


def test_an_answer_as_described_passes(local_api):
    body = {"accepted": 1, "rejected": 0, "unknown": 0, "not_sent": 0, "results": [{"index": 0, "status": "accepted"}]}
    assert call(stack_with(local_api, 200, body), "POST", "/monetate/customers/records", json={"records": [{}]}).ok


def test_api_gateways_own_answers_are_described(local_api):
    stack = stack_with(local_api, 200, {})
    assert call(stack, "POST", "/monetate/customers/records", json={}, headers={"x-api-key": "wrong"}).status_code == 403


@pytest.mark.parametrize("status, body", [
    (200, {"accepted": "all", "rejected": 0, "unknown": 0, "not_sent": 0, "results": []}),  # a count that is text
    (200, {"accepted": 1, "results": [{"index": 0, "status": "taken"}]}),  # counts missing, a status not described
    (418, {"message": "a status not described"}),
])
def test_an_answer_the_description_does_not_hold_fails_the_check(local_api, status, body):
    with pytest.raises(OpenAPIError):
        call(stack_with(local_api, status, body), "POST", "/monetate/customers/records", json={"records": [{}]})


def test_the_description_holds_every_route_of_the_functions_and_no_other():
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    routes = {(method.upper(), re.sub(r"<\w+>", "{}", path))  # parameter names aside
              for source in root.glob("functions/*/app.py")
              for method, path in re.findall(r'@api\.(get|post|put|delete|patch)\("([^"]+)"\)', source.read_text())}
    spec = yaml.safe_load((root / "api" / "webhooks.openapi.yaml").read_text())
    described = {(method.upper(), re.sub(r"\{\w+\}", "{}", path)) for path, item in spec["paths"].items()
                 for method in item if method in ("get", "post", "put", "delete", "patch")}
    assert len(routes) == 16 and routes == described
