"""Mona sandbox: api-token and refresh, /export validation, context merging by action."""

import time

import jwt
import pytest
import requests

AUTH = "/identity/resources/auth/v1/api-token"


def login(server):
    creds = server.app.credentials()
    answer = requests.post(f"{server.url}{AUTH}", json={"clientId": creds["client_id"], "secret": creds["secret"]})
    assert answer.status_code == 200, answer.text
    return answer.json()


def export(server, messages, token=None, user_id=None, path="/export", **extra):
    token = token or login(server)["accessToken"]
    body = {"userId": user_id or server.app.settings.user_id, "messages": messages, **extra}
    return requests.post(f"{server.url}{path}", json=body, headers={"Authorization": f"Bearer {token}"})


def context(server, arc_class, context_id):
    answer = requests.get(f"{server.url}/_sandbox/contexts/{arc_class}/{context_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def msg(context_id, fields, **extra):
    return {"arcClass": "orders", "contextId": context_id, "message": fields, **extra}


# -- auth ----------------------------------------------------------------------------------
def test_api_token_answers_a_jwt_whose_tenant_is_the_user_id(mona_sandbox):
    tokens = login(mona_sandbox)
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    assert claims["tenantId"] == mona_sandbox.app.settings.user_id
    assert tokens["expiresIn"] == 4 * 3600 and tokens["refreshToken"]


@pytest.mark.parametrize("body", [{"clientId": "x", "secret": "y"}, {}, "not an object"])
def test_bad_credentials_are_401_with_the_vendor_errors(mona_sandbox, body):
    answer = requests.post(f"{mona_sandbox.url}{AUTH}", json=body)
    assert answer.status_code == 401 and answer.json() == {"errors": ["Invalid authentication"]}


def test_refresh_rotates_the_refresh_token(mona_sandbox):
    first = login(mona_sandbox)
    url = f"{mona_sandbox.url}{AUTH}/token/refresh"
    refreshed = requests.post(url, json={"refreshToken": first["refreshToken"]})
    assert refreshed.status_code == 200 and refreshed.json()["accessToken"] != first["accessToken"]
    assert requests.post(url, json={"refreshToken": first["refreshToken"]}).status_code == 401


@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Token x"])
def test_export_without_a_valid_bearer_token_is_401(mona_sandbox, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = requests.post(f"{mona_sandbox.url}/export", json={"userId": "u", "messages": []}, headers=headers)
    assert answer.status_code == 401 and answer.json() == {"errors": ["Invalid authentication"]}


def test_access_tokens_expire_on_the_sandbox_clock(mona_sandbox):
    token = login(mona_sandbox)["accessToken"]
    requests.post(f"{mona_sandbox.url}/_sandbox/clock", json={"advance": 4 * 3600 + 1})
    assert export(mona_sandbox, [msg("c1", {"a": 1})], token=token).status_code == 401


def test_token_ttl_fault_kills_tokens_early(mona_sandbox):
    requests.put(f"{mona_sandbox.url}/_sandbox/faults", json={"token_ttl": 10})
    token = login(mona_sandbox)["accessToken"]
    requests.post(f"{mona_sandbox.url}/_sandbox/clock", json={"advance": 11})
    assert export(mona_sandbox, [msg("c1", {"a": 1})], token=token).status_code == 401


# -- request validation ------------------------------------------------------------------------
def test_user_id_must_match_the_token(mona_sandbox):
    answer = export(mona_sandbox, [msg("c1", {"a": 1})], user_id="someone-else")
    assert answer.status_code == 400 and "userId" in answer.json()["topLevelError"]


@pytest.mark.parametrize("messages, extra", [([], {}), ({"a": 1}, {}), ([msg("c1", {"a": 1})], {"defaultAction": "MERGE"})],
                         ids=["no-messages", "messages-not-list", "default-action"])
def test_malformed_requests_get_a_top_level_error(mona_sandbox, messages, extra):
    answer = export(mona_sandbox, messages, **extra)
    assert answer.status_code == 400 and answer.json()["topLevelError"]


def test_nan_is_not_json_and_is_refused_whole(mona_sandbox):
    token = login(mona_sandbox)["accessToken"]
    user = mona_sandbox.app.settings.user_id
    body = f'{{"userId": "{user}", "messages": [{{"arcClass": "a", "message": {{"x": NaN}}}}]}}'
    answer = requests.post(f"{mona_sandbox.url}/export", data=body,
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert answer.status_code == 400 and "topLevelError" in answer.json()


@pytest.mark.parametrize(
    "bad",
    [
        {"contextId": "x", "message": {"a": 1}},  # no arcClass
        {"arcClass": "bad class!", "message": {"a": 1}},
        {"arcClass": "orders", "message": "text"},
        {"arcClass": "orders", "message": {"a": 1}, "action": "MERGE"},
        {"arcClass": "orders", "message": {"a": 1}, "exportTimestamp": 12345},
        {"arcClass": "orders", "message": {"a": 1}, "exportTimestamp": "last tuesday"},
        {"arcClass": "orders", "message": {"a": 1}, "contextId": ["list"]},
    ],
    ids=["no-arc-class", "arc-class-chars", "message-not-object", "action", "timestamp-digits", "timestamp-text",
         "context-id-type"],
)
def test_bad_messages_fail_alone_with_reasons_and_the_rest_are_kept(mona_sandbox, bad):
    answer = export(mona_sandbox, [msg("good", {"a": 1}), bad])
    assert answer.status_code == 400
    body = answer.json()
    assert body["failed"] == 1 and list(body["failure_reasons"]) == ["1"]
    assert body["failure_reasons"]["1"]["reasons"]
    assert context(mona_sandbox, "orders", "good")["fields"] == {"a": 1}


def test_a_clean_export_answers_200_with_nothing_failed(mona_sandbox):
    answer = export(mona_sandbox, [msg("c1", {"a": 1})])
    assert answer.status_code == 200 and answer.json()["failed"] == 0


def test_the_sdk_sends_nulls_for_unset_fields_and_they_are_accepted(mona_sandbox):
    message = {"arcClass": "orders", "contextId": None, "action": None, "exportTimestamp": None,
               "sendTimestamp": None, "sampleConfigName": None, "message": {"a": 1}}
    assert export(mona_sandbox, [message]).status_code == 200
    assert len(requests.get(f"{mona_sandbox.url}/_sandbox/contexts").json()) == 1  # a generated contextId


# -- merging -------------------------------------------------------------------------------
def test_messages_with_one_context_id_merge_and_overwrite_replaces_sent_fields(mona_sandbox):
    export(mona_sandbox, [msg("c1", {"browser": "chrome", "len": 50}), msg("c1", {"country": "usa"})])
    export(mona_sandbox, [msg("c1", {"len": 60})])
    ctx = context(mona_sandbox, "orders", "c1")
    assert ctx["fields"] == {"browser": "chrome", "len": 60, "country": "usa"} and ctx["messages"] == 3


def test_add_appends_values_into_a_list(mona_sandbox):
    export(mona_sandbox, [msg("c1", {"score": 1}), msg("c1", {"score": 2}, action="ADD"),
                          msg("c1", {"score": [3, 4]}, action="ADD")])
    assert context(mona_sandbox, "orders", "c1")["fields"] == {"score": [1, 2, 3, 4]}


def test_new_resets_the_context_to_the_message(mona_sandbox):
    export(mona_sandbox, [msg("c1", {"a": 1, "b": 2}), msg("c1", {"c": 3}, action="NEW")])
    assert context(mona_sandbox, "orders", "c1")["fields"] == {"c": 3}


def test_default_action_applies_to_messages_without_one(mona_sandbox):
    export(mona_sandbox, [msg("c1", {"s": 1}), msg("c1", {"s": 2})], defaultAction="ADD")
    assert context(mona_sandbox, "orders", "c1")["fields"] == {"s": [1, 2]}


@pytest.mark.parametrize("stamp, expected", [
    (1700000000, 1700000000.0),
    (1700000000.5, 1700000000.5),
    (1700000000123, 1700000000.123),
    ("2023-11-14T22:13:20Z", 1700000000.0),
])
def test_timestamps_in_seconds_milliseconds_or_iso_set_the_main_time(mona_sandbox, stamp, expected):
    export(mona_sandbox, [msg("c1", {"a": 1}, exportTimestamp=stamp)])
    assert context(mona_sandbox, "orders", "c1")["mainTime"] == pytest.approx(expected)


def test_send_timestamp_is_accepted_like_export_timestamp(mona_sandbox):
    export(mona_sandbox, [msg("c1", {"a": 1}, sendTimestamp=1700000000)])
    assert context(mona_sandbox, "orders", "c1")["mainTime"] == 1700000000


def test_without_a_timestamp_the_main_time_is_the_first_arrival(mona_sandbox):
    before = time.time()
    export(mona_sandbox, [msg("c1", {"a": 1})])
    export(mona_sandbox, [msg("c1", {"b": 1})])
    assert before - 1 <= context(mona_sandbox, "orders", "c1")["mainTime"] <= time.time()


def test_unauthenticated_mona_export_path_takes_the_configured_user(mona_sandbox):
    body = {"userId": mona_sandbox.app.settings.user_id, "messages": [msg("c1", {"a": 1})]}
    assert requests.post(f"{mona_sandbox.url}/monaExport", json=body).status_code == 200
