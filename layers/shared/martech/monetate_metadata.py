"""Monetate Metadata API: every item of a kind, page by page, and what changed between two
snapshots.

Example::

    items = MetadataClient(settings, tokens).fetch_all("variant")   # follows meta.next to the end
    change = changes(previous_items, items, "experience_name")       # ids added, removed, renamed
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from martech.http import make_session
from martech.monetate_auth import KeyRevoked, MonetateTokenProvider
from martech.settings import Settings

KINDS = ("customtarget", "pageevent", "variant", "experience-summary", "account")
PAGE_SIZE = 1000  # the largest page the API gives [doc]
# The field that names an item of each kind, for people and for rename detection.
NAME_FIELDS = {"customtarget": "title", "pageevent": "title", "variant": "experience_name",
               "experience-summary": "experience_name", "account": "name"}


class RefreshFailed(Exception):
    """A page could not be fetched after the retries: the refresh stops, nothing is half-written."""


@dataclass
class Changes:
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    renamed: list[dict[str, Any]] = field(default_factory=list)  # {"id", "from", "to"}

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.renamed)


def changes(before: list[dict[str, Any]], after: list[dict[str, Any]], name_field: str) -> Changes:
    """Ids added, removed and renamed between two snapshots of one kind."""
    old = {item["id"]: item for item in before}
    new = {item["id"]: item for item in after}
    return Changes(
        added=sorted(set(new) - set(old)),
        removed=sorted(set(old) - set(new)),
        renamed=[{"id": i, "from": old[i].get(name_field), "to": new[i].get(name_field)}
                 for i in sorted(set(old) & set(new)) if old[i].get(name_field) != new[i].get(name_field)],
    )


class MetadataClient:
    def __init__(self, settings: Settings, tokens: MonetateTokenProvider | None = None,
                 session: requests.Session | None = None) -> None:
        settings.require("monetate_metadata_url")
        self._session = session or make_session(settings)
        self.tokens = tokens or MonetateTokenProvider(settings, self._session)
        self.base = (settings.monetate_metadata_url or "").rstrip("/")

    def _get(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        for attempt in range(2):
            token = self.tokens.token()
            try:
                answer = self._session.get(url, params=params, headers={"Authorization": f"Token {token}"})
            except requests.RequestException as exc:
                raise RefreshFailed(f"{url}: {type(exc).__name__}") from None
            if answer.status_code == 401 and attempt == 0:
                self.tokens.invalidate(token)
                continue
            if answer.status_code == 403:
                raise KeyRevoked("Monetate answered 403: the API key behind the token was deactivated")
            if answer.status_code != 200:
                raise RefreshFailed(f"{url} answered {answer.status_code} after retries")
            return answer.json()
        raise RefreshFailed(f"{url}: the token was refused twice")

    def fetch_all(self, kind: str) -> list[dict[str, Any]]:
        """Every item of ``kind``, following ``meta.next`` until it is absent."""
        if kind not in KINDS:
            raise ValueError(f"unknown metadata kind {kind!r}; use one of {', '.join(KINDS)}")
        items: list[dict[str, Any]] = []
        page = self._get(f"{self.base}/metadata/{kind}", {"page_size": PAGE_SIZE})
        while True:
            items += page.get("data") or []
            next_url = (page.get("meta") or {}).get("next")
            if not next_url:
                return items
            page = self._get(next_url)
