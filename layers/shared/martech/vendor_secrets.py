"""Vendor credentials from Secrets Manager, through Powertools Parameters and its cache.

Each vendor client checks its secret's shape. A secret the check refuses is read once more past
the cache before the error stands, so that a secret put right is taken at once, not after
SECRET_CACHE_SECONDS of failed files.

Example::

    credentials = read_secret(fetch_json_secret, "marketing-bundle/monetate", 300, load_credentials,
                              MonetateAuthError)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Checked = TypeVar("Checked")
Fetch = Callable[[str, bool, int], Any]  # (name, past the cache, cache seconds) -> the secret's JSON


def fetch_json_secret(name: str, force: bool, max_age: int) -> Any:
    """The secret's value read as JSON, or None when it is not JSON: the vendor's check then says
    what it should be."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError

    try:
        return parameters.get_secret(name, transform="json", force_fetch=force, max_age=max_age)
    except TransformParameterError:
        return None


def read_secret(fetch: Fetch, name: str, max_age: int, check: Callable[[Any], Checked],
                malformed: type[Exception], force: bool = False) -> Checked:
    """``check(secret)``, the secret read from the cache (past it with ``force``); when ``check``
    raises ``malformed`` for the cached secret, the secret read past the cache is checked instead."""
    try:
        return check(fetch(name, force, max_age))
    except malformed:
        if force:
            raise
    return check(fetch(name, True, max_age))


def secret_fields(secret: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, str]:
    """The secret's ``required`` and present ``optional`` fields as text, without the spaces or line break
    a key copied from a page or a file brings along (an HTTP header holding one is refused before it is
    sent). ValueError, to follow "the <vendor> secret", saying what is wrong, never a word of a value."""
    shape = f" must be JSON with {' and '.join(required)}" + (f" (and optionally {', '.join(optional)})" if optional else "")
    if not isinstance(secret, dict):
        raise ValueError(shape)
    fields = {}
    for name in required + tuple(name for name in optional if secret.get(name) not in (None, "")):
        value = secret.get(name)
        text = value.strip() if isinstance(value, str) else str(value) if type(value) is int else ""
        if not text:
            raise ValueError(shape)
        if not text.isprintable() or " " in text:
            raise ValueError(f"'s {name} holds a space or a control character within it, which no key does: store the"
                             " key alone")
        fields[name] = text
    return fields
