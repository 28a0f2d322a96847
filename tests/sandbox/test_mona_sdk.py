"""The official mona-sdk client, unchanged, talks to the Mona sandbox through its
URL-override settings, and what it exports arrives merged."""

import requests
from mona_sdk import Client, MonaSingleMessage


def sdk_client(server):
    creds = server.app.credentials()
    return Client(
        api_key=creds["client_id"],
        secret=creds["secret"],
        override_rest_api_full_url=f"{server.url}/export",
        auth_api_token_url=f"{server.url}/identity/resources/auth/v1/api-token",
        refresh_token_url=f"{server.url}/identity/resources/auth/v1/api-token/token/refresh",
        raise_authentication_exceptions=True,
    )


def test_sdk_exports_a_batch_that_arrives_merged_by_context(mona_sandbox):
    client = sdk_client(mona_sandbox)
    result = client.send_events_batch([
        MonaSingleMessage(message={"browser": "chrome", "text_length": 50}, contextClass="orders", contextId="ID_123"),
        MonaSingleMessage(message={"country": "usa"}, contextClass="orders", contextId="ID_123",
                          exportTimestamp=1700000000),
        MonaSingleMessage(message={"browser": "safari"}, contextClass="orders", contextId="ID_124"),
    ])
    assert result == {"total": 3, "failed": 0, "sent": 3, "failure_reasons": {}}
    contexts = {c["contextId"]: c for c in requests.get(f"{mona_sandbox.url}/_sandbox/contexts").json()}
    assert contexts["ID_123"]["fields"] == {"browser": "chrome", "text_length": 50, "country": "usa"}
    assert contexts["ID_123"]["mainTime"] == 1700000000
    assert contexts["ID_124"]["fields"] == {"browser": "safari"}


def test_sdk_reads_per_message_failures_from_the_sandbox(mona_sandbox):
    client = sdk_client(mona_sandbox)
    result = client.send_events_batch([
        MonaSingleMessage(message={"a": 1}, contextClass="orders", contextId="ok"),
        MonaSingleMessage(message={"a": 1}, contextClass="orders", contextId="bad", action="MERGE"),
    ])
    assert result["failed"] == 1 and result["sent"] == 1
    assert "1" in result["failure_reasons"]


def test_sdk_single_event_with_add_action(mona_sandbox):
    client = sdk_client(mona_sandbox)
    assert client.send_event(MonaSingleMessage(message={"s": 1}, contextClass="orders", contextId="c"))
    assert client.send_event(MonaSingleMessage(message={"s": 2}, contextClass="orders", contextId="c", action="ADD"))
    ctx = requests.get(f"{mona_sandbox.url}/_sandbox/contexts/orders/c").json()
    assert ctx["fields"] == {"s": [1, 2]}
