"""Vendor secrets: read through the cache, read again past it when the cached one is malformed."""

import pytest

from martech.vendor_secrets import fetch_json_secret, read_secret


class Malformed(Exception):
    pass


def needs_key(secret):
    if not isinstance(secret, dict) or "key" not in secret:
        raise Malformed("the secret needs key")
    return secret["key"]


class Store:
    """Secrets Manager behind a cache: ``cached`` until read past it."""

    def __init__(self, cached, current):
        self.cached, self.current, self.reads = cached, current, []

    def fetch(self, name, force, max_age):
        self.reads.append(force)
        if force:
            self.cached = self.current
        return self.cached


def test_a_cached_secret_that_is_right_is_read_once():
    store = Store({"key": "k1"}, {"key": "k2"})
    assert read_secret(store.fetch, "s", 300, needs_key, Malformed) == "k1" and store.reads == [False]


def test_a_cached_secret_put_right_since_is_read_again_past_the_cache():
    store = Store({"other": 1}, {"key": "k2"})
    assert read_secret(store.fetch, "s", 300, needs_key, Malformed) == "k2" and store.reads == [False, True]


def test_a_secret_still_malformed_past_the_cache_raises_after_one_more_read():
    store = Store(None, "not json either")
    with pytest.raises(Malformed, match="needs key"):
        read_secret(store.fetch, "s", 300, needs_key, Malformed)
    assert store.reads == [False, True]


def test_a_read_past_the_cache_asked_for_is_not_repeated():
    store = Store({"key": "k1"}, {"other": 1})
    with pytest.raises(Malformed):
        read_secret(store.fetch, "s", 300, needs_key, Malformed, force=True)
    assert store.reads == [True]


def test_a_secret_that_is_not_json_reads_as_none_for_the_check_to_name(monkeypatch):
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError

    def get_secret(name, transform=None, force_fetch=False, max_age=None):
        assert (name, transform, force_fetch, max_age) == ("s", "json", True, 300)
        raise TransformParameterError("Expecting value: line 1 column 1 (char 0)")

    monkeypatch.setattr(parameters, "get_secret", get_secret)
    assert fetch_json_secret("s", True, 300) is None
