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
    resume_from: int = 0  # records of the file already settled by earlier runs


def continuation(dropped: DroppedFile, resume_from: int) -> str:
    """The message that has a later run carry on with a file after its first ``resume_from`` records."""
    return json.dumps({"continue": {"bucket": dropped.bucket, "key": dropped.key, "version_id": dropped.version_id,
                                    "size": dropped.size, "resume_from": resume_from}})


def dropped_files(sqs_body: str) -> list[DroppedFile]:
    """The files an S3 notification names (none for S3's test event or a folder), or the one a continuation names.

    Keys arrive URL-encoded, ``+`` for a space, and are decoded here.
    """
    message: dict[str, Any] = json.loads(sqs_body)
    if "continue" in message:
        part = message["continue"]
        return [DroppedFile(part["bucket"], part["key"], part["version_id"], part.get("size"), int(part["resume_from"]))]
    if message.get("Event") == "s3:TestEvent":
        return []
    files = []
    for record in message.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        obj = s3["object"]
        key = unquote_plus(obj["key"])
        if key.endswith("/"):  # a folder, as the S3 console makes one: not a file to deliver
            continue
        files.append(DroppedFile(s3["bucket"]["name"], key, obj.get("versionId"), obj.get("size")))
    return files


def no_data_by_name(key: str) -> str | None:
    """Why a file holds no records by its name, else None. Spark and Hive read a folder leaving out
    the names that start with _ or . (Spark's _SUCCESS, Hadoop's .part-0.csv.crc, macOS's .DS_Store),
    and Spark stages its files under _temporary/ before moving them into place: a job's output folder,
    copied or synced here, arrives with those beside its data."""
    *folders, name = key.split("/")
    if name.startswith(("_", ".")):
        return (f"its name starts with {name[0]}, as Spark's _SUCCESS, Hadoop's .crc files and macOS's .DS_Store do,"
                " which Spark and Hive leave out of a folder too")
    if "_temporary" in folders:
        return "it is under _temporary/, where Spark stages its files before moving them into place"
    return None
