"""Calls an API-based connection makes to its external API: placeholders, retries, cache."""

from __future__ import annotations

import json
import re
from typing import Any

import requests

PLACEHOLDER = re.compile(r"\{(\w+)\}")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class ExternalCallFailed(Exception):
    """The external API could not be reached or did not answer 2xx, after the retries."""


def placeholders(details: dict[str, Any]) -> set[str]:
    """Every ``{name}`` in the url, headers and body."""
    found: set[str] = set()
    for text in _strings([details.get("url"), details.get("headers"), details.get("body")]):
        found.update(PLACEHOLDER.findall(text))
    return found


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), value)
    if isinstance(value, dict):
        return {_fill(k, values): _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def prepare(details: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The concrete request; raises KeyError naming a placeholder without a value."""
    missing = placeholders(details) - set(values)
    if missing:
        raise KeyError(", ".join(sorted(missing)))
    return {
        "method": details["http_method"].upper(),
        "url": _fill(details["url"], values),
        "headers": _fill(details.get("headers") or {}, values),
        "body": _fill(details.get("body"), values),
    }


def cache_key(prepared: dict[str, Any]) -> str:
    return json.dumps(prepared, sort_keys=True, default=str)


def call(prepared: dict[str, Any], timeout: float, retries: int) -> Any:
    """Send the request, retrying connection errors and 5xx ``retries`` more times."""
    last = ""
    for _ in range(max(0, retries) + 1):
        try:
            response = requests.request(
                prepared["method"], prepared["url"], headers=prepared["headers"],
                json=prepared["body"], timeout=timeout,
            )
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code >= 500:
            last = f"the external API answered {response.status_code}"
            continue
        if response.status_code >= 400:
            raise ExternalCallFailed(f"the external API answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            return response.text
    raise ExternalCallFailed(last)
