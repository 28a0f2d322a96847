"""Every webhook answer the stack tests get is checked against api/webhooks.openapi.yaml, the
description integrators are given: a status or a body it does not describe fails the test."""

from functools import cache
from pathlib import Path

import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

SPEC = Path(__file__).resolve().parents[2] / "api" / "webhooks.openapi.yaml"


@cache
def _openapi(base_url: str) -> OpenAPI:
    spec = yaml.safe_load(SPEC.read_text())
    spec["servers"] = [{"url": base_url}]  # the local API Gateway serves without a stage prefix
    return OpenAPI.from_dict(spec)


def call(stack, method: str, path: str, **kwargs) -> requests.Response:
    """A webhook call to the stack's API, with its key; the answer as described, or the test fails."""
    headers = {"x-api-key": stack.api.api_key, **kwargs.pop("headers", {})}
    answer = requests.request(method, f"{stack.api.url}{path}", headers=headers, **kwargs)
    _openapi(stack.api.url).validate_response(RequestsOpenAPIRequest(answer.request), RequestsOpenAPIResponse(answer))
    return answer
