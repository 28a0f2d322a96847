"""Webhook calls made again with an Idempotency-Key: what is kept, given again or refused."""

import json

import boto3
import pytest
from moto import mock_aws

from martech.repeated_calls import MAX_KEPT_BYTES, RepeatedCalls
from martech.settings import Settings

TABLE = "idempotency"


@pytest.fixture
def replays(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # a local stack started earlier may have set it
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName=TABLE, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        yield RepeatedCalls(Settings(idempotency_table=TABLE, webhook_replay_hours=1))


class Context:
    """As Lambda passes it: Powertools sets an in-progress call's expiry by the time the invocation has left."""

    def get_remaining_time_in_millis(self):
        return 29_000


CONTEXT = Context()


class Api:
    """A resolver that answers with ``status`` and counts its calls; ``during`` runs mid-answer."""

    def __init__(self, status=200, body="{}", during=None):
        self.status, self.body, self.during, self.calls = status, body, during, 0

    def resolve(self, event, context):
        self.calls += 1
        if self.during:
            self.during()
        return {"statusCode": self.status, "headers": {"Content-Type": "application/json"}, "body": self.body}


def event(body='{"records": []}', method="POST", **headers):
    return {"httpMethod": method, "path": "/monetate/customers/records", "headers": headers, "body": body}


def test_the_header_is_found_whatever_its_case_and_the_answer_comes_back_as_it_was(replays):
    api = Api(body=json.dumps({"accepted": 3}))
    first = replays.resolve(api, event(**{"idempotency-key": "k1"}), CONTEXT)
    again = replays.resolve(api, event(**{"IDEMPOTENCY-KEY": "k1"}), CONTEXT)
    assert api.calls == 1 and again["body"] == first["body"] == '{"accepted": 3}'
    assert again["headers"] == {"Content-Type": "application/json", "Idempotency-Replayed": "true"}


def test_without_a_key_or_for_a_get_every_call_is_answered_anew(replays):
    api = Api()
    for _ in range(2):
        replays.resolve(api, event(), CONTEXT)
        replays.resolve(api, event(method="GET", **{"Idempotency-Key": "k2"}), CONTEXT)
    assert api.calls == 4


def test_a_key_whose_first_call_is_still_being_answered_is_refused_with_409(replays):
    nested = {}
    api = Api(during=lambda: nested.setdefault("answer", replays.resolve(Api(), event(**{"Idempotency-Key": "k3"}), CONTEXT)))
    assert replays.resolve(api, event(**{"Idempotency-Key": "k3"}), CONTEXT)["statusCode"] == 200
    assert nested["answer"]["statusCode"] == 409 and "still being answered" in nested["answer"]["body"]


def test_an_answer_too_big_to_keep_is_given_but_not_kept(replays):
    import os
    big = json.dumps({"noise": os.urandom(MAX_KEPT_BYTES).hex()})  # does not compress
    api = Api(body=big)
    assert replays.resolve(api, event(**{"Idempotency-Key": "k4"}), CONTEXT)["body"] == big
    assert replays.resolve(api, event(**{"Idempotency-Key": "k4"}), CONTEXT)["body"] == big and api.calls == 2


@pytest.mark.parametrize("body, kept", [
    ({"message": "Monetate is unavailable"}, False),  # nothing was tried: calling again does the work
    ({"accepted": 0, "not_sent": 2, "results": [{}, {}]}, False),  # nothing was sent
    ({"accepted": 1, "not_sent": 1, "results": [{}, {}]}, True),  # Monetate's shape, part sent
    ({"total": 5, "sent": 3, "not_sent": 2}, True),  # Mona's shape, part sent
])
def test_a_failed_answer_is_kept_only_when_the_call_sent_part_of_its_records(replays, body, kept):
    api = Api(status=503, body=json.dumps(body))
    for _ in range(2):
        answer = replays.resolve(api, event(**{"Idempotency-Key": "k-partial"}), CONTEXT)
        assert answer["statusCode"] == 503
    assert api.calls == (1 if kept else 2)
