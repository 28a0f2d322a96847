"""Fetching Monetate metadata page by page, and telling what changed."""

import pytest
import requests

from martech.http import make_session
from martech.monetate_auth import MonetateTokenProvider
from martech.monetate_metadata import MetadataClient, RefreshFailed, changes
from martech.settings import Settings
from sandbox.monetate import MetadataSizes, MonetateSandbox, MonetateSettings
from sandbox.server import SandboxServer
from sandbox.testing import MONETATE_USER


@pytest.fixture
def big_sandbox(monetate_key):
    """Enough metadata that every list but accounts needs several pages of 1000."""
    app = MonetateSandbox(MonetateSettings(metadata=MetadataSizes(customtargets=2500, pageevents=1001, experiences=900)))
    app.register_key(MONETATE_USER, monetate_key.public_pem)
    with SandboxServer(app) as server:
        yield server


def client_for(server, key, **extra):
    settings = Settings(monetate_auth_url=f"{server.url}/api/auth/v0/refresh/", monetate_secret_name="m",
                        monetate_metadata_url=f"{server.url}/api/metadata/v1/sandbox/production",
                        http_backoff_factor=0.01, **extra)
    session = make_session(settings)
    secret = {"username": MONETATE_USER, "private_key": key.private_pem}
    return MetadataClient(settings, MonetateTokenProvider(settings, session, fetch_secret=lambda *a: secret), session)


@pytest.mark.parametrize("kind, pages", [("customtarget", 3), ("pageevent", 2), ("account", 1)])
def test_every_item_is_fetched_across_pages_of_1000(big_sandbox, monetate_key, kind, pages):
    items = client_for(big_sandbox, monetate_key).fetch_all(kind)
    assert sorted(i["id"] for i in items) == sorted(big_sandbox.app.items[kind])
    lists = [e for e in big_sandbox.app.received(f"/metadata/{kind}") if e["status"] == 200]
    assert len(lists) == pages


def test_a_500_in_the_middle_is_retried(big_sandbox, monetate_key):
    client = client_for(big_sandbox, monetate_key)
    requests.put(f"{big_sandbox.url}/_sandbox/faults", json={"script": ["500"], "paths": "customtarget\\?.*page=2"})
    items = client.fetch_all("customtarget")
    assert len(items) == 2500 and big_sandbox.app.stats()["by_status"]["500"] == 1


def test_a_page_that_keeps_failing_stops_the_refresh(big_sandbox, monetate_key):
    client = client_for(big_sandbox, monetate_key, http_max_attempts=2)
    client.tokens.token()
    requests.put(f"{big_sandbox.url}/_sandbox/faults", json={"rate_500": 1.0, "paths": "/metadata/"})
    with pytest.raises(RefreshFailed, match="500"):
        client.fetch_all("pageevent")


def test_changes_name_ids_added_removed_and_renamed():
    before = [{"id": 1, "title": "A"}, {"id": 2, "title": "B"}, {"id": 3, "title": "C"}]
    after = [{"id": 1, "title": "A"}, {"id": 2, "title": "B2"}, {"id": 4, "title": "D"}]
    found = changes(before, after, "title")
    assert (found.added, found.removed, found.renamed) == ([4], [3], [{"id": 2, "from": "B", "to": "B2"}])
    assert not changes(before, list(before), "title")
