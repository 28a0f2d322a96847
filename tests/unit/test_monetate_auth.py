"""The Monetate token provider against the Monetate sandbox."""

import threading

import pytest
import requests
from cryptography.hazmat.primitives import serialization

from martech.http import make_session
from martech.monetate_auth import (
    KeyRevoked,
    MonetateAuthError,
    MonetateTokenProvider,
    load_credentials,
)
from martech.settings import Settings
from sandbox.keys import generate_key_pair
from sandbox.testing import MONETATE_USER


class SecretStore:
    """Stands in for Secrets Manager behind Powertools' cache: counts reads, can rotate."""

    def __init__(self, secret):
        self.secret, self.cached, self.reads, self.forced = secret, secret, 0, 0

    def fetch(self, name, force, max_age):
        self.reads += 1
        if force:
            self.forced += 1
            self.cached = self.secret
        return self.cached


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now


def settings_for(server, **extra):
    return Settings(monetate_auth_url=f"{server.url}/api/auth/v0/refresh/", monetate_secret_name="monetate",
                    http_backoff_factor=0.01, **extra)


@pytest.fixture
def secret(monetate_key):
    return SecretStore({"username": MONETATE_USER, "private_key": monetate_key.private_pem})


def refresh_calls(server):
    return server.app.stats()["by_route"].get("GET /api/auth/v0/refresh/", 0)


def provider(server, secret, clock=None, **extra):
    settings = settings_for(server, **extra)
    kwargs = {"clock": clock} if clock else {}
    return MonetateTokenProvider(settings, make_session(settings), fetch_secret=secret.fetch, **kwargs)


def test_ten_thousand_warm_invocations_make_one_auth_call(monetate_sandbox, secret):
    tokens = provider(monetate_sandbox, secret)
    seen = {tokens.token() for _ in range(10_000)}
    assert len(seen) == 1 and refresh_calls(monetate_sandbox) == 1 and tokens.refreshes == 1


def test_the_token_is_refreshed_a_margin_before_it_expires(monetate_sandbox, secret):
    clock = Clock()
    tokens = provider(monetate_sandbox, secret, clock=clock, monetate_token_ttl=600, monetate_token_margin=60)
    first = tokens.token()
    expires_at = tokens._expires_at
    clock.now = expires_at - 61
    assert tokens.token() == first
    clock.now = expires_at - 59
    assert tokens.token() != first and refresh_calls(monetate_sandbox) == 2


def test_threads_waiting_for_a_token_share_one_refresh(monetate_sandbox, secret):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"latency": 0.2})
    tokens = provider(monetate_sandbox, secret)
    results, barrier = [], threading.Barrier(16)

    def ask():
        barrier.wait()
        results.append(tokens.token())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and refresh_calls(monetate_sandbox) == 1


def test_a_401_rereads_the_secret_past_the_cache_to_pick_up_a_rotated_key(monetate_sandbox, secret):
    private_pem, public_pem = generate_key_pair()
    monetate_sandbox.app.register_key(MONETATE_USER, public_pem)
    old_key = secret.cached["private_key"]
    secret.cached = {"username": MONETATE_USER, "private_key": generate_key_pair()[0]}  # stale and unknown
    secret.secret = {"username": MONETATE_USER, "private_key": private_pem}  # rotated in Secrets Manager
    assert old_key != private_pem
    tokens = provider(monetate_sandbox, secret)
    assert tokens.token()
    assert secret.forced == 1 and refresh_calls(monetate_sandbox) == 2


def test_a_secret_put_right_since_it_was_cached_is_read_again_at_once(monetate_sandbox, secret):
    secret.cached = {"username": MONETATE_USER}  # cached while it lacked its key
    assert provider(monetate_sandbox, secret).token()
    assert secret.forced == 1 and refresh_calls(monetate_sandbox) == 1


def test_a_secret_still_malformed_when_read_again_is_a_clear_error_after_one_more_read(monetate_sandbox, secret):
    secret.secret = secret.cached = {"username": MONETATE_USER, "private_key": "not a key"}
    with pytest.raises(MonetateAuthError, match="private_key is no PEM key"):
        provider(monetate_sandbox, secret).token()
    assert (secret.reads, secret.forced, refresh_calls(monetate_sandbox)) == (2, 1, 0)


def test_credentials_monetate_refuses_twice_raise_a_clear_error(monetate_sandbox, secret):
    secret.secret = secret.cached = {"username": "api-9-nobody", "private_key": secret.secret["private_key"]}
    with pytest.raises(MonetateAuthError, match="api-9-nobody.*401"):
        provider(monetate_sandbox, secret).token()
    assert refresh_calls(monetate_sandbox) == 2


def test_a_deactivated_key_stops_with_key_revoked_and_no_retry_storm(monetate_sandbox, secret):
    monetate_sandbox.app.auth.set_active("key-1", False)
    with pytest.raises(KeyRevoked):
        provider(monetate_sandbox, secret).token()
    assert refresh_calls(monetate_sandbox) == 1


def test_auth_answers_of_500_and_429_are_retried(monetate_sandbox, secret):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"script": ["500", "429", "503"]})
    assert provider(monetate_sandbox, secret).token()
    assert monetate_sandbox.app.stats()["by_status"] == {"500": 1, "429": 1, "503": 1, "200": 1}


@pytest.mark.parametrize("algorithm", ["RS384", "RS512"])
def test_the_secret_can_choose_the_algorithm(monetate_sandbox, secret, algorithm):
    secret.secret["algorithm"] = algorithm
    assert provider(monetate_sandbox, secret).token()


def test_traditional_rsa_pem_private_keys_are_accepted(monetate_sandbox, monetate_key, secret):
    key = serialization.load_pem_private_key(monetate_key.private_pem.encode(), None)
    traditional = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode()
    assert "BEGIN RSA PRIVATE KEY" in traditional
    secret.secret = secret.cached = {"username": MONETATE_USER, "private_key": traditional}
    assert provider(monetate_sandbox, secret).token()


def test_the_private_key_is_parsed_once_per_secret_value(monetate_key):
    secret = {"username": MONETATE_USER, "private_key": monetate_key.private_pem}
    assert load_credentials(secret).private_key is load_credentials(dict(secret)).private_key


@pytest.mark.parametrize("secret", [
    "not json", {"username": "u"}, {"private_key": "k"}, {"username": "u", "private_key": "k", "algorithm": "HS256"},
    {"username": "u", "private_key": "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n"},
])
def test_malformed_secrets_say_what_is_wrong_without_showing_the_key(secret):
    with pytest.raises(MonetateAuthError) as raised:
        load_credentials(secret)
    assert "not base64" not in str(raised.value) and "BEGIN" not in str(raised.value)


@pytest.mark.parametrize("kept_as", [
    lambda pem: pem.replace("\n", "\\n"),  # each newline as the two characters \n: JSON escaped twice
    lambda pem: pem.replace("\n", " "),  # its lines joined by spaces, as pasted into a one-line field
    lambda pem: pem.replace("\n", ""),  # joined with nothing between them
    lambda pem: "  " + pem.replace("\n", "\r\n") + "\n\n",  # Windows line ends, blank space around it
])
def test_a_private_key_whose_lines_a_secret_editor_mangled_is_read_as_written(monetate_sandbox, monetate_key, secret,
                                                                             kept_as):
    secret.secret = secret.cached = {"username": MONETATE_USER, "private_key": kept_as(monetate_key.private_pem)}
    assert load_credentials(secret.secret).private_key.private_numbers() == \
        serialization.load_pem_private_key(monetate_key.private_pem.encode(), None).private_numbers()
    assert provider(monetate_sandbox, secret).token()


def test_a_key_that_cannot_sign_is_refused_saying_what_it_is_without_showing_it(monetate_key):
    key = serialization.load_pem_private_key(monetate_key.private_pem.encode(), None)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"secret")).decode()
    traditional_encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                              serialization.BestAvailableEncryption(b"secret")).decode()
    for pem, said in ((public, "is a PUBLIC KEY block, not a private key: the secret holds the private key, and"
                               " Monetate the public one that goes with it"),
                      (encrypted, "is encrypted: store it unencrypted (openssl pkcs8 -topk8 -nocrypt -in key.pem)"),
                      (traditional_encrypted, "is encrypted: store it unencrypted"),
                      ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "is no PEM key: it must run from -----BEGIN PRIVATE KEY-----"
                                                          " to -----END PRIVATE KEY-----")):
        with pytest.raises(MonetateAuthError) as raised:
            load_credentials({"username": MONETATE_USER, "private_key": pem})
        assert str(raised.value).startswith(f"the Monetate secret's private_key {said}"), str(raised.value)
        body = "".join(pem.splitlines()[1:-1]) or pem
        assert body[:20] not in str(raised.value)


def test_a_username_copied_with_a_line_break_after_it_is_signed_without(monetate_sandbox, secret):
    secret.secret = secret.cached = {**secret.secret, "username": f"{MONETATE_USER}\n"}
    assert load_credentials(secret.secret).username == MONETATE_USER
    assert provider(monetate_sandbox, secret).token()
