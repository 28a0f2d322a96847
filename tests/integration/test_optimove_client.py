"""The Optimove client against the sandbox: keys, retries, connection lookup."""

import requests

from martech.optimove import OptimoveClient, OptimoveError, OptimoveUnavailable, UnknownConnection
from martech.settings import Settings

import pytest


class Secret:
    def __init__(self, value):
        self.value, self.cached, self.forced = value, value, 0

    def fetch(self, name, force, max_age):
        if force:
            self.forced += 1
            self.cached = self.value
        return self.cached


def client_for(server, secret, **extra):
    settings = Settings(optimove_base_url=f"{server.url}/api/data-connections/v1", optimove_secret_name="optimove",
                        http_backoff_factor=0.01, **extra)
    return OptimoveClient(settings, fetch_secret=secret.fetch)


@pytest.fixture
def secret(optimove_sandbox):
    return Secret(optimove_sandbox.app.credentials())


def test_rotated_keys_are_read_past_the_cache_once(optimove_sandbox, secret):
    secret.cached = {"api_key": "old", "brand_key": "old"}
    assert client_for(optimove_sandbox, secret).connections() == []
    assert secret.forced == 1


def test_wrong_keys_end_in_a_clear_refusal(optimove_sandbox):
    bad = Secret({"api_key": "nope", "brand_key": "nope"})
    with pytest.raises(OptimoveError) as raised:
        client_for(optimove_sandbox, bad).connections()
    assert raised.value.status == 401 and bad.forced == 1


def test_a_secret_without_both_keys_is_refused_before_any_call(optimove_sandbox):
    with pytest.raises(OptimoveError, match="^the Optimove secret must be JSON with api_key and brand_key$"):
        client_for(optimove_sandbox, Secret({"api_key": "only"})).connections()
    assert optimove_sandbox.app.stats()["total"] == 0


def test_keys_copied_with_a_line_break_or_spaces_around_them_are_sent_without(optimove_sandbox, secret):
    keys = secret.value
    copied = Secret({"api_key": f"{keys['api_key']}\n", "brand_key": f"  {keys['brand_key']} "})
    assert client_for(optimove_sandbox, copied).connections() == [] and copied.forced == 0


def test_a_key_with_a_space_within_it_is_refused_naming_it_before_any_call_and_never_its_value(optimove_sandbox):
    with pytest.raises(OptimoveError) as refused:
        client_for(optimove_sandbox, Secret({"api_key": "key one", "brand_key": "b"})).connections()
    assert str(refused.value.detail) == ("the Optimove secret's api_key holds a space or a control character within it,"
                                         " which no key does: store the key alone")
    assert optimove_sandbox.app.stats()["total"] == 0


def test_a_secret_put_right_since_it_was_cached_is_taken_at_once(optimove_sandbox, secret):
    secret.cached = {"api_key": "only"}  # cached while it lacked its brand key
    assert client_for(optimove_sandbox, secret).connections() == []
    assert secret.forced == 1


def test_connections_resolve_by_uuid_or_name_and_a_new_one_is_found(optimove_sandbox, secret):
    client = client_for(optimove_sandbox, secret)
    assert client.connections() == []  # cached empty list
    created = client.call("POST", "/connections", {"name": "loyalty", "primary_key": "id"})
    assert client.resolve("loyalty")["data_connection_uuid"] == created["data_connection_uuid"]
    assert client.resolve(created["data_connection_uuid"])["name"] == "loyalty"
    with pytest.raises(UnknownConnection):
        client.resolve("nothing")


def test_persistent_5xx_is_unavailable_and_429_is_retried(optimove_sandbox, secret):
    client = client_for(optimove_sandbox, secret, http_max_attempts=3)
    requests.put(f"{optimove_sandbox.url}/_sandbox/faults", json={"script": ["429", "503"]})
    assert client.connections() == []
    requests.put(f"{optimove_sandbox.url}/_sandbox/faults", json={"rate_500": 1.0})
    with pytest.raises(OptimoveUnavailable):
        client.connections(fresh=True)


def test_creating_a_connection_is_not_resent_after_a_lost_answer(optimove_sandbox, secret):
    client = client_for(optimove_sandbox, secret)
    requests.put(f"{optimove_sandbox.url}/_sandbox/faults", json={"script": ["drop-after"]})
    with pytest.raises(OptimoveUnavailable):
        client.call("POST", "/connections", {"name": "once", "primary_key": "id"})
    assert len(optimove_sandbox.app.connections) == 1  # it was made once, and not made again
