"""pytest fixtures: each test gets fresh sandboxes on free loopback ports.

Enable with ``pytest_plugins = ["sandbox.testing"]`` in a conftest.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import jwt
import pytest

from sandbox.keys import generate_key_pair
from sandbox.mona import MonaSandbox
from sandbox.monetate import MetadataSizes, MonetateSandbox, MonetateSettings
from sandbox.optimove import OptimoveSandbox, OptimoveSettings
from sandbox.server import SandboxServer

MONETATE_USER = "api-1-test"


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str

    def jwt(self, username: str = MONETATE_USER, iat: float | None = None, algorithm: str = "RS256") -> str:
        """A Monetate auth assertion signed with this key."""
        return jwt.encode({"username": username, "iat": int(time.time() if iat is None else iat)},
                          self.private_pem, algorithm=algorithm)


@pytest.fixture(scope="session")
def monetate_key() -> KeyPair:
    return KeyPair(*generate_key_pair())


@pytest.fixture
def monetate_sandbox(monetate_key: KeyPair) -> Iterator[SandboxServer]:
    """A Monetate sandbox with ``MONETATE_USER`` registered for ``monetate_key``.

    Its metadata is small (a few pages of 1000 would slow every test); tests of full
    refreshes build their own with :class:`MetadataSizes`.
    """
    small = MetadataSizes(customtargets=25, pageevents=30, experiences=12, accounts=2)
    app = MonetateSandbox(MonetateSettings(metadata=small))
    app.register_key(MONETATE_USER, monetate_key.public_pem)
    with SandboxServer(app) as server:
        yield server


@pytest.fixture
def optimove_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(OptimoveSandbox(OptimoveSettings(rate_limit=None))) as server:
        yield server


@pytest.fixture
def mona_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(MonaSandbox()) as server:
        yield server
