"""After `sam build`: the shared layer as Lambda's arm64 Python 3.11 will load it.

Run by `make test` once the layer is built; exits 1 naming what is wrong. Each compiled module
must be built for AArch64 (a wheel for this machine's x86_64 would fail only on AWS, at import),
the packages the functions import must be there, and botocore must not: the runtime's own goes
with its boto3.
"""

from __future__ import annotations

import sys
from pathlib import Path

LAYER = Path(".aws-sam/build/SharedLayer/python")
NEEDED = ("martech", "aws_lambda_powertools", "aws_xray_sdk", "requests", "urllib3", "jwt", "cryptography", "orjson",
          "tzdata")
NOT_WANTED = ("botocore", "boto3", "s3transfer")
AARCH64 = 183  # ELF e_machine


def problems(layer: Path) -> list[str]:
    found = []
    if not layer.is_dir():
        return [f"{layer} is not there: run sam build first"]
    names = {path.name for path in layer.iterdir()}
    found += [f"{name} is missing" for name in NEEDED if name not in names]
    found += [f"{name} must not be in the layer" for name in NOT_WANTED if name in names]
    for module in layer.rglob("*.so"):
        header = module.read_bytes()[:20]
        if header[:4] != b"\x7fELF" or int.from_bytes(header[18:20], "little") != AARCH64:
            found.append(f"{module.relative_to(layer)} is not built for arm64")
    return found


if __name__ == "__main__":
    wrong = problems(Path(sys.argv[1]) if len(sys.argv) > 1 else LAYER)
    for problem in wrong:
        print(f"shared layer: {problem}", file=sys.stderr)
    print("shared layer: " + ("not as Lambda will load it" if wrong else "arm64, without botocore"))
    sys.exit(1 if wrong else 0)
