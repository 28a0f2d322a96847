"""Monetate Metadata API: lists, pagination, lookups by id, the name filter."""

import pytest
import requests

from sandbox.monetate import MetadataSizes, MonetateSandbox, MonetateSettings
from sandbox.monetate.metadata import generate
from sandbox.server import SandboxServer
from sandbox.testing import MONETATE_USER
from tests.sandbox.monetate_helpers import METADATA, auth_header

KINDS = ["customtarget", "pageevent", "variant", "experience-summary", "account"]


@pytest.fixture
def headers(monetate_sandbox, monetate_key):
    return auth_header(monetate_sandbox, monetate_key)


def get(server, headers, path, **params):
    return requests.get(f"{server.url}{METADATA}/{path}", params=params, headers=headers)


@pytest.mark.parametrize("kind", KINDS)
def test_list_defaults_to_pages_of_10_and_items_fetch_by_id(monetate_sandbox, headers, kind):
    answer = get(monetate_sandbox, headers, kind)
    assert answer.status_code == 200
    items = answer.json()["data"]
    assert len(items) == min(10, len(monetate_sandbox.app.items[kind]))
    one = get(monetate_sandbox, headers, f"{kind}/{items[0]['id']}")
    assert one.status_code == 200 and one.json()["data"] == items[0]


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_id_is_404(monetate_sandbox, headers, kind):
    assert get(monetate_sandbox, headers, f"{kind}/1").status_code == 404


def test_unknown_kind_is_404(monetate_sandbox, headers):
    assert get(monetate_sandbox, headers, "campaign").status_code == 404


def test_following_next_walks_every_item_once(monetate_sandbox, headers):
    url, seen, pages = f"{monetate_sandbox.url}{METADATA}/customtarget?page_size=7", [], 0
    while url:
        meta_data = requests.get(url, headers=headers).json()
        seen += [item["id"] for item in meta_data["data"]]
        assert meta_data["meta"]["count"] == len(meta_data["data"])
        url = meta_data["meta"].get("next")
        pages += 1
    assert sorted(seen) == sorted(monetate_sandbox.app.items["customtarget"]) and len(seen) == len(set(seen))
    assert pages == 4  # 25 targets in pages of 7


def test_previous_and_next_are_absolute_and_absent_at_the_ends(monetate_sandbox, headers):
    first = get(monetate_sandbox, headers, "pageevent", page_size=10).json()["meta"]
    assert "previous" not in first and first["next"].startswith(monetate_sandbox.url)
    last = get(monetate_sandbox, headers, "pageevent", page_size=10, page=3).json()["meta"]
    assert "next" not in last and last["previous"].endswith("page=2")


def test_page_size_is_clamped_to_1000(monetate_key):
    app = MonetateSandbox(MonetateSettings(metadata=MetadataSizes(customtargets=2100, experiences=1)))
    app.register_key(MONETATE_USER, monetate_key.public_pem)
    with SandboxServer(app) as server:
        answer = get(server, auth_header(server, monetate_key), "customtarget", page_size=5000)
        assert len(answer.json()["data"]) == 1000 and "page_size=5000" in answer.json()["meta"]["next"]


@pytest.mark.parametrize("params", [{"page_size": "0"}, {"page_size": "ten"}, {"page": "0"}])
def test_bad_page_parameters_are_400(monetate_sandbox, headers, params):
    assert get(monetate_sandbox, headers, "pageevent", **params).status_code == 400


def test_page_past_the_end_is_404(monetate_sandbox, headers):
    assert get(monetate_sandbox, headers, "pageevent", page=99).status_code == 404


def test_variant_name_filter_is_case_insensitive_contains(monetate_sandbox, headers):
    some = next(iter(monetate_sandbox.app.items["variant"].values()))
    needle = some["experience_name"].split()[-1].upper()  # the experience's unique number
    found = get(monetate_sandbox, headers, "variant", name=needle, page_size=1000).json()["data"]
    assert found and all(needle.lower() in v["experience_name"].lower() for v in found)
    assert some["id"] in {v["id"] for v in found}


def test_metadata_needs_a_token(monetate_sandbox):
    assert get(monetate_sandbox, {}, "account").status_code == 401


def test_default_sizes_need_several_pages_of_1000_for_every_kind_but_accounts():
    items = generate(MetadataSizes())
    for kind in ("customtarget", "pageevent", "variant", "experience-summary"):
        assert len(items[kind]) > 1000, kind


def test_split_ratios_of_an_experience_sum_to_one_and_name_its_variants():
    items = generate(MetadataSizes(experiences=50))
    for experience in items["experience-summary"].values():
        assert sum(s["split"] for s in experience["variant_splits"]) == pytest.approx(1.0)
        for variant_id in experience["splits"]:
            assert items["variant"][variant_id]["experience_id"] == experience["id"]


def test_inspection_can_rename_and_remove_items_for_refresh_tests(monetate_sandbox, headers):
    target_id = next(iter(monetate_sandbox.app.items["customtarget"]))
    base = f"{monetate_sandbox.url}/_sandbox/metadata/customtarget/{target_id}"
    requests.put(base, json={"title": "Renamed", "description": "", "is_identifier": False, "collects_person_id": False})
    assert get(monetate_sandbox, headers, f"customtarget/{target_id}").json()["data"]["title"] == "Renamed"
    requests.delete(base)
    assert get(monetate_sandbox, headers, f"customtarget/{target_id}").status_code == 404
