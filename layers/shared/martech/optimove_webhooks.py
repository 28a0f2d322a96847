"""Checking Optimove webhook bodies before anything reaches the vendor, and sending their records
in requests Optimove takes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from martech.optimove import MAX_ROWS_PER_UPLOAD, OptimoveError

PLACEHOLDER = re.compile(r"\{(\w+)\}")


class WebhookError(Exception):
    """The request is wrong; ``status`` and ``message`` are the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def placeholders(value: Any) -> set[str]:
    """Every ``{name}`` in a string, or in the strings of a nested object."""
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(k) | placeholders(v) for k, v in value.items())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def check_connection_body(body: Any) -> dict[str, Any]:
    """A connection to create: name and primary key; for an API connection, every placeholder
    in url, headers and body must have a sample value, as Optimove's test call needs one."""
    if not isinstance(body, dict):
        raise WebhookError(400, "the body must be a JSON object")
    missing = [f for f in ("name", "primary_key") if not isinstance(body.get(f), str) or not body[f].strip()]
    if missing:
        raise WebhookError(400, f"missing or empty: {', '.join(missing)}")
    details = body.get("external_api_details")
    if details is not None:
        if not isinstance(details, dict) or not isinstance(details.get("url"), str) or not details.get("http_method"):
            raise WebhookError(400, "external_api_details needs at least url and http_method")
        needed = placeholders(details.get("url")) | placeholders(details.get("headers")) | placeholders(details.get("body"))
        samples = details.get("sample_placeholder_values") or {}
        lacking = sorted(needed - set(samples))
        if lacking:
            raise WebhookError(400, f"sample_placeholder_values has no value for: {', '.join(lacking)}")
    return body


def _is_key(value: Any) -> bool:
    """A primary key Optimove can hold: text that is not blank, or a number (not true/false)."""
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_update_items(body: Any, pk_field: str | None = None) -> list[dict[str, Any]]:
    """update_data items: a list of {primary_key, data, ttl?}, or {"records": [...]} of the same. An
    item whose data names another key in the connection's primary-key field (``pk_field``) is refused:
    which record it means is in doubt."""
    items = body.get("records") if isinstance(body, dict) else body
    if not isinstance(items, list) or not items:
        raise WebhookError(400, 'the body must be a non-empty list of {"primary_key", "data", "ttl"}')
    for i, item in enumerate(items):
        if not isinstance(item, dict) or item.get("primary_key") in (None, "") or not isinstance(item.get("data"), dict):
            raise WebhookError(400, f"item {i}: needs primary_key and a data object")
        if not _is_key(item["primary_key"]):
            raise WebhookError(400, f"item {i}: primary_key must be text or a number, not {item['primary_key']!r}")
        if pk_field in item["data"] and str(item["data"][pk_field]) != str(item["primary_key"]):
            raise WebhookError(400, f"item {i}: data holds {pk_field}={item['data'][pk_field]!r}, another key than its"
                                    f" primary_key {item['primary_key']!r}; nothing was sent")
        ttl = item.get("ttl")
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0):
            raise WebhookError(400, f"item {i}: ttl must be a whole number of seconds or null")
    return items


def check_delete_keys(body: Any) -> list[Any]:
    """The primary keys of ``{"primary_keys": [...]}``, each checked before any is deleted: a bad key in
    a later request would leave the call half done."""
    keys = body.get("primary_keys") if isinstance(body, dict) else None
    if not isinstance(keys, list) or not keys:
        raise WebhookError(400, 'the body must be {"primary_keys": [...]}')
    bad = [i for i, key in enumerate(keys) if not _is_key(key)]
    if bad:
        shown = ", ".join(f"{i} ({keys[i]!r})" for i in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise WebhookError(400, f"primary_keys must be text or numbers; not items {shown}; nothing was deleted")
    return keys


def in_requests(send: Callable[[list[Any]], Any], items: list[Any], counted: str, size: int, deadline: float
                ) -> dict[str, Any]:
    """``items`` sent ``size`` a request (at most 5000, Optimove's limit): Optimove's last answer, with
    ``counted`` summed over the requests. Each request replaces or deletes whole records, so a call cut
    short by its time (``deadline``, ``time.monotonic()``) is safe to make again, and says so."""
    size = min(size, MAX_ROWS_PER_UPLOAD)
    answer: dict[str, Any] = {}
    total = 0
    for start in range(0, len(items), size):
        if time.monotonic() >= deadline:
            raise WebhookError(503, f"the call's time ran out after {start} of {len(items)} records; making the call"
                                    " again is safe, as Optimove replaces or deletes each record whole")
        try:
            answer = send(items[start:start + size]) or {}
        except OptimoveError as exc:
            if not start:
                raise
            end = min(start + size, len(items))
            raise WebhookError(exc.status if 400 <= exc.status < 500 else 502,
                               f"Optimove refused items {start}-{end - 1} ({exc.detail}) after the {start} before them"
                               " went through; making the call again, mended, is safe, as Optimove replaces or deletes"
                               " each record whole") from None
        total += int(answer.get(counted) or 0)
    return {**answer, counted: total}
