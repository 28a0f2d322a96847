"""The Monetate sandbox answers what Monetate's published OpenAPI documents describe.

Every answer below, success or error, is validated by openapi-core against the vendor's
own document in shared/vendor-specs/monetate/, with the server URL pointed at the sandbox.
"""

from pathlib import Path

import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from tests.sandbox.monetate_helpers import AUTH, DATA, METADATA, token

SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "vendor-specs" / "monetate"

EXAMPLE_SCHEMA = {
    "name": "example_schema",
    "type": "attribute",
    "named_identifier": "example_id",
    "fields": {
        "example_field1": {"data_type": "STRING", "identifier": True, "unique_key": True},
        "example_field2": {"data_type": "DATETIME"},
        "example_field3": {"data_type": "BOOLEAN"},
        "example_field4": {"data_type": "NUMBER"},
        "example_field5": {"data_type": "MULTI_STRING"},
    },
}
EXAMPLE_ROW = {"example_field1": "c1", "example_field2": "2016-09-30T12:10:45.000145+00:00", "example_field3": True,
               "example_field4": 10.5, "example_field5": "a,b"}


def openapi_for(document: str, server_url: str) -> OpenAPI:
    spec = yaml.safe_load((SPECS / f"monetate-{document}-api.openapi.yml").read_text())
    spec["servers"] = [{"url": server_url}]
    return OpenAPI.from_dict(spec)


class Contract:
    """Sends requests to the sandbox and validates every answer against the document."""

    def __init__(self, server, document, prefix, headers=None):
        self.base = server.url + prefix
        self.openapi = openapi_for(document, self.base)
        self.headers = headers or {}
        self.seen: list[tuple[str, str, int]] = []

    def call(self, method, path, expect, **kwargs):
        kwargs["headers"] = {**self.headers, **kwargs.get("headers", {})}
        answer = requests.request(method, self.base + path, **kwargs)
        assert answer.status_code == expect, answer.text
        self.openapi.validate_response(RequestsOpenAPIRequest(answer.request), RequestsOpenAPIResponse(answer))
        self.seen.append((method, path.split("?")[0], expect))
        return answer


def inject(server, *faults):
    requests.put(f"{server.url}/_sandbox/faults", json={"script": list(faults)})


def test_auth_answers_match_the_published_document(monetate_sandbox, monetate_key):
    contract = Contract(monetate_sandbox, "auth", AUTH.removesuffix("/refresh/"))
    contract.call("GET", "/refresh/", 200, headers={"Authorization": f"JWT {monetate_key.jwt()}"})
    contract.call("GET", "/refresh/?ttl=600", 200, headers={"Authorization": f"JWT {monetate_key.jwt()}"})
    contract.call("GET", "/refresh/", 401, headers={"Authorization": "JWT nonsense"})
    inject(monetate_sandbox, "500")
    contract.call("GET", "/refresh/", 500, headers={"Authorization": f"JWT {monetate_key.jwt()}"})
    monetate_sandbox.app.auth.set_active("key-1", False)
    contract.call("GET", "/refresh/", 403, headers={"Authorization": f"JWT {monetate_key.jwt()}"})


def test_data_answers_match_the_published_document(monetate_sandbox, monetate_key):
    headers = {"Authorization": f"Token {token(monetate_sandbox, monetate_key)}"}
    contract = Contract(monetate_sandbox, "data", DATA, headers)
    contract.call("POST", "/schema/", 201, json=EXAMPLE_SCHEMA)
    contract.call("POST", "/schema/", 400, json={**EXAMPLE_SCHEMA, "name": "9bad"})
    contract.call("GET", "/schema/", 200)
    contract.call("GET", "/schema/?row_count=true&latest_upload=true", 200)
    contract.call("GET", "/schema/example_schema/", 200)
    contract.call("GET", "/schema/missing/", 404)
    contract.call("PATCH", "/schema/example_schema/", 200, json={"fields": {"extra": {"data_type": "STRING"}}})
    contract.call("PATCH", "/schema/example_schema/", 400, json={})
    contract.call("POST", "/data/example_schema/", 201, json={"schema_rows": [EXAMPLE_ROW], "_sent_time": "2024-01-01T00:00:00Z"})
    contract.call("POST", "/data/example_schema/", 400, json={"schema_rows": [{**EXAMPLE_ROW, "example_field4": "x"}]})
    contract.call("GET", "/data/example_schema/?id=c1", 200)
    contract.call("GET", "/data/example_schema/?id=c1", 429)
    contract.call("GET", "/upload/example_schema/", 200)
    contract.call("GET", "/upload/missing/", 404)
    inject(monetate_sandbox, "500")
    contract.call("GET", "/schema/", 500)
    contract.call("GET", "/schema/", 401, headers={"Authorization": "Token expired-or-wrong"})
    monetate_sandbox.app.auth.set_active("key-1", False)
    contract.call("GET", "/schema/", 403)


@pytest.mark.parametrize("kind", ["customtarget", "pageevent", "variant", "experience-summary", "account"])
def test_metadata_answers_match_the_published_document(monetate_sandbox, monetate_key, kind):
    headers = {"Authorization": f"Token {token(monetate_sandbox, monetate_key)}"}
    contract = Contract(monetate_sandbox, "metadata", METADATA.removesuffix("/metadata"), headers)
    first = contract.call("GET", f"/metadata/{kind}", 200).json()
    contract.call("GET", f"/metadata/{kind}?page_size=1", 200)
    contract.call("GET", f"/metadata/{kind}/{first['data'][0]['id']}", 200)
    contract.call("GET", f"/metadata/{kind}/1", 404)
    inject(monetate_sandbox, "500")
    contract.call("GET", f"/metadata/{kind}", 500)
    contract.call("GET", f"/metadata/{kind}", 401, headers={"Authorization": "Token nope"})
    monetate_sandbox.app.auth.set_active("key-1", False)
    contract.call("GET", f"/metadata/{kind}", 403)


def test_a_wrong_answer_would_fail_the_contract(monetate_sandbox, monetate_key):
    """The validator is not a rubber stamp: a token answer without its envelope is refused."""
    contract = Contract(monetate_sandbox, "auth", AUTH.removesuffix("/refresh/"))
    answer = requests.get(contract.base + "/refresh/", headers={"Authorization": f"JWT {monetate_key.jwt()}"})
    answer._content = b'{"token": "bare"}'
    with pytest.raises(Exception, match="(?i)valid|required"):
        contract.openapi.validate_response(RequestsOpenAPIRequest(answer.request), RequestsOpenAPIResponse(answer))
