"""Monetate's Metadata API: generated experiences, variants, page events, custom targets
and accounts, and the list pagination the vendor documents (``page_size``, ``page``,
``meta.next`` / ``meta.previous`` as absolute URLs, absent at the ends)."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sandbox.server import HttpError, Request

KINDS = ("customtarget", "pageevent", "variant", "experience-summary", "account")
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 10, 1000
# Kinds whose list takes the case-insensitive ``name`` filter, and the field it searches.
NAME_FILTERED = {"variant": "experience_name", "experience-summary": "experience_name"}


@dataclass
class MetadataSizes:
    """How much to generate; the defaults make every list but accounts span several pages."""

    customtargets: int = 2100
    pageevents: int = 2300
    experiences: int = 1500  # each has 2 to 4 variants
    accounts: int = 3
    seed: int = 7


_WORDS = (
    "summer sale homepage hero banner cart checkout loyalty vip returning new mobile desktop "
    "email recs search category product promo free shipping bundle clearance winter spring "
    "outlet gift card wishlist signup newsletter app store locator size guide reviews"
).split()
_STATUSES = ("active", "draft", "paused", "scheduled", "ended")
_TYPES = ("Dynamic Testing", "Automated Personalization", "Standard", "Product Recommendations")
_INTEGRATIONS = ("js-tag", "engine-api", "email")


def generate(sizes: MetadataSizes) -> dict[str, dict[int, dict[str, Any]]]:
    """Deterministic metadata for a sandbox: the same sizes and seed give the same items."""
    rnd = random.Random(sizes.seed)

    def phrase(n: int) -> str:
        return " ".join(rnd.choice(_WORDS) for _ in range(n)).title()

    accounts = {}
    for i in range(sizes.accounts):
        account_id = 9000 + i
        domain = f"shop{i + 1}.example.com"
        accounts[account_id] = {
            "id": account_id, "type": "production", "kind": "retail", "archived": False,
            "channel": f"a-{rnd.getrandbits(32):08x}/p/{domain}", "name": domain,
            "preview_url": f"http://{domain}?__store=one",
        }
    domains = [a["name"] for a in accounts.values()] or ["shop.example.com"]

    targets = {}
    for i in range(sizes.customtargets):
        target_id = 100_000 + i
        targets[target_id] = {
            "id": target_id, "title": f"{phrase(2)} Target {i}", "description": phrase(5),
            "is_identifier": rnd.random() < 0.1, "collects_person_id": rnd.random() < 0.05,
        }
    events = {200_000 + i: {"id": 200_000 + i, "title": f"{phrase(2)} Event {i}"} for i in range(sizes.pageevents)}

    experiences, variants = {}, {}
    variant_id = 500_000
    for i in range(sizes.experiences):
        experience_id = 1_000_000 + i
        name = f"{phrase(3)} {i}"
        domain = rnd.choice(domains)
        kind = rnd.choice(_TYPES)
        integration = rnd.choice(_INTEGRATIONS)
        n_splits = rnd.randint(2, 4)
        ratios = _ratios(rnd, n_splits)
        split_ids, variant_splits = [], []
        for s in range(n_splits):
            letter = string.ascii_uppercase[s]
            variants[variant_id] = {
                "id": variant_id, "account_domain": domain, "experience_id": experience_id,
                "experience_name": name, "experience_type": kind, "split_name": letter,
                "split_description": f"Variant {letter} of {name}",
                "preview_token": f"6.3.{rnd.getrandbits(64):016x}", "integration_type": integration,
            }
            split_ids.append(variant_id)
            # No "label": the published schema types it boolean while its example shows text.
            variant_splits.append({"id": variant_id, "variant": letter, "split": ratios[s]})
            variant_id += 1
        day = 1 + i % 28
        experiences[experience_id] = {
            "id": experience_id, "account_domain": domain, "experience_name": name,
            "experience_type": kind, "archived": rnd.random() < 0.1,
            "create_time": f"2026-01-{day:02d}T09:00:00.000000Z",
            "start_time": f"2026-02-{day:02d}T09:00:00.000000Z",
            "end_time": f"2026-12-{day:02d}T09:00:00.000000Z",
            "status": rnd.choice(_STATUSES), "splits": split_ids, "tags": [rnd.choice(_WORDS)],
            "goals": [], "variant_splits": variant_splits, "integration_type": integration,
        }
    return {
        "customtarget": targets, "pageevent": events, "variant": variants,
        "experience-summary": experiences, "account": accounts,
    }


def _ratios(rnd: random.Random, n: int) -> list[float]:
    """Split ratios that sum to exactly 1 (the last one takes the rounding)."""
    weights = [rnd.randint(1, 10) for _ in range(n)]
    total = sum(weights)
    ratios = [round(w / total, 3) for w in weights[:-1]]
    return ratios + [round(1 - sum(ratios), 3)]


def page_of(request: Request, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The page a list request asks for and its pagination ``meta`` fields."""
    page_size = _positive_int(request, "page_size", PAGE_SIZE_DEFAULT)
    page_size = min(page_size, PAGE_SIZE_MAX)
    page = _positive_int(request, "page", 1)
    pages = max(1, -(-len(items) // page_size))
    if page > pages:
        raise HttpError(404, "Invalid page.")
    chunk = items[(page - 1) * page_size: page * page_size]
    meta: dict[str, Any] = {"count": len(chunk)}
    if page < pages:
        meta["next"] = _page_url(request, page + 1)
    if page > 1:
        meta["previous"] = _page_url(request, page - 1)
    return chunk, meta


def _positive_int(request: Request, name: str, default: int) -> int:
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HttpError(400, {"field": name, "message": f"{name} must be a positive integer"}) from None
    if value < 1:
        raise HttpError(400, {"field": name, "message": f"{name} must be a positive integer"})
    return value


def _page_url(request: Request, page: int) -> str:
    query = {k: v[-1] for k, v in request.query.items()}
    query["page"] = str(page)
    return f"{request.base_url}{request.path}?{urlencode(query)}"


def filter_by_name(kind: str, items: list[dict[str, Any]], name: str | None) -> list[dict[str, Any]]:
    field_name = NAME_FILTERED.get(kind)
    if not name or not field_name:
        return items
    needle = name.lower()
    return [item for item in items if needle in item[field_name].lower()]
