"""Monetate Auth API: JWT refresh and token checks, every documented status."""

import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from sandbox.keys import generate_key_pair
from sandbox.testing import MONETATE_USER, KeyPair
from tests.sandbox.monetate_helpers import AUTH, DATA, token


HMAC_SECRET = "a-shared-secret-of-at-least-32-bytes"


def refresh(server, authorization, **params):
    headers = {"Authorization": authorization} if authorization is not None else {}
    return requests.get(f"{server.url}{AUTH}", headers=headers, params=params)


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512"])
def test_refresh_answers_a_token_for_a_jwt_signed_with_an_active_key(monetate_sandbox, monetate_key, algorithm):
    answer = refresh(monetate_sandbox, f"JWT {monetate_key.jwt(algorithm=algorithm)}")
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert data["expires_in"] == 3600
    assert data["expires_at"] == pytest.approx(data["issued_at"] + 3600)
    assert answer.json()["meta"] == {"code": 200, "errors": [], "warnings": []}


def test_ttl_is_honoured_and_announced(monetate_sandbox, monetate_key):
    data = refresh(monetate_sandbox, f"JWT {monetate_key.jwt()}", ttl=600).json()["data"]
    assert data["expires_in"] == 600


@pytest.mark.parametrize("ttl", ["599", "43201", "abc"])
def test_ttl_outside_600_to_43200_is_400(monetate_sandbox, monetate_key, ttl):
    answer = refresh(monetate_sandbox, f"JWT {monetate_key.jwt()}", ttl=ttl)
    assert answer.status_code == 400
    assert answer.json()["meta"]["errors"][0]["field"] == "ttl"


def test_pkcs1_public_keys_are_accepted_too(monetate_sandbox):
    private_pem, _ = generate_key_pair()
    private = serialization.load_pem_private_key(private_pem.encode(), None)
    pkcs1 = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    monetate_sandbox.app.register_key("api-2-pkcs1", pkcs1)
    assertion = KeyPair(private_pem, pkcs1).jwt("api-2-pkcs1")
    assert refresh(monetate_sandbox, f"JWT {assertion}").status_code == 200


def unsigned(claims):
    return jwt.encode(claims, None, algorithm="none")


@pytest.mark.parametrize(
    "make_header",
    [
        lambda key: None,  # no header
        lambda key: f"Bearer {key.jwt()}",  # another scheme
        lambda key: f"Token {key.jwt()}",
        lambda key: "JWT not-a-jwt",
        lambda key: f"JWT {jwt.encode({'username': MONETATE_USER, 'iat': int(time.time())}, HMAC_SECRET, algorithm='HS256')}",
        lambda key: f"JWT {unsigned({'username': MONETATE_USER, 'iat': int(time.time())})}",
        lambda key: f"JWT {key.jwt(username='api-9-unknown')}",
        lambda key: f"JWT {key.jwt(iat=time.time() - 120)}",  # stale iat
        lambda key: f"JWT {key.jwt(iat=time.time() + 120)}",  # iat from the future
        lambda key: f"JWT {jwt.encode({'username': MONETATE_USER}, key.private_pem, algorithm='RS256')}",  # no iat
        lambda key: f"JWT {jwt.encode({'iat': int(time.time())}, key.private_pem, algorithm='RS256')}",  # no username
        lambda key: f"JWT {KeyPair(*generate_key_pair()).jwt()}",  # signed by another key
    ],
    ids=["missing", "bearer", "token-scheme", "garbage", "hs256", "alg-none", "unknown-user", "stale-iat",
         "future-iat", "no-iat", "no-username", "wrong-key"],
)
def test_invalid_assertions_are_401(monetate_sandbox, monetate_key, make_header):
    answer = refresh(monetate_sandbox, make_header(monetate_key))
    assert answer.status_code == 401
    body = answer.json()
    assert body["meta"]["code"] == 401 and body["meta"]["errors"]


def test_iat_within_the_60_second_leeway_is_accepted(monetate_sandbox, monetate_key):
    assert refresh(monetate_sandbox, f"JWT {monetate_key.jwt(iat=time.time() - 50)}").status_code == 200


def test_deactivated_key_refuses_refresh_with_403_and_revokes_its_tokens(monetate_sandbox, monetate_key):
    live = token(monetate_sandbox, monetate_key)
    key_id = requests.get(f"{monetate_sandbox.url}/_sandbox/keys").json()[0]["key_id"]
    requests.post(f"{monetate_sandbox.url}/_sandbox/keys/{key_id}/deactivate")
    assert refresh(monetate_sandbox, f"JWT {monetate_key.jwt()}").status_code == 403
    answer = requests.get(f"{monetate_sandbox.url}{DATA}/schema/", headers={"Authorization": f"Token {live}"})
    assert answer.status_code == 403
    requests.post(f"{monetate_sandbox.url}/_sandbox/keys/{key_id}/activate")
    assert requests.get(f"{monetate_sandbox.url}{DATA}/schema/", headers={"Authorization": f"Token {live}"}).status_code == 200


def test_tokens_expire_on_the_sandbox_clock(monetate_sandbox, monetate_key):
    live = token(monetate_sandbox, monetate_key, ttl=600)
    headers = {"Authorization": f"Token {live}"}
    assert requests.get(f"{monetate_sandbox.url}{DATA}/schema/", headers=headers).status_code == 200
    requests.post(f"{monetate_sandbox.url}/_sandbox/clock", json={"advance": 601})
    assert requests.get(f"{monetate_sandbox.url}{DATA}/schema/", headers=headers).status_code == 401


def test_issuing_a_token_does_not_expire_earlier_ones(monetate_sandbox, monetate_key):
    first, second = token(monetate_sandbox, monetate_key), token(monetate_sandbox, monetate_key)
    for value in (first, second):
        assert requests.get(f"{monetate_sandbox.url}{DATA}/schema/", headers={"Authorization": f"Token {value}"}).ok


def test_token_ttl_fault_makes_tokens_die_before_their_announced_expiry(monetate_sandbox, monetate_key):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"token_ttl": 5})
    answer = refresh(monetate_sandbox, f"JWT {monetate_key.jwt()}")
    assert answer.json()["data"]["expires_in"] == 3600  # what the client is told
    headers = {"Authorization": f"Token {answer.json()['data']['token']}"}
    requests.post(f"{monetate_sandbox.url}/_sandbox/clock", json={"advance": 6})
    assert requests.get(f"{monetate_sandbox.url}{DATA}/schema/", headers=headers).status_code == 401


@pytest.mark.parametrize("authorization", [None, "Token nope", "JWT abc", "Bearer x"])
def test_data_calls_without_a_valid_token_are_401(monetate_sandbox, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    assert requests.get(f"{monetate_sandbox.url}{DATA}/schema/", headers=headers).status_code == 401


def test_a_token_is_bound_to_its_retailer(monetate_sandbox, monetate_key):
    headers = {"Authorization": f"Token {token(monetate_sandbox, monetate_key)}"}
    other = "/api/data/v1/someone-else/production/schema/"
    assert requests.get(f"{monetate_sandbox.url}{other}", headers=headers).status_code == 401
