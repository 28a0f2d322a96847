"""File bodies the integration tests drop into the inbox, and dropping them."""

import csv
import io
import json


def csv_bytes(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def jsonl(records):
    return "\n".join(json.dumps(r) for r in records).encode()


def drop(stack, key, data, content_type="binary/octet-stream", **metadata):
    """Put the object, wait until the stack is idle, and return the run's report."""
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata)
    stack.wait_idle()
    return stack.report(key)
