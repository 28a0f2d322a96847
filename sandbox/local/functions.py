"""Loading a function's handler as Lambda would, and invoking it with its environment."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

from sandbox.local.template import PSEUDO, FunctionSpec

LAYER_PATH = Path(__file__).resolve().parents[2] / "layers" / "shared"


def import_layer() -> None:
    """Make the shared layer importable, as Lambda does from /opt/python."""
    if str(LAYER_PATH) not in sys.path:
        sys.path.insert(0, str(LAYER_PATH))


# Functions share this process, so their environments are applied one invocation at a time.
_INVOKE_LOCK = threading.RLock()


@dataclass
class LambdaContext:
    """What handlers read from Lambda's context object."""

    function_name: str
    memory_limit_in_mb: int = 1024
    timeout_seconds: int = 900
    aws_request_id: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.invoked_function_arn = (f"arn:aws:lambda:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}"
                                     f":function:{self.function_name}")

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class LocalFunction:
    """One function of the template, imported from its code folder under a unique module name."""

    def __init__(self, spec: FunctionSpec, extra_env: dict[str, str] | None = None) -> None:
        self.spec = spec
        self.env = {**spec.environment, **(extra_env or {}), "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id}
        import_layer()
        module_name = f"local_function_{spec.logical_id}"
        source = spec.code_dir / f"{spec.module.replace('.', '/')}.py"
        with _INVOKE_LOCK, environment(self.env):
            loader_spec = importlib.util.spec_from_file_location(module_name, source)
            if loader_spec is None or loader_spec.loader is None:
                raise ImportError(f"cannot load {source}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[module_name] = module
            loader_spec.loader.exec_module(module)
        self.handler: Callable[[dict[str, Any], Any], Any] = getattr(module, spec.handler)
        self.module = module
        self.invocations = 0

    def invoke(self, event: dict[str, Any]) -> Any:
        with _INVOKE_LOCK, environment(self.env):
            self.invocations += 1
            return self.handler(event, LambdaContext(self.spec.logical_id, self.spec.memory_mb, self.spec.timeout_seconds))
