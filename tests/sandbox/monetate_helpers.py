"""Small helpers the Monetate sandbox tests share."""

import requests

from sandbox.testing import MONETATE_USER

AUTH = "/api/auth/v0/refresh/"
DATA = "/api/data/v1/sandbox/production"
METADATA = "/api/metadata/v1/sandbox/production/metadata"

CUSTOMERS = {
    "name": "customers",
    "type": "attribute",
    "named_identifier": "customer_id",
    "fields": {
        "customer_id": {"data_type": "STRING", "identifier": True, "unique_key": True},
        "tier": {"data_type": "STRING"},
        "tags": {"data_type": "MULTI_STRING"},
        "spend": {"data_type": "NUMBER"},
        "vip": {"data_type": "BOOLEAN"},
        "joined": {"data_type": "DATETIME"},
    },
}


def token(server, key, ttl=None, username=MONETATE_USER):
    params = {"ttl": ttl} if ttl else None
    answer = requests.get(f"{server.url}{AUTH}", params=params, headers={"Authorization": f"JWT {key.jwt(username)}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["token"]


def auth_header(server, key):
    return {"Authorization": f"Token {token(server, key)}"}


def create_customers(server, headers, schema=CUSTOMERS):
    answer = requests.post(f"{server.url}{DATA}/schema/", json=schema, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]


def post_rows(server, headers, rows, schema="customers"):
    return requests.post(f"{server.url}{DATA}/data/{schema}/", json={"schema_rows": rows}, headers=headers)
