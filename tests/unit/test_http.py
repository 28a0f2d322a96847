"""The HTTP retry policy: what is retried, how often, within what time."""

import time

import pytest
import requests

from martech.http import make_pool, make_session
from martech.settings import Settings


def test_get_is_retried_on_429_and_5xx_honouring_retry_after(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"script": ["429", "500", "503"]})
    session = make_session(Settings(http_backoff_factor=0.01))
    answer = session.get(f"{monetate_sandbox.url}/api/data/v1/sandbox/production/schema/")
    assert answer.status_code == 401  # reached the handler after three injected failures
    assert monetate_sandbox.app.stats()["by_status"] == {"429": 1, "500": 1, "503": 1, "401": 1}


def test_attempts_are_bounded(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"rate_500": 1.0})
    session = make_session(Settings(http_backoff_factor=0.01, http_max_attempts=3))
    assert session.get(f"{monetate_sandbox.url}/api/data/v1/sandbox/production/schema/").status_code == 500
    assert monetate_sandbox.app.stats()["by_status"] == {"500": 3}


def test_a_retry_with_a_deadline_gives_up_rather_than_wait_past_it_and_gives_the_last_answer(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"rate_429": 1.0, "retry_after": 1})
    pool = make_pool(Settings(http_max_attempts=5), monetate_sandbox.url)
    retries = pool.connection_pool_kw["retries"]
    began = time.monotonic()
    answer = pool.request("GET", f"{monetate_sandbox.url}/api/data/v1/sandbox/production/schema/",
                          retries=retries.until(time.monotonic() + 1.5))
    assert answer.status == 429 and time.monotonic() - began < 1.5  # waited once, for Retry-After: 1
    assert monetate_sandbox.app.stats()["by_status"] == {"429": 2}  # of the five tries it would have made


def test_unsafe_posts_are_resent_only_when_refused_before_processing(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"script": ["503", "500"]})
    session = make_session(Settings(http_backoff_factor=0.01), posts_are_safe=False)
    url = f"{monetate_sandbox.url}/api/data/v1/sandbox/production/data/x/"
    assert session.post(url, json={}).status_code == 500  # 503 resent, 500 not
    assert monetate_sandbox.app.stats()["by_status"] == {"503": 1, "500": 1}


def test_an_unsafe_post_whose_answer_is_lost_is_not_resent(monetate_sandbox):
    requests.put(f"{monetate_sandbox.url}/_sandbox/faults", json={"script": ["drop-after"]})
    session = make_session(Settings(http_backoff_factor=0.01), posts_are_safe=False)
    with pytest.raises(requests.ConnectionError):
        session.post(f"{monetate_sandbox.url}/api/data/v1/sandbox/production/data/x/", json={})
    assert monetate_sandbox.app.stats()["by_status"] == {"dropped-after": 1}
    assert len(monetate_sandbox.app.received()) == 1


def test_proxies_from_the_environment_hold_for_every_request_though_read_once(monetate_sandbox, monkeypatch):
    from sandbox.local.stack import free_port

    url = f"{monetate_sandbox.url}/_sandbox"
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = make_session(Settings(http_max_attempts=1))
    for _ in range(2):  # the second request uses what the first read from the environment
        with pytest.raises(requests.exceptions.ProxyError):
            proxied.get(url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = make_session(Settings(http_max_attempts=1))
    assert [direct.get(url).status_code for _ in range(2)] == [200, 200]
