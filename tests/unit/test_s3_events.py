"""S3 notifications through SQS: the files they name, and the names that hold no data."""

import json

import pytest

from martech.s3_events import dropped_files


def notification(key, event="ObjectCreated:Put", version="v1"):
    obj = {"key": key, "size": 10, "eTag": "e"}
    if version:
        obj["versionId"] = version
    return json.dumps({"Records": [{"eventName": event, "s3": {"bucket": {"name": "inbox"}, "object": obj}}]})


def test_keys_are_url_decoded_with_plus_as_space():
    files = dropped_files(notification("monetate/customers/May+file%2B1.csv"))
    assert files[0].key == "monetate/customers/May file+1.csv" and files[0].version_id == "v1"


def test_s3_test_events_and_other_event_names_name_no_files():
    assert dropped_files(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "inbox"})) == []
    assert dropped_files(notification("a.csv", event="ObjectRemoved:Delete")) == []


@pytest.mark.parametrize("key, data", [
    ("monetate/customers/export/_SUCCESS", False), ("monetate/customers/export/.part-00000.csv.crc", False),
    ("optimove/loyalty/upsert/.DS_Store", False), ("mona/orders/_committed_5107", False),
    ("mona/orders/_started_5107", False), ("monetate/customers/._day.csv", False),  # macOS's copy of a resource fork
    ("monetate/customers/Thumbs.db", False), ("monetate/customers/desktop.ini", False),
    ("monetate/customers/day_manifest", False), ("monetate/customers/manifest", False),  # Redshift UNLOAD's
    ("monetate/customers/manifest.csv", True), ("monetate/customers/manifest.jsonl", True),
    ("monetate/customers/export/_temporary/0/task_1/part-00000.csv", False),
    ("monetate/customers/export/part-00000-c000.csv", True), ("monetate/customers/my_file_.csv", True),
    ("monetate/customers/_by_day/2024-05-01.csv", True), ("monetate/customers/temporary/a.csv", True),
    ("monetate/customers/_daily.csv", True), ("monetate/customers/.daily.csv", True),  # named so: data all the same
    ("monetate/customers/_SUCCESS.csv", True), ("monetate/customers/day.csv.crc.csv", True),
])
def test_markers_a_spark_job_or_a_mac_leaves_beside_its_files_are_no_data_by_their_names(key, data):
    from martech.s3_events import no_data_by_name

    assert (no_data_by_name(key) is None) is data


def test_a_folder_made_in_the_s3_console_is_not_a_file():
    assert dropped_files(notification("monetate/customers/")) == []
    assert dropped_files(notification("monetate/customers%2F")) == []  # the slash as S3 may encode it
