"""Metadata refresh, lookups and Session Stream interpretation on the local stack."""

import dataclasses
import gzip
import json

import pytest

from martech.monetate_metadata import KINDS
from sandbox.local.stack import LocalStack
from sandbox.monetate import MetadataSizes
from tests.integration.webhook_contract import call

FUNCTION = "MonetateFunction"


@pytest.fixture(scope="module")
def stack():
    env = {"HTTP_MAX_ATTEMPTS": "3", "HTTP_BACKOFF_FACTOR": "0.01", "HTTP_BACKOFF_MAX": "0.05"}
    with LocalStack(metadata=MetadataSizes(customtargets=30, pageevents=20, experiences=10), function_env=env) as stack:
        stack.run_schedule(FUNCTION)  # the first snapshot
        stack.metadata_changes()
        yield stack


@pytest.fixture(autouse=True)
def clean_faults(stack):
    yield
    stack.monetate.faults.clear()


def keys(stack, prefix):
    pages = stack.s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def read_json(stack, key):
    return json.loads(stack.s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())


def latest(stack, kind):
    return read_json(stack, f"metadata/latest/{kind}.json")


def set_stale_seconds(stack, seconds):
    module = stack.functions[FUNCTION].module
    module.settings = dataclasses.replace(module.settings, metadata_stale_seconds=seconds)


# -- refresh ---------------------------------------------------------------------------------
def test_a_refresh_snapshots_every_kind_with_a_csv_beside_it(stack):
    for kind in KINDS:
        snapshot = latest(stack, kind)
        assert sorted(i["id"] for i in snapshot["items"]) == sorted(stack.monetate.items[kind])
        assert snapshot["count"] == len(stack.monetate.items[kind])
        csv_lines = stack.s3.get_object(Bucket=stack.bucket, Key=f"metadata/latest/{kind}.csv")["Body"].read()
        assert csv_lines.decode().splitlines()[0].startswith("id,")
        assert len(csv_lines.decode().splitlines()) == snapshot["count"] + 1


def test_no_change_means_no_history_and_no_event(stack):
    history = keys(stack, "metadata/history/")
    before = {kind: latest(stack, kind) for kind in KINDS}
    result = stack.run_schedule(FUNCTION)
    assert result["changed"] == {}
    assert keys(stack, "metadata/history/") == history
    assert {kind: latest(stack, kind) for kind in KINDS} == before
    assert stack.metadata_changes() == []
    assert read_json(stack, "metadata/latest/refreshed.json")["refreshed_at"] == result["refreshed_at"]


def test_change_events_name_exactly_what_changed(stack):
    events = stack.monetate.items["pageevent"]
    renamed_id = sorted(events)[0]
    old_title = events[renamed_id]["title"]
    events[renamed_id] = {**events[renamed_id], "title": "Checkout Started"}
    targets = stack.monetate.items["customtarget"]
    removed_id = sorted(targets)[-1]
    del targets[removed_id]
    variants = stack.monetate.items["variant"]
    added_id = max(variants) + 1
    variants[added_id] = {**variants[max(variants)], "id": added_id, "split_name": "Z"}
    history_before = set(keys(stack, "metadata/history/"))

    answer = call(stack, "POST", "/metadata/refresh")

    assert answer.status_code == 200
    assert answer.json()["changed"] == {"pageevent": {"added": 0, "removed": 0, "renamed": 1},
                                        "customtarget": {"added": 0, "removed": 1, "renamed": 0},
                                        "variant": {"added": 1, "removed": 0, "renamed": 0}}
    by_kind = {e["detail"]["kind"]: e for e in stack.metadata_changes()}
    assert set(by_kind) == {"pageevent", "customtarget", "variant"}
    assert by_kind["pageevent"]["detail-type"] == "Monetate metadata changed"
    assert by_kind["pageevent"]["detail"]["renamed"] == [{"id": renamed_id, "from": old_title, "to": "Checkout Started"}]
    assert (by_kind["pageevent"]["detail"]["added"], by_kind["pageevent"]["detail"]["removed"]) == ([], [])
    assert by_kind["customtarget"]["detail"]["removed"] == [removed_id]
    assert by_kind["variant"]["detail"]["added"] == [added_id]
    new_history = set(keys(stack, "metadata/history/")) - history_before
    assert {key.rsplit("/", 1)[1] for key in new_history} == {"pageevent.json", "customtarget.json", "variant.json"}
    assert {by_kind[k]["detail"]["history"] for k in by_kind} == new_history
    assert latest(stack, "pageevent")["items"][0]["title"] == "Checkout Started"


def test_a_page_that_fails_once_is_retried_and_the_refresh_completes(stack):
    stack.monetate.items["pageevent"][299_999] = {"id": 299_999, "title": "Late Event"}
    stack.monetate.faults.update({"paths": r"/metadata/pageevent", "script": ["500"]})
    failed_before = [e["status"] for e in stack.monetate.received("/metadata/pageevent")].count(500)
    answer = call(stack, "POST", "/metadata/refresh")
    assert [e["status"] for e in stack.monetate.received("/metadata/pageevent")].count(500) == failed_before + 1
    assert answer.status_code == 200 and answer.json()["changed"] == {"pageevent": {"added": 1, "removed": 0,
                                                                                  "renamed": 0}}
    assert stack.metadata_changes()[0]["detail"]["added"] == [299_999]


def test_a_refresh_that_cannot_finish_leaves_the_last_snapshot_untouched(stack):
    stack.monetate.items["customtarget"][199_999] = {"id": 199_999, "title": "Never Stored"}
    stack.monetate.items["variant"].pop(max(stack.monetate.items["variant"]))
    before = {kind: latest(stack, kind) for kind in KINDS}
    history = keys(stack, "metadata/history/")
    stack.monetate.faults.update({"paths": r"/metadata/variant", "rate_500": 1.0})  # variant comes after customtarget

    answer = call(stack, "POST", "/metadata/refresh")

    assert answer.status_code == 502 and "untouched" in answer.json()["message"]
    assert {kind: latest(stack, kind) for kind in KINDS} == before
    assert keys(stack, "metadata/history/") == history
    assert stack.metadata_changes() == []
    stack.monetate.faults.clear()
    assert call(stack, "POST", "/metadata/refresh").json()["changed"].keys() == {"customtarget", "variant"}
    stack.metadata_changes()


def test_a_scheduled_refresh_that_cannot_finish_fails_its_invocation_for_the_errors_alarm(stack):
    # The template's MonetateFunctionErrorsAlarm counts Lambda Errors: the scheduled run must raise, not answer.
    before = {kind: latest(stack, kind) for kind in KINDS}
    stack.monetate.faults.update({"paths": r"/metadata/variant", "rate_500": 1.0})
    with pytest.raises(Exception, match="variant"):
        stack.run_schedule(FUNCTION)
    assert {kind: latest(stack, kind) for kind in KINDS} == before


def test_a_revoked_key_ends_a_refresh_with_502_and_the_snapshots_untouched(stack):
    before = {kind: latest(stack, kind) for kind in KINDS}
    stack.monetate.items["pageevent"][288_888] = {"id": 288_888, "title": "Not Yet"}
    stack.monetate.auth.set_active("key-1", False)
    try:
        answer = call(stack, "POST", "/metadata/refresh")
    finally:
        stack.monetate.auth.set_active("key-1", True)
        del stack.monetate.items["pageevent"][288_888]
    assert answer.status_code == 502 and "deactivated" in answer.json()["message"]
    assert {kind: latest(stack, kind) for kind in KINDS} == before


# -- lookups ---------------------------------------------------------------------------------
def test_lookups_answer_from_the_snapshot_without_calling_monetate(stack):
    event_id = sorted(stack.monetate.items["pageevent"])[1]
    calls_before = len(stack.monetate.received("/metadata/"))

    one = call(stack, "GET", f"/metadata/pageevent/{event_id}")
    many = call(stack, "GET", "/metadata/pageevent", params={"ids": f"{event_id},42"})

    assert one.status_code == 200
    assert one.json()["item"] == stack.monetate.items["pageevent"][event_id]
    assert one.json()["snapshot_taken_at"] == latest(stack, "pageevent")["taken_at"]
    assert many.status_code == 200
    assert many.json()["items"] == {str(event_id): stack.monetate.items["pageevent"][event_id]}
    assert many.json()["unknown"] == ["42"]
    assert len(stack.monetate.received("/metadata/")) == calls_before


def test_ids_named_in_several_parameters_are_all_looked_up(stack):
    first, second = sorted(stack.monetate.items["pageevent"])[:2]
    answer = call(stack, "GET", "/metadata/pageevent", params=[("ids", first), ("ids", f"{second},42")])  # ?ids=1&ids=2,3
    assert answer.status_code == 200
    assert set(answer.json()["items"]) == {str(first), str(second)} and answer.json()["unknown"] == ["42"]


def test_an_unknown_id_is_404_with_when_the_snapshot_was_taken(stack):
    answer = call(stack, "GET", "/metadata/variant/42")
    assert answer.status_code == 404
    assert answer.json()["snapshot_taken_at"] == latest(stack, "variant")["taken_at"]
    assert answer.json()["last_refresh"] == read_json(stack, "metadata/latest/refreshed.json")["refreshed_at"]


def forget_every_snapshot(stack):
    """The bucket as a deploy leaves it, before the schedule first fires."""
    for key in keys(stack, "metadata/"):
        stack.s3.delete_object(Bucket=stack.bucket, Key=key)
    stack.functions[FUNCTION].module.snapshots.cache_clear()  # the function's snapshots held in memory


def test_the_first_lookup_after_a_deploy_takes_the_first_snapshot(stack):
    forget_every_snapshot(stack)
    stack.metadata_changes()
    event_id = sorted(stack.monetate.items["pageevent"])[0]

    answer = call(stack, "GET", f"/metadata/pageevent/{event_id}")

    assert answer.status_code == 200
    assert answer.json()["item"] == stack.monetate.items["pageevent"][event_id]
    assert {kind: latest(stack, kind)["count"] for kind in KINDS} == {k: len(stack.monetate.items[k]) for k in KINDS}
    assert sorted(event["detail"]["kind"] for event in stack.metadata_changes()) == sorted(KINDS)
    calls_before = len(stack.monetate.received("/metadata/"))
    assert call(stack, "GET", "/metadata/variant/42").status_code == 404  # a snapshot there is: no second refresh
    assert len(stack.monetate.received("/metadata/")) == calls_before


def test_a_first_lookup_that_cannot_take_the_first_snapshot_says_why(stack):
    forget_every_snapshot(stack)
    stack.monetate.auth.set_active("key-1", False)
    try:
        answer = call(stack, "GET", "/metadata/pageevent/1")
    finally:
        stack.monetate.auth.set_active("key-1", True)
    assert answer.status_code == 502
    assert "no snapshot of pageevent yet, and taking the first failed" in answer.json()["message"]
    assert "deactivated" in answer.json()["message"]
    assert keys(stack, "metadata/") == []
    event_id = sorted(stack.monetate.items["pageevent"])[0]
    assert call(stack, "GET", f"/metadata/pageevent/{event_id}").status_code == 200  # the next one takes it
    assert len(stack.metadata_changes()) == len(KINDS)


@pytest.mark.parametrize("path, status", [("/metadata/widgets/1", 404), ("/metadata/pageevent/abc", 400),
                                          ("/metadata/pageevent", 400), ("/metadata/pageevent?ids=%C2%B2", 400),
                                          ("/metadata/pageevent?ids=%D9%A1%D9%A2", 400),
                                          ("/metadata/pageevent?ids=1," + "9" * 5000, 400),
                                          ("/metadata/pageevent?ids=1&id=1", 400), ("/metadata/pageevent/1?ids=2", 400)])
def test_bad_lookups_say_what_is_wrong(stack, path, status):
    answer = call(stack, "GET", path)
    assert answer.status_code == status and answer.json()["message"]


# -- Session Stream ---------------------------------------------------------------------------
def session_file(stack):
    """Sessions over known and unknown ids, and what interpreting them must give."""
    items = stack.monetate.items
    events = sorted(items["pageevent"])[:3]
    targets = sorted(items["customtarget"])[:2]
    experiences = sorted(items["experience-summary"])[:3]
    variant_of = {e: items["experience-summary"][e]["splits"] for e in experiences}
    offer = lambda e, s: f"{e}-{variant_of[e][s]}"  # noqa: E731
    sessions = [
        {"session_id": "s1", "city": "Boston", "page_event_ids": {str(events[0]): "2026-11-23T10:00:00Z",
                                                                  str(events[1]): "2026-11-23T10:01:00Z"},
         "offers": [offer(experiences[0], 0), offer(experiences[1], 1)],
         "custom_targets": {str(targets[0]): "yes"}},
        {"session_id": "s2", "city": "Boston", "page_event_ids": {str(events[0]): "2026-11-23T10:05:00Z"},
         "offers": [offer(experiences[0], 1)], "custom_targets": {}},
        {"session_id": "s3", "city": "Denver", "page_event_ids": {"777": "2026-11-23T10:07:00Z"},
         "offers": [offer(experiences[0], 0), offer(experiences[2], 0), "4242-1"],
         "custom_targets": {str(targets[1]): 3, "888": "x"}},
    ]
    body = "\n".join(json.dumps(s) for s in sessions) + "\nnot json\n"
    title = lambda i: items["pageevent"][i]["title"]  # noqa: E731
    expected = {
        "top_experiences": [
            {"experience_id": experiences[0], "experience_name": items["experience-summary"][experiences[0]]["experience_name"],
             "sessions": 3},
            *({"experience_id": e, "experience_name": items["experience-summary"][e]["experience_name"],
               "sessions": 1} for e in experiences[1:]),
            {"experience_id": 4242, "experience_name": None, "sessions": 1}],  # seen, though its name is unknown
        "page_events_by_city": {"Boston": {title(events[0]): 2, title(events[1]): 1},
                                "Denver": {"unknown page event 777": 1}},
        "unknown_ids": {"customtarget": {"888": 1}, "experience": {"4242": 1}, "pageevent": {"777": 1},
                        "variant": {"4242-1": 1}},
    }
    return gzip.compress(body.encode()), expected, sessions


def test_a_session_stream_file_is_interpreted_with_known_answers(stack):
    set_stale_seconds(stack, 3600)  # the snapshot is fresh: unknown ids do not refresh it
    data, expected, sessions = session_file(stack)
    key = "monetate-sessions/2026/11/23/10.json.gz"
    calls_before = len(stack.monetate.received("/metadata/"))
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=data)
    stack.wait_idle()

    summary = read_json(stack, "interpreted/2026/11/23/10.json.gz.summary.json")
    assert summary["sessions"] == 3 and summary["rejected"] == 1
    top = summary["top_experiences"]
    assert top[0] == expected["top_experiences"][0]
    by_id = lambda rows: sorted(rows, key=lambda x: x["experience_id"])  # noqa: E731  ties come in any order
    assert by_id(top[1:]) == by_id(expected["top_experiences"][1:])
    assert summary["page_events_by_city"] == expected["page_events_by_city"]
    assert summary["unknown_ids"] == expected["unknown_ids"]
    assert summary["refresh"] == {"triggered": False}
    assert len(stack.monetate.received("/metadata/")) == calls_before

    body = stack.s3.get_object(Bucket=stack.bucket, Key="interpreted/2026/11/23/10.json.gz")["Body"].read()
    out = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    assert [s["session_id"] for s in out] == ["s1", "s2", "s3"]
    items = stack.monetate.items
    first = out[0]["interpreted"]
    event_id = int(next(iter(sessions[0]["page_event_ids"])))
    assert first["page_events"][0] == {"id": event_id, "title": items["pageevent"][event_id]["title"],
                                       "time": "2026-11-23T10:00:00Z"}
    experience_id, variant_id = (int(p) for p in sessions[0]["offers"][1].split("-"))
    assert first["experiences"][1] == {
        "offer": sessions[0]["offers"][1], "experience_id": experience_id,
        "experience_name": items["experience-summary"][experience_id]["experience_name"],
        "variant_id": variant_id, "split": "B"}
    target_id = int(next(iter(sessions[0]["custom_targets"])))
    assert first["custom_targets"] == [{"id": target_id, "title": items["customtarget"][target_id]["title"],
                                        "value": "yes"}]
    assert out[2]["interpreted"]["experiences"][2]["experience_name"] is None
    assert stack.report(key)["status"] == "complete"
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key=f"rejected/{key}.jsonl")["Body"].read()
    assert json.loads(rejected) == {"line": 4, "reasons": ["invalid JSON: invalid literal, expected 'null' at column 1"],
                                    "record": "not json"}


def test_unknown_ids_refresh_an_old_snapshot_and_the_file_is_read_with_the_new_names(stack):
    set_stale_seconds(stack, 0)
    stack.monetate.items["pageevent"][777] = {"id": 777, "title": "Size Guide Opened"}
    data, _, _ = session_file(stack)
    stack.s3.put_object(Bucket=stack.bucket, Key="monetate-sessions/late.jsonl.gz", Body=data)
    stack.wait_idle()

    summary = read_json(stack, "interpreted/late.jsonl.gz.summary.json")
    assert summary["refresh"]["triggered"] is True and summary["refresh"]["changed"] == ["pageevent"]
    assert summary["page_events_by_city"]["Denver"] == {"Size Guide Opened": 1}
    assert "pageevent" not in summary["unknown_ids"]
    assert [e["detail"]["added"] for e in stack.metadata_changes()] == [[777]]
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key="rejected/monetate-sessions/late.jsonl.gz.jsonl")["Body"].read()
    assert [json.loads(row)["line"] for row in rejected.splitlines()] == [4]  # read twice, set aside once
    set_stale_seconds(stack, 3600)


def test_a_session_stream_file_with_a_summary_over_what_dynamodb_holds_is_interpreted_once(stack):
    set_stale_seconds(stack, 3600)
    sessions = [{"session_id": f"s{i}", "city": f"City {i}", "page_event_ids": {str(9_000_000 + i): "2026-11-23T10:00:00Z"},
                 "offers": [], "custom_targets": {str(8_000_000 + i): "x"}} for i in range(6000)]
    key = "monetate-sessions/many-cities.jsonl"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body="\n".join(json.dumps(s) for s in sessions).encode())
    stack.wait_idle()
    summary = stack.s3.get_object(Bucket=stack.bucket, Key="interpreted/many-cities.jsonl.summary.json")["Body"].read()
    assert len(summary) > 400_000 and json.loads(summary)["sessions"] == 6000  # more than a DynamoDB item holds
    assert stack.report(key)["status"] == "complete" and stack.report(key)["runs"] == 1
    assert not any(stack.dead_letters().values())


def test_a_repeated_event_of_a_session_stream_file_interprets_and_counts_it_once(stack, monkeypatch):
    metrics = stack.functions[FUNCTION].module.metrics
    counted = []
    add_metric = metrics.add_metric
    monkeypatch.setattr(metrics, "add_metric", lambda **metric: counted.append(metric["name"]) or add_metric(**metric))
    key = "monetate-sessions/repeated.jsonl"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=b'{"session_id": "s1", "city": "Boston"}\n')
    stack.wait_idle()
    assert counted == ["FilesNotComplete"]
    interpreted = stack.s3.head_object(Bucket=stack.bucket, Key="interpreted/repeated.jsonl")["ETag"]
    version = stack.s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": stack.bucket},
                                                                   "object": {"key": key, "versionId": version}}}]}
    stack.sqs.send_message(QueueUrl=stack.queue_urls["MonetateQueue"], MessageBody=json.dumps(event))
    stack.wait_idle()
    assert counted == ["FilesNotComplete"]  # not counted again
    assert stack.s3.head_object(Bucket=stack.bucket, Key="interpreted/repeated.jsonl")["ETag"] == interpreted


def test_a_session_stream_file_too_big_to_interpret_in_one_run_fails_with_a_report_instead_of_timing_out(stack):
    module = stack.functions[FUNCTION].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, file_run_margin_seconds=900)  # no time left at all
    key = "monetate-sessions/too-big.jsonl"
    sessions = (json.dumps({"session_id": f"s{i}", "city": "Denver", "page_event_ids": {}, "offers": []}) for i in range(70_000))
    try:
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body="\n".join(sessions).encode())
        stack.wait_idle()
    finally:
        module.settings = settings
    report = stack.report(key)
    assert (report["status"], report["sent"]) == ("failed", 0)
    assert report["errors"] == ["the file is too big to interpret in one run (65,536 sessions read before the time"
                                " was up); split it into smaller files"]
    assert keys(stack, "interpreted/too-big") == []
    assert not any(stack.dead_letters().values())
