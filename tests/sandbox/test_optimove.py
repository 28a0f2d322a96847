"""Optimove sandbox: keys, rate limit, connections, upload batches, update, delete, TTL,
query and API-based connections against a loopback external API."""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from sandbox.optimove import OptimoveSandbox, OptimoveSettings
from sandbox.server import SandboxServer

BASE = "/api/data-connections/v1"


class Client:
    def __init__(self, server):
        self.server = server
        creds = server.app.credentials()
        self.headers = {"x-api-key": creds["api_key"], "x-brand-key": creds["brand_key"]}

    def call(self, method, path, body=None, **kwargs):
        return requests.request(method, f"{self.server.url}{BASE}{path}", json=body,
                                headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def create(self, **body):
        answer = self.call("POST", "/connections", {"name": "customers", "primary_key": "customer_id", **body})
        assert answer.status_code == 200, answer.text
        return answer.json()["data_connection_uuid"]

    def upload(self, conn, rows, **extra):
        return self.call("POST", f"/connections/{conn}/upload_data", {"data": rows, **extra})

    def query(self, conn, key):
        return self.call("POST", f"/connections/{conn}/query", {"primary_key": key})

    def advance(self, seconds):
        requests.post(f"{self.server.url}/_sandbox/clock", json={"advance": seconds})


@pytest.fixture
def client(optimove_sandbox):
    return Client(optimove_sandbox)


@pytest.fixture
def conn(client):
    return client.create()


# -- keys and limits -----------------------------------------------------------------------
def test_missing_keys_are_422_naming_the_header(client):
    answer = requests.get(f"{client.server.url}{BASE}/connections", headers={"x-api-key": client.headers["x-api-key"]})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["header", "x-brand-key"]


def test_wrong_keys_are_401(client):
    answer = client.call("GET", "/connections", headers={"x-api-key": "wrong"})
    assert answer.status_code == 401 and answer.json()["detail"]


def test_rate_limit_answers_429_past_the_window_limit():
    with SandboxServer(OptimoveSandbox(OptimoveSettings(rate_limit=5, rate_window=60))) as server:
        client = Client(server)
        statuses = [client.call("GET", "/connections").status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        body = client.call("GET", "/connections").json()
        assert body["status"] == 429 and body["error"] == "Too Many Requests"


def test_default_rate_limit_is_the_documented_50_per_10_seconds():
    settings = OptimoveSettings()
    assert (settings.rate_limit, settings.rate_window) == (50, 10.0)


# -- connections ---------------------------------------------------------------------------
def test_connections_are_created_listed_fetched_renamed_and_deleted(client):
    conn = client.create(description="loyalty")
    assert uuid.UUID(conn)
    assert [c["data_connection_uuid"] for c in client.call("GET", "/connections").json()] == [conn]
    one = client.call("GET", f"/connections/{conn}").json()
    assert one["primary_key"] == "customer_id" and one["type"] == "upload"
    renamed = client.call("PUT", f"/connections/{conn}", {"name": "vip", "description": "d"}).json()
    assert renamed["name"] == "vip" and renamed["description"] == "d"
    assert client.call("DELETE", f"/connections/{conn}").status_code == 200
    assert client.call("GET", f"/connections/{conn}").status_code == 404


def test_primary_key_cannot_change(client, conn):
    answer = client.call("PUT", f"/connections/{conn}", {"primary_key": "email"})
    assert answer.status_code == 400 and "primary_key" in answer.json()["detail"]


@pytest.mark.parametrize("body", [{"name": "x"}, {"primary_key": "id"}, {"name": 1, "primary_key": "id"}])
def test_create_without_name_or_primary_key_is_422(client, body):
    answer = client.call("POST", "/connections", body)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][0] == "body"


def test_malformed_and_unknown_connection_ids(client):
    assert client.call("GET", "/connections/not-a-uuid").status_code == 422
    assert client.call("GET", f"/connections/{uuid.uuid4()}").status_code == 404


def test_delete_removes_the_data_with_the_connection(client, conn):
    client.upload(conn, [{"customer_id": 1}])
    client.call("DELETE", f"/connections/{conn}")
    again = client.create()
    assert client.query(again, 1).status_code == 404


# -- upload --------------------------------------------------------------------------------
def test_uploaded_records_are_queryable_by_primary_key_as_string_or_number(client, conn):
    answer = client.upload(conn, [{"customer_id": 54490, "tier": "gold"}])
    assert answer.status_code == 200 and answer.json()["uploaded_records"] == 1
    assert client.query(conn, "54490").json() == {"data": {"customer_id": 54490, "tier": "gold"}}
    assert client.query(conn, 54490).status_code == 200


def test_rows_without_the_primary_key_are_400(client, conn):
    answer = client.upload(conn, [{"customer_id": 1}, {"tier": "x"}])
    assert answer.status_code == 400 and "item 1" in answer.json()["detail"]


def test_more_than_5000_rows_in_one_request_is_422(client, conn):
    answer = client.upload(conn, [{"customer_id": i} for i in range(5001)])
    assert answer.status_code == 422


def test_upload_replaces_the_whole_record(client, conn):
    client.upload(conn, [{"customer_id": 1, "tier": "gold", "city": "Lyon"}])
    client.upload(conn, [{"customer_id": 1, "tier": "silver"}])
    assert client.query(conn, 1).json()["data"] == {"customer_id": 1, "tier": "silver"}


def test_an_open_batch_is_invisible_until_its_last_request(client, conn):
    batch = str(uuid.uuid4())
    for start in (0, 5000):
        rows = [{"customer_id": i} for i in range(start, start + 5000)]
        assert client.upload(conn, rows, batch_uuid=batch, batch_completed=False).status_code == 200
    assert client.query(conn, 1).status_code == 404
    state = requests.get(f"{client.server.url}/_sandbox/state").json()
    assert state["connections"][conn]["open_batches"] == {batch: 10000}
    client.upload(conn, [{"customer_id": i} for i in range(10000, 12001)], batch_uuid=batch, batch_completed=True)
    assert client.query(conn, 1).status_code == 200 and client.query(conn, 12000).status_code == 200
    assert requests.get(f"{client.server.url}/_sandbox/state").json()["connections"][conn]["records"] == 12001


@pytest.mark.parametrize("ttl_field", ["ttl_seconds", "ttl"])
def test_uploaded_data_expires_after_its_ttl_on_the_sandbox_clock(client, conn, ttl_field):
    client.upload(conn, [{"customer_id": 1}], **{ttl_field: 60})
    client.upload(conn, [{"customer_id": 2}])  # no ttl: never expires
    client.advance(59)
    assert client.query(conn, 1).status_code == 200
    client.advance(2)
    assert client.query(conn, 1).status_code == 404
    assert client.query(conn, 2).status_code == 200


def test_uploading_to_an_api_connection_is_400(client, external_api):
    conn = client.create(external_api_details=api_details(external_api))
    assert client.upload(conn, [{"customer_id": 1}]).status_code == 400


# -- update and delete ---------------------------------------------------------------------
def test_update_replaces_records_and_sets_their_ttl(client, conn):
    client.upload(conn, [{"customer_id": 1, "tier": "gold", "city": "Lyon"}])
    answer = client.call("PUT", f"/connections/{conn}/update_data", [{"primary_key": 1, "data": {"tier": "silver"}, "ttl": 10}])
    assert answer.json() == {"status": "success", "updated_records": 1}
    assert client.query(conn, 1).json()["data"] == {"tier": "silver", "customer_id": 1}
    client.advance(11)
    assert client.query(conn, 1).status_code == 404


def test_update_of_an_unknown_key_is_400_and_changes_nothing(client, conn):
    client.upload(conn, [{"customer_id": 1, "tier": "gold"}])
    answer = client.call("PUT", f"/connections/{conn}/update_data",
                         [{"primary_key": 1, "data": {"tier": "x"}}, {"primary_key": 2, "data": {}}])
    assert answer.status_code == 400 and "2" in answer.json()["detail"]
    assert client.query(conn, 1).json()["data"]["tier"] == "gold"


def test_delete_by_primary_keys_counts_what_it_removed(client, conn):
    client.upload(conn, [{"customer_id": k} for k in ("4942985", 2, "1e6bbf91")])
    answer = client.call("POST", f"/connections/{conn}/delete_data", {"primary_keys": ["4942985", "2", "1e6bbf91", "zz"]})
    assert answer.json() == {"status": "success", "deleted_records": 3}
    assert client.query(conn, 2).status_code == 404


def test_delete_with_a_malformed_body_is_422(client, conn):
    assert client.call("POST", f"/connections/{conn}/delete_data", {"keys": [1]}).status_code == 422


# -- query, batch query, schema ------------------------------------------------------------
def test_batch_query_answers_each_query_in_order(client, conn):
    client.upload(conn, [{"customer_id": 1, "tier": "gold"}])
    answer = client.call("POST", f"/connections/{conn}/api_batch_query", {"queries": [{"primary_key": 1}, {"primary_key": 9}]})
    results = answer.json()["results"]
    assert results[0] == {"data": {"customer_id": 1, "tier": "gold"}} and "error" in results[1]


def test_schema_is_derived_from_the_stored_records(client, conn):
    client.upload(conn, [{"customer_id": 1, "spend": 2.5, "vip": True}, {"customer_id": "a", "spend": 3.0}])
    schema = client.call("GET", f"/connections/{conn}/schema").json()
    assert schema["primary_key"] == "customer_id" and schema["record_count"] == 2
    assert schema["fields"] == {"customer_id": ["integer", "string"], "spend": "number", "vip": "boolean"}


# -- API-based connections -----------------------------------------------------------------
class ExternalApi:
    """A loopback stand-in for a retailer's API, counting calls and able to fail."""

    def __init__(self):
        self.calls, self.fail_next = [], 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.calls.append({"path": self.path, "headers": dict(self.headers)})
                if outer.fail_next:
                    outer.fail_next -= 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"stock": 7, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def external_api():
    api = ExternalApi()
    yield api
    api.httpd.shutdown()


def api_details(api, **overrides):
    return {"url": api.url + "/stock?sku={sku}", "http_method": "GET", "headers": {"x-store": "{store}"},
            "ttl": 30, "timeout": 2, "retries": 1, "is_batch_endpoint": False,
            "sample_placeholder_values": {"sku": "S1", "store": "paris"}, **overrides}


def test_creating_an_api_connection_makes_a_test_call_with_the_samples(client, external_api):
    conn = client.create(external_api_details=api_details(external_api))
    assert external_api.calls[0]["path"] == "/stock?sku=S1" and external_api.calls[0]["headers"]["x-store"] == "paris"
    assert client.call("GET", f"/connections/{conn}").json()["type"] == "api"


def test_a_placeholder_without_a_sample_value_is_refused_before_any_call(client, external_api):
    details = api_details(external_api, sample_placeholder_values={"sku": "S1"})
    answer = client.call("POST", "/connections", {"name": "n", "primary_key": "sku", "external_api_details": details})
    assert answer.status_code == 400 and "store" in answer.json()["detail"]
    assert external_api.calls == []


def test_a_failing_test_call_refuses_the_connection(client, external_api):
    external_api.fail_next = 5
    answer = client.call("POST", "/connections", {"name": "n", "primary_key": "sku",
                                                  "external_api_details": api_details(external_api)})
    assert answer.status_code == 400 and "503" in answer.json()["detail"]
    assert len(external_api.calls) == 2  # the call and its one retry


def test_query_fills_placeholders_and_caches_for_the_ttl(client, external_api):
    conn = client.create(external_api_details=api_details(external_api))
    query = {"placeholder_values": {"sku": "S9", "store": "lyon"}}
    first = client.call("POST", f"/connections/{conn}/query", query).json()
    assert first == {"data": {"stock": 7, "path": "/stock?sku=S9"}}
    client.call("POST", f"/connections/{conn}/query", query)
    assert len(external_api.calls) == 2  # the test call and one fetch; the second query was cached
    client.advance(31)
    client.call("POST", f"/connections/{conn}/query", query)
    assert len(external_api.calls) == 3


def test_ttl_zero_fetches_on_every_query(client, external_api):
    conn = client.create(external_api_details=api_details(external_api, ttl=0))
    query = {"placeholder_values": {"sku": "S9", "store": "lyon"}}
    for _ in range(3):
        client.call("POST", f"/connections/{conn}/query", query)
    assert len(external_api.calls) == 4


def test_query_retries_a_failing_external_api(client, external_api):
    conn = client.create(external_api_details=api_details(external_api, ttl=0))
    external_api.fail_next = 1
    answer = client.call("POST", f"/connections/{conn}/query", {"placeholder_values": {"sku": "S1", "store": "x"}})
    assert answer.status_code == 200
    external_api.fail_next = 2
    answer = client.call("POST", f"/connections/{conn}/query", {"placeholder_values": {"sku": "S1", "store": "x"}})
    assert answer.status_code == 502


def test_batch_query_of_an_api_connection_calls_once_per_query(client, external_api):
    conn = client.create(external_api_details=api_details(external_api, ttl=0))
    queries = [{"placeholder_values": {"sku": s, "store": "x"}} for s in ("A", "B")] + [{"placeholder_values": {}}]
    results = client.call("POST", f"/connections/{conn}/api_batch_query", {"queries": queries}).json()["results"]
    assert [r.get("data", {}).get("path") for r in results[:2]] == ["/stock?sku=A", "/stock?sku=B"]
    assert "placeholder" in results[2]["error"]
