"""Monetate Data API: schemas, row validation, unique-key upsert, spot checks, uploads."""

import copy

import pytest
import requests

from sandbox.monetate import MonetateSandbox, MonetateSettings
from sandbox.server import SandboxServer
from sandbox.testing import MONETATE_USER
from tests.sandbox.monetate_helpers import CUSTOMERS, DATA, auth_header, create_customers, post_rows


@pytest.fixture
def headers(monetate_sandbox, monetate_key):
    return auth_header(monetate_sandbox, monetate_key)


@pytest.fixture
def customers(monetate_sandbox, headers):
    return create_customers(monetate_sandbox, headers)


def records(server, schema="customers"):
    return requests.get(f"{server.url}/_sandbox/records/{schema}").json()


# -- schemas -------------------------------------------------------------------------------
def test_created_schema_is_listed_and_fetched_by_name(monetate_sandbox, headers, customers):
    assert customers["name"] == "customers" and customers["id"] >= 1 and customers["created_date"]
    listed = requests.get(f"{monetate_sandbox.url}{DATA}/schema/", headers=headers).json()
    assert [s["name"] for s in listed["data"]] == ["customers"] and listed["meta"]["count"] == 1
    one = requests.get(f"{monetate_sandbox.url}{DATA}/schema/customers/", headers=headers).json()["data"]
    assert one["fields"] == CUSTOMERS["fields"]


def test_schema_flags_add_row_count_and_latest_upload(monetate_sandbox, headers, customers):
    post_rows(monetate_sandbox, headers, [{"customer_id": "c1"}])
    one = requests.get(f"{monetate_sandbox.url}{DATA}/schema/customers/", params={"row_count": "true", "latest_upload": "true"},
                       headers=headers).json()["data"]
    assert one["row_count"] == 1 and one["latest_upload"]["status"] == "COMPLETE"


def test_unknown_schema_is_404(monetate_sandbox, headers):
    assert requests.get(f"{monetate_sandbox.url}{DATA}/schema/nope/", headers=headers).status_code == 404
    assert post_rows(monetate_sandbox, headers, [{"a": "b"}], schema="nope").status_code == 404


def broken(change):
    schema = copy.deepcopy(CUSTOMERS)
    change(schema)
    return schema


@pytest.mark.parametrize(
    "schema",
    [
        broken(lambda s: s.update(name="1starts_with_digit")),
        broken(lambda s: s.update(name="has-hyphen")),
        broken(lambda s: s.update(name="x" * 65)),
        broken(lambda s: s.update(type="spreadsheet")),
        broken(lambda s: s.update(fields={})),
        broken(lambda s: s["fields"]["tier"].update(identifier=True)),  # two identifiers
        broken(lambda s: s["fields"]["customer_id"].pop("identifier")),  # none
        broken(lambda s: s["fields"]["spend"].update(unique_key=True)),  # unique key must be STRING
        broken(lambda s: s["fields"]["tier"].update(data_type="TEXT")),
        broken(lambda s: s["fields"].update({f"f{i}": {"data_type": "STRING"} for i in range(40)})),
        broken(lambda s: s.update(type="event")),  # an event schema needs an event_time
    ],
    ids=["name-digit", "name-hyphen", "name-long", "type", "no-fields", "two-identifiers", "no-identifier",
         "unique-key-number", "data-type", "41-fields", "event-without-time"],
)
def test_invalid_schemas_are_400_with_the_reason(monetate_sandbox, headers, schema):
    answer = requests.post(f"{monetate_sandbox.url}{DATA}/schema/", json=schema, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["meta"]["errors"][0]["message"]


def test_a_schema_name_is_taken_once(monetate_sandbox, headers, customers):
    assert requests.post(f"{monetate_sandbox.url}{DATA}/schema/", json=CUSTOMERS, headers=headers).status_code == 400


def test_patch_adds_fields(monetate_sandbox, headers, customers):
    answer = requests.patch(f"{monetate_sandbox.url}{DATA}/schema/customers/",
                            json={"fields": {"city": {"data_type": "STRING"}}}, headers=headers)
    assert answer.status_code == 200 and "city" in answer.json()["data"]["fields"]
    assert post_rows(monetate_sandbox, headers, [{"customer_id": "c1", "city": "Lyon"}]).status_code == 201


def test_patch_sets_named_identifier(monetate_sandbox, headers, customers):
    answer = requests.patch(f"{monetate_sandbox.url}{DATA}/schema/customers/", json={"named_identifier": "email_hash"},
                            headers=headers)
    assert answer.status_code == 200 and answer.json()["data"]["named_identifier"] == "email_hash"


@pytest.mark.parametrize(
    "body",
    [
        {"fields": {"x": {"data_type": "STRING"}}, "named_identifier": "y"},  # both
        {},  # neither
        {"fields": {"tier": {"data_type": "STRING"}}},  # existing field
        {"fields": {"x": {"data_type": "STRING", "identifier": True}}},
        {"named_identifier": "has space"},
    ],
    ids=["both", "neither", "existing-field", "second-identifier", "bad-named-identifier"],
)
def test_invalid_patches_are_400(monetate_sandbox, headers, customers, body):
    answer = requests.patch(f"{monetate_sandbox.url}{DATA}/schema/customers/", json=body, headers=headers)
    assert answer.status_code == 400


# -- rows ----------------------------------------------------------------------------------
GOOD = {"customer_id": "c1", "tier": "gold", "tags": "a,b", "spend": 12.5, "vip": True, "joined": "2024-05-01 10:00:00"}


def test_valid_rows_are_stored_and_echoed_with_201(monetate_sandbox, headers, customers):
    answer = post_rows(monetate_sandbox, headers, [GOOD])
    assert answer.status_code == 201
    assert answer.json()["data"]["schema_rows"] == [GOOD]
    assert records(monetate_sandbox) == [GOOD]


def test_absent_fields_are_stored_as_null(monetate_sandbox, headers, customers):
    post_rows(monetate_sandbox, headers, [{"customer_id": "c9"}])
    assert records(monetate_sandbox) == [{"customer_id": "c9", "tier": None, "tags": None, "spend": None, "vip": None,
                                          "joined": None}]


def test_unique_key_replaces_the_earlier_record(monetate_sandbox, headers, customers):
    post_rows(monetate_sandbox, headers, [{**GOOD, "tier": "silver"}])
    post_rows(monetate_sandbox, headers, [GOOD, {**GOOD, "customer_id": "c2"}])
    held = records(monetate_sandbox)
    assert len(held) == 2 and {r["tier"] for r in held} == {"gold"}


def test_without_a_unique_key_every_record_is_new(monetate_sandbox, headers):
    schema = copy.deepcopy(CUSTOMERS)
    schema["name"] = "visits"
    del schema["fields"]["customer_id"]["unique_key"]
    create_customers(monetate_sandbox, headers, schema)
    post_rows(monetate_sandbox, headers, [GOOD], schema="visits")
    post_rows(monetate_sandbox, headers, [GOOD], schema="visits")
    assert len(records(monetate_sandbox, "visits")) == 2


@pytest.mark.parametrize(
    "row, field",
    [
        ({**GOOD, "customer_id": " c1"}, "customer_id"),
        ({**GOOD, "tier": ""}, "tier"),
        ({**GOOD, "tags": ["a", "b"]}, "tags"),
        ({**GOOD, "spend": "12"}, "spend"),
        ({**GOOD, "spend": True}, "spend"),
        ({**GOOD, "vip": "yes"}, "vip"),
        ({**GOOD, "joined": "01/05/2024"}, "joined"),
        ({**GOOD, "unknown": 1}, "unknown"),
        ({k: v for k, v in GOOD.items() if k != "customer_id"}, "customer_id"),
        ({**GOOD, "customer_id": None}, "customer_id"),
    ],
    ids=["string-whitespace", "string-empty", "multi-string-list", "number-string", "number-bool", "boolean-string",
         "datetime-format", "unknown-field", "identifier-missing", "identifier-null"],
)
def test_one_bad_row_fails_the_request_with_row_field_and_message(monetate_sandbox, headers, customers, row, field):
    answer = post_rows(monetate_sandbox, headers, [GOOD, row])
    assert answer.status_code == 400
    errors = answer.json()["meta"]["errors"]
    assert errors and all(e["row"] == 1 for e in errors) and field in {e["field"] for e in errors}
    assert records(monetate_sandbox) == []  # nothing of the request was kept


@pytest.mark.parametrize("when", ["2024-05-01", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.123456+02:00",
                                  "2024-05-01 10:00"])
def test_iso_datetimes_with_t_or_space_are_accepted(monetate_sandbox, headers, customers, when):
    assert post_rows(monetate_sandbox, headers, [{**GOOD, "joined": when}]).status_code == 201


def test_partial_mode_keeps_the_good_rows_and_reports_the_bad(monetate_key):
    app = MonetateSandbox(MonetateSettings(reject_whole_request=False))
    app.register_key(MONETATE_USER, monetate_key.public_pem)
    with SandboxServer(app) as server:
        headers = auth_header(server, monetate_key)
        create_customers(server, headers)
        answer = post_rows(server, headers, [GOOD, {**GOOD, "customer_id": "c2", "vip": "no"}])
        assert answer.status_code == 201
        assert answer.json()["data"]["schema_rows"] == [GOOD]
        assert answer.json()["meta"]["errors"][0]["row"] == 1
        assert records(server) == [GOOD]


def test_more_rows_than_the_limit_is_400(monetate_sandbox, headers, customers):
    rows = [{"customer_id": f"c{i}"} for i in range(1001)]
    answer = post_rows(monetate_sandbox, headers, rows)
    assert answer.status_code == 400 and "1000" in answer.json()["meta"]["errors"][0]["message"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"rows": []}', b'{"schema_rows": {}}',
                                  b'{"schema_rows": [], "_sent_time": "yesterday"}'])
def test_malformed_bodies_are_400(monetate_sandbox, headers, customers, body):
    answer = requests.post(f"{monetate_sandbox.url}{DATA}/data/customers/", data=body,
                           headers={**headers, "Content-Type": "application/json"})
    assert answer.status_code == 400


def test_posting_needs_a_named_identifier(monetate_sandbox, headers):
    schema = {**CUSTOMERS, "name": "unnamed"}
    schema.pop("named_identifier")
    create_customers(monetate_sandbox, headers, schema)
    answer = post_rows(monetate_sandbox, headers, [GOOD], schema="unnamed")
    assert answer.status_code == 400 and answer.json()["meta"]["errors"][0]["field"] == "named_identifier"


def test_upload_history_lists_newest_first_with_statuses(monetate_sandbox, headers, customers):
    post_rows(monetate_sandbox, headers, [GOOD])
    post_rows(monetate_sandbox, headers, [{**GOOD, "vip": 1}])
    uploads = requests.get(f"{monetate_sandbox.url}{DATA}/upload/customers/", headers=headers).json()["data"]
    assert [u["status"] for u in uploads] == ["VALIDATION_ERROR", "COMPLETE"]
    assert uploads[0]["validation_errors"]


# -- spot check ----------------------------------------------------------------------------
def test_spot_check_finds_a_record_and_allows_one_request_a_second(monetate_sandbox, headers, customers):
    assert MonetateSettings().spot_check_interval == 1.0  # the documented limit
    monetate_sandbox.app.settings.spot_check_interval = 60  # a slow machine must not slip a second between calls
    post_rows(monetate_sandbox, headers, [GOOD])
    answer = requests.get(f"{monetate_sandbox.url}{DATA}/data/customers/", params={"id": "c1"}, headers=headers)
    assert answer.status_code == 200 and answer.json()["data"]["schema_rows"] == [GOOD]
    again = requests.get(f"{monetate_sandbox.url}{DATA}/data/customers/", params={"id": "c1"}, headers=headers)
    assert again.status_code == 429


def test_spot_check_of_a_missing_record_is_404_and_without_id_400(monetate_key):
    app = MonetateSandbox(MonetateSettings(spot_check_interval=0))
    app.register_key(MONETATE_USER, monetate_key.public_pem)
    with SandboxServer(app) as server:
        headers = auth_header(server, monetate_key)
        create_customers(server, headers)
        assert requests.get(f"{server.url}{DATA}/data/customers/", params={"id": "zz"}, headers=headers).status_code == 404
        assert requests.get(f"{server.url}{DATA}/data/customers/", headers=headers).status_code == 400


def test_spot_check_also_answers_the_form_printed_in_the_guide(monetate_sandbox, headers, customers):
    post_rows(monetate_sandbox, headers, [GOOD])
    answer = requests.get(f"{monetate_sandbox.url}/api/data/v1/customers/production/data", params={"id": "c1"},
                          headers=headers)
    assert answer.status_code == 200 and answer.json()["data"]["schema_rows"] == [GOOD]


def test_checking_a_request_column_by_column_agrees_with_checking_each_row():
    import random

    from sandbox.monetate import data

    fields = {"id": {"data_type": "STRING", "identifier": True, "unique_key": True},
              "tags": {"data_type": "MULTI_STRING"}, "spend": {"data_type": "NUMBER"},
              "vip": {"data_type": "BOOLEAN"}, "joined": {"data_type": "DATETIME"}}
    dataset = data.Dataset(id=1, name="s", type="attribute", fields=fields, created_date="2024-01-01")
    usual = {"id": "c1", "tags": "a,b", "spend": 1.5, "vip": True, "joined": "2024-05-01T10:15:00"}
    odd = {"id": ["", " c", "c ", 7, None, True], "tags": ["", "  ", 3, None], "spend": ["1", True, None, 2**1100,
           float("inf"), 10**400], "vip": [1, "yes", None], "joined": ["2024-13-01", "2024-05-01 10:15", "soon", 5,
           "2024-05-01T10:15:00Z", None]}
    rng = random.Random(3)
    for _ in range(300):
        rows = [dict(usual, id=f"c{i}") for i in range(rng.randint(1, 6))]
        for row in rows:
            if rng.random() < 0.3:
                name = rng.choice(list(odd))
                row[name] = rng.choice(odd[name])
            if rng.random() < 0.05:
                del row["tags"]
            if rng.random() < 0.05:
                row["extra"] = "x"
        if rng.random() < 0.05:
            rows.append("not an object")
        assert data.validate_rows(dataset, rows) == data.validate_each(dataset, rows), rows
