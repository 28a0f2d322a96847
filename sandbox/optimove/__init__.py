"""Local stand-in for Optimove's Opti-X Data Connections API."""

from sandbox.optimove.app import OptimoveSandbox, OptimoveSettings

__all__ = ["OptimoveSandbox", "OptimoveSettings"]
