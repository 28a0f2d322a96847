"""The Monetate client against the sandbox: batches too large to send are split, not lost; a lost
answer is resent only when that cannot write rows twice."""

import json

import pytest
import requests

from martech.http import make_session
from martech.monetate import FateUnknown, MonetateClient, TransientFailure
from martech.monetate_auth import MonetateTokenProvider
from martech.monetate_delivery import post_batch
from martech.monetate_rows import Field, Schema
from martech.settings import Settings
from sandbox.testing import MONETATE_USER
from tests.sandbox.monetate_helpers import CUSTOMERS


def client_for(server, key, **extra):
    settings = Settings(monetate_auth_url=f"{server.url}/api/auth/v0/refresh/", monetate_secret_name="monetate",
                        monetate_data_url=f"{server.url}/api/data/v1/sandbox/production", **extra)
    session = make_session(settings)
    secret = {"username": MONETATE_USER, "private_key": key.private_pem}
    return MonetateClient(settings, MonetateTokenProvider(settings, session, fetch_secret=lambda *a: secret), session)


def test_a_batch_over_the_byte_limit_is_split_until_it_fits(monetate_sandbox, monetate_key):
    monetate_sandbox.app.create_schema(CUSTOMERS)
    client = client_for(monetate_sandbox, monetate_key, monetate_batch_bytes=3000)
    schema = client.schema("customers")
    batch = [(i + 2, {"customer_id": f"c{i}", "tier": "t" * 100}, None) for i in range(64)]
    outcome = post_batch(client, schema, batch)
    assert outcome.sent == 64 and not outcome.refused
    posts = [e for e in monetate_sandbox.app.received("/data/customers/") if e["method"] == "POST"]
    assert len(posts) > 1 and all(len(json.dumps(p["body"])) <= 3000 for p in posts)
    assert monetate_sandbox.app.state()["schemas"]["customers"] == 64


def test_rows_monetate_refuses_are_set_aside_and_the_rest_resent(monetate_sandbox, monetate_key):
    schema_body = {**CUSTOMERS, "fields": {**CUSTOMERS["fields"], "code": {"data_type": "STRING"}}}
    monetate_sandbox.app.create_schema(schema_body)
    client = client_for(monetate_sandbox, monetate_key)
    schema = client.schema("customers")
    # The sandbox refuses a STRING with inner leading whitespace our converter would have trimmed.
    batch = [(2, {"customer_id": "c1"}, "r1"), (3, {"customer_id": "c2", "code": " x"}, "r2"), (4, {"customer_id": "c3"}, "r3")]
    outcome = post_batch(client, schema, batch)
    assert outcome.sent == 2
    assert outcome.refused == [(3, ["code: must not have leading or trailing whitespace"], "r2")]


def _post_schema(unique_key: bool):
    fields = {"customer_id": {"data_type": "STRING", "identifier": True, "unique_key": unique_key}}
    return Schema("customers", {n: Field(n, f["data_type"], True, f["unique_key"]) for n, f in fields.items()})


def test_a_lost_answer_is_resent_when_the_schema_has_a_unique_key(monetate_sandbox, monetate_key):
    monetate_sandbox.app.create_schema(CUSTOMERS)
    client = client_for(monetate_sandbox, monetate_key, http_backoff_factor=0.01)
    schema = client.schema("customers")
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"script": ["drop-after"], "paths": "/data/"})
    client.post_rows(schema, [{"customer_id": "c1"}])
    posts = [e for e in monetate_sandbox.app.received("/data/customers/") if e["method"] == "POST"]
    assert len(posts) == 2 and monetate_sandbox.app.state()["schemas"]["customers"] == 1


def test_a_lost_answer_without_a_unique_key_is_not_resent(monetate_sandbox, monetate_key):
    client = client_for(monetate_sandbox, monetate_key, http_backoff_factor=0.01)
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"script": ["drop-after"], "paths": "/data/"})
    with pytest.raises(FateUnknown):
        client.post_rows(_post_schema(unique_key=False), [{"customer_id": "c1"}])
    assert len([e for e in monetate_sandbox.app.received("/data/") if e["method"] == "POST"]) == 1


def test_a_refused_connection_is_transient_even_without_a_unique_key(monetate_sandbox, monetate_key):
    from sandbox.local.stack import free_port

    client = client_for(monetate_sandbox, monetate_key, http_backoff_factor=0.01, http_max_attempts=2)
    client.base = f"http://127.0.0.1:{free_port()}/api/data/v1/sandbox/production"  # nothing listens: nothing sent
    with pytest.raises(TransientFailure, match="NewConnectionError"):
        client.post_rows(_post_schema(unique_key=False), [{"customer_id": "c1"}])
