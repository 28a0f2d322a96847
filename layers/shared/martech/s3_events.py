"""S3 object notifications as they arrive through SQS."""

from __future__ import annotations

import json
import re
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
    waits: int = 0  # times the file was put back to wait for its earlier version (``version_order``)


def continuation(dropped: DroppedFile, resume_from: int, waits: int = 0) -> str:
    """The message that has a later run carry on with a file after its first ``resume_from`` records, or
    take it from the top after waiting ``waits`` times for its earlier version."""
    return json.dumps({"continue": {"bucket": dropped.bucket, "key": dropped.key, "version_id": dropped.version_id,
                                    "size": dropped.size, "resume_from": resume_from, "waits": waits}})


def dropped_files(sqs_body: str) -> list[DroppedFile]:
    """The files an S3 notification names (none for S3's test event or a folder), or the one a continuation names.

    Keys arrive URL-encoded, ``+`` for a space, and are decoded here.
    """
    message: dict[str, Any] = json.loads(sqs_body)
    if "continue" in message:
        part = message["continue"]
        return [DroppedFile(part["bucket"], part["key"], part["version_id"], part.get("size"), int(part["resume_from"]),
                            int(part.get("waits", 0)))]
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


# What tools leave beside the data files of a folder: Spark's and Databricks' commit markers, Hadoop's
# checksums (.part-00000.csv.crc), Redshift UNLOAD's manifest (<prefix>manifest, naming its part files),
# macOS's folder settings and its ._ copies of resource forks, Windows' thumbnails and folder settings.
_MARKERS = re.compile(r"_SUCCESS|_(?:committed|started)_[^/]*|\.[^/]*\.crc|[^/.]*manifest|\.DS_Store|\._[^/]*"
                      r"|(?i:thumbs\.db|desktop\.ini)")


def no_data_by_name(key: str) -> str | None:
    """Why a file holds no records by its name, else None: a marker a tool leaves beside data files, or
    a file Spark stages under _temporary/ before moving it into place. A job's output folder, copied
    or synced here, arrives with those beside its data; any other name is a file to deliver."""
    *folders, name = key.split("/")
    if _MARKERS.fullmatch(name):
        return "its name is a marker Spark, Hadoop, Redshift, macOS or Windows leaves beside data files, not data"
    if "_temporary" in folders:
        return "it is under _temporary/, where Spark stages its files before moving them into place"
    return None
