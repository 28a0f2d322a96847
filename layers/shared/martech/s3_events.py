"""S3 object notifications as they arrive through SQS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class DroppedFile:
    bucket: str
    key: str
    version_id: str | None
    size: int | None


def dropped_files(sqs_body: str) -> list[DroppedFile]:
    """The files an S3 notification names; none for S3's test event.

    Keys arrive URL-encoded, ``+`` for a space, and are decoded here.
    """
    message: dict[str, Any] = json.loads(sqs_body)
    if message.get("Event") == "s3:TestEvent":
        return []
    files = []
    for record in message.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        files.append(DroppedFile(s3["bucket"]["name"], unquote_plus(obj["key"]), obj.get("versionId"), obj.get("size")))
    return files
