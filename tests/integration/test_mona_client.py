"""Mona tokens and export against the Mona sandbox."""

import pytest
import requests

from martech.http import make_session
from martech.mona import FateUnknown, MonaAuthError, MonaClient, MonaTokens
from martech.settings import Settings


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


def tokens_for(server, secret, clock=None, **extra):
    settings = Settings(mona_secret_name="mona", mona_auth_url=f"{server.url}/identity/resources/auth/v1/api-token",
                        mona_export_url=f"{server.url}/export", http_backoff_factor=0.01, **extra)
    session = make_session(settings)
    tokens = MonaTokens(settings, session, fetch_secret=lambda name, force, age: secret, **({"clock": clock} if clock else {}))
    return settings, session, tokens


@pytest.fixture
def secret(mona_sandbox):
    creds = mona_sandbox.app.credentials()
    return {"api_key": creds["client_id"], "secret": creds["secret"]}


def auth_calls(server):
    routes = server.app.stats()["by_route"]
    return (routes.get("POST /identity/resources/auth/v1/api-token", 0),
            routes.get("POST /identity/resources/auth/v1/api-token/token/refresh", 0))


def test_a_secret_put_right_since_it_was_cached_is_taken_at_once(mona_sandbox, secret):
    reads = []

    def fetch(name, force, max_age):  # the cache holds the secret as it was before its api_key was put in
        reads.append(force)
        return secret if force else {"secret": secret["secret"]}

    settings, session, _ = tokens_for(mona_sandbox, secret)
    assert MonaTokens(settings, session, fetch_secret=fetch).token() and reads == [False, True]


def test_the_user_id_comes_from_the_tokens_tenant(mona_sandbox, secret):
    _, _, tokens = tokens_for(mona_sandbox, secret)
    tokens.token()
    assert tokens.user_id == mona_sandbox.app.settings.user_id


def test_a_token_is_reused_until_the_margin_then_refreshed_with_the_refresh_token(mona_sandbox, secret):
    clock = Clock()
    _, _, tokens = tokens_for(mona_sandbox, secret, clock, mona_token_margin=300)
    first = tokens.token()
    assert [tokens.token() for _ in range(1000)] == [first] * 1000
    clock.now += 4 * 3600 - 299
    assert tokens.token() != first
    assert auth_calls(mona_sandbox) == (1, 1)


def test_a_spent_refresh_token_falls_back_to_a_new_login(mona_sandbox, secret):
    clock = Clock()
    _, _, tokens = tokens_for(mona_sandbox, secret, clock)
    tokens.token()
    mona_sandbox.app.refresh_tokens.clear()  # the identity provider forgot it
    clock.now += 4 * 3600
    assert tokens.token()
    assert auth_calls(mona_sandbox) == (2, 1) and tokens.logins == 2


def test_a_401_from_export_logs_in_again_once(mona_sandbox, secret):
    settings, session, tokens = tokens_for(mona_sandbox, secret)
    client = MonaClient(settings, tokens, session)
    tokens.token()
    mona_sandbox.app.access_tokens.clear()  # every token the client holds is now refused
    result = client.export([{"arcClass": "a", "contextId": "c", "message": {"v": 1}}])
    assert result.failed == {} and tokens.logins == 2
    assert mona_sandbox.app.stats()["by_status"]["401"] == 1


def test_wrong_credentials_raise_a_clear_error(mona_sandbox):
    _, _, tokens = tokens_for(mona_sandbox, {"api_key": "nope", "secret": "nope"})
    with pytest.raises(MonaAuthError, match="401"):
        tokens.token()


def test_the_export_url_is_filled_with_the_user_id(mona_sandbox, secret):
    settings = Settings(mona_secret_name="m", mona_auth_url=f"{mona_sandbox.url}/identity/resources/auth/v1/api-token",
                        mona_export_url="https://incoming{user_id}.example/export")
    tokens = MonaTokens(settings, requests.Session(), fetch_secret=lambda *a: secret)
    client = MonaClient(settings, tokens)
    tokens.token()
    assert client.export_url() == f"https://incoming{mona_sandbox.app.settings.user_id}.example/export"


def _exports(server):
    return [e for e in server.app.received("/export") if e["method"] == "POST"]


def test_a_lost_answer_is_resent_when_every_message_overwrites(mona_sandbox, secret):
    settings, session, tokens = tokens_for(mona_sandbox, secret)
    client = MonaClient(settings, tokens, session)
    requests.put(f"{mona_sandbox.url}/_sandbox/faults", json={"script": ["drop-after"], "paths": "^/export"})
    assert client.export([{"arcClass": "a", "contextId": "c", "message": {"v": 1}}]).failed == {}
    assert len(_exports(mona_sandbox)) == 2


def test_a_lost_answer_with_added_values_is_not_resent(mona_sandbox, secret):
    settings, session, tokens = tokens_for(mona_sandbox, secret)
    client = MonaClient(settings, tokens, session)
    requests.put(f"{mona_sandbox.url}/_sandbox/faults", json={"script": ["drop-after"], "paths": "^/export"})
    with pytest.raises(FateUnknown):
        client.export([{"arcClass": "a", "contextId": "c", "message": {"v": 1}, "action": "ADD"}])
    assert len(_exports(mona_sandbox)) == 1


def test_keys_copied_with_a_line_break_or_spaces_around_them_are_used_without(mona_sandbox, secret):
    copied = {"api_key": f" {secret['api_key']}\n", "secret": f"{secret['secret']}\r\n", "user_id": ""}
    assert tokens_for(mona_sandbox, copied)[2].token()


@pytest.mark.parametrize("secret, said", [
    ({"api_key": "ab cd", "secret": "s"}, "the Mona secret's api_key holds a space or a control character within it"),
    ({"api_key": "a", "secret": "s\x00t"}, "the Mona secret's secret holds a space or a control character within it"),
    ({"api_key": "a", "secret": "  "}, "the Mona secret must be JSON with api_key and secret (and optionally user_id)"),
    ({"api_key": ["a"], "secret": "s"}, "the Mona secret must be JSON with api_key and secret (and optionally user_id)"),
])
def test_a_secret_no_key_could_be_is_refused_naming_the_field_never_its_value(mona_sandbox, secret, said):
    with pytest.raises(MonaAuthError) as refused:
        tokens_for(mona_sandbox, secret)[2].token()
    assert str(refused.value).startswith(said) and "ab cd" not in str(refused.value)
    assert auth_calls(mona_sandbox) == (0, 0)
