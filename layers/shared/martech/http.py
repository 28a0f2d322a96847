"""One place that makes HTTP sessions: timeouts, pooling and retries.

``make_session`` gives a requests session for the calls; ``make_pool`` gives a bare urllib3
pool with the same timeouts, retries, proxies and CA bundle, for a hot path: posting a file's
batches, where requests cost three times the CPU per call.

Retries come from urllib3's ``Retry``: 429/500/502/503/504 and connection errors, with
exponential backoff and jitter, ``Retry-After`` honoured, a bounded number of attempts.
A POST is retried only when told it is safe: a vendor write without an idempotency key
may have landed even though its answer was lost.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH, get_environ_proxies
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from martech.settings import Settings

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Answers that mean the server refused before doing anything, so any request may be resent.
REFUSED_BEFORE_PROCESSING = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self._timeout = timeout
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, **kwargs)

    def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
                                   ) -> dict[str, Any]:
        """requests reads proxies and CA bundles from the environment on every request, scanning all
        of os.environ (about half the client's CPU for a batch post). The environment does not
        change while a function runs, so each origin reads it once."""
        key = (urlsplit(url)[:2], stream, verify, cert, tuple(sorted((proxies or {}).items())))
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}


class DeadlineRetry(Retry):
    """urllib3's Retry, that also gives up once the next try would start past ``deadline`` (on the
    ``time.monotonic()`` clock): a webhook call must answer before API Gateway stops waiting.
    Giving up is what running out of tries is: the last answer comes back (a 429, say), or
    MaxRetryError with the last failure."""

    deadline: float | None = None

    def new(self, **kw: Any) -> DeadlineRetry:
        retry = super().new(**kw)
        retry.deadline = self.deadline
        return retry

    def until(self, deadline: float | None) -> DeadlineRetry:
        retry = self.new()
        retry.deadline = deadline
        return retry

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> DeadlineRetry:
        retry = super().increment(method, url, response, error, _pool, _stacktrace)  # type: ignore[arg-type]
        if self.deadline is not None:
            wait = retry.get_retry_after(response) if response is not None and self.respect_retry_after_header else None
            if time.monotonic() + (retry.get_backoff_time() if wait is None else wait) >= self.deadline:
                raise MaxRetryError(_pool, url or "", error or ResponseError("no time is left for another try"))
        return retry


def make_retry(settings: Settings, *, posts_are_safe: bool) -> DeadlineRetry:
    """The retry policy; ``posts_are_safe`` says whether a POST whose answer was lost may be resent."""
    attempts = max(1, settings.http_max_attempts)
    return DeadlineRetry(
        total=attempts - 1,
        connect=attempts - 1,  # the request never reached the server: always safe
        read=attempts - 1 if posts_are_safe else 0,
        status=attempts - 1,
        other=0,
        status_forcelist=RETRY_STATUSES if posts_are_safe else REFUSED_BEFORE_PROCESSING,
        allowed_methods=IDEMPOTENT_METHODS | {"POST", "PATCH"},
        backoff_factor=settings.http_backoff_factor,
        backoff_max=settings.http_backoff_max,
        backoff_jitter=settings.http_backoff_factor,
        respect_retry_after_header=True,
        raise_on_status=False,  # the caller reads the last answer and decides
    )


def make_session(settings: Settings, *, posts_are_safe: bool = True) -> requests.Session:
    session = _TimeoutSession((settings.http_connect_timeout, settings.http_read_timeout))
    adapter = HTTPAdapter(
        max_retries=make_retry(settings, posts_are_safe=posts_are_safe),
        pool_connections=settings.http_pool_size,
        pool_maxsize=settings.http_pool_size,
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def make_pool(settings: Settings, url: str, *, posts_are_safe: bool = True) -> urllib3.PoolManager:
    """A urllib3 pool for calls to ``url``'s host, set up as ``make_session`` sets up a session:
    the proxy the environment names for that URL, if any, and the same CA bundle."""
    options: dict[str, Any] = {
        "retries": make_retry(settings, posts_are_safe=posts_are_safe),
        "timeout": urllib3.Timeout(connect=settings.http_connect_timeout, read=settings.http_read_timeout),
        "maxsize": settings.http_pool_size,
        "ca_certs": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or DEFAULT_CA_BUNDLE_PATH,
    }
    proxies = get_environ_proxies(url)
    proxy = proxies.get(urlsplit(url).scheme) or proxies.get("all")
    return urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)


def within(pool: urllib3.PoolManager, settings: Settings, deadline: float | None) -> dict[str, Any]:
    """Options for ``pool.request`` so that no try starts, nor waits for its answer, past ``deadline``
    (``time.monotonic()``); none without one."""
    if deadline is None:
        return {}
    left = max(deadline - time.monotonic(), 0.01)
    return {"retries": pool.connection_pool_kw["retries"].until(deadline),
            "timeout": urllib3.Timeout(connect=min(settings.http_connect_timeout, left),
                                       read=min(settings.http_read_timeout, left))}


def out_of_time(failure: str, deadline: float | None) -> str:
    """A failed request's failure, said as the deadline when that is what cut it short."""
    if deadline is not None and time.monotonic() >= deadline:
        return f"the call's time ran out waiting for an answer ({failure})"
    return failure


def pool_failure(exc: urllib3.exceptions.HTTPError) -> tuple[str, bool]:
    """A pool's failed request: the failure's name, and whether the request never reached the
    server (a refused or timed-out connection), so that sending it again cannot write twice."""
    failure = getattr(exc, "reason", None) or exc  # MaxRetryError carries the last failure
    return type(failure).__name__, isinstance(failure, urllib3.exceptions.ConnectTimeoutError)
