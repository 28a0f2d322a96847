"""Local stand-in for Monetate's Auth, Data and Metadata APIs."""

from sandbox.monetate.app import MonetateSandbox, MonetateSettings
from sandbox.monetate.metadata import MetadataSizes

__all__ = ["MetadataSizes", "MonetateSandbox", "MonetateSettings"]
