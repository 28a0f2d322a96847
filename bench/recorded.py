"""Where a benchmark's figures go: results/<benchmark>.json, with when and on what they were measured."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def record(benchmark: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Write and print the figures; returns them as written."""
    result = {"benchmark": benchmark, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "python": platform.python_version(), "cores": os.cpu_count(), **figures}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{benchmark}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result
