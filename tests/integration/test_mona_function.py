"""The Mona function on the local stack: moto for AWS, the Mona sandbox with faults."""

import dataclasses
import gzip
import json
import time
import uuid

import pytest
import requests

from sandbox.local.stack import LocalStack
from tests.integration.files import drop, jsonl
from tests.integration.webhook_contract import call
from sandbox.monetate import MetadataSizes


@pytest.fixture(scope="module")
def stack():
    env = {"HTTP_MAX_ATTEMPTS": "10", "HTTP_BACKOFF_FACTOR": "0.01", "HTTP_BACKOFF_MAX": "0.05", "MONA_BATCH_SIZE": "100"}
    with LocalStack(metadata=MetadataSizes(customtargets=5, pageevents=5, experiences=2), function_env=env) as stack:
        yield stack


@pytest.fixture
def arc(stack):
    """A fresh context class per test."""
    yield f"orders_{uuid.uuid4().hex[:8]}"
    stack.mona.faults.clear()


def contexts(stack, arc_class):
    found = requests.get(f"{stack.mona_server.url}/_sandbox/contexts", params={"arcClass": arc_class}).json()
    return {c["contextId"]: c for c in found}


def webhook(stack, path, body):
    return call(stack, "POST", path, json=body)


def test_contexts_merge_across_files_and_webhook_calls(stack, arc):
    drop(stack, f"mona/{arc}/a.jsonl", jsonl([{"contextId": "c1", "score": 0.5}, {"id": "c2", "score": 0.1}]))
    drop(stack, f"mona/{arc}/b.csv", b"contextId,country\nc1,FR\n")
    answer = webhook(stack, "/mona/export", {"messages": [{"arcClass": arc, "contextId": "c1", "message": {"label": "ok"}}]})
    assert answer.status_code == 200 and answer.json()["sent"] == 1
    assert webhook(stack, f"/mona/{arc}/messages", [{"contextId": "c2", "label": "bad"}]).json()["sent"] == 1
    found = contexts(stack, arc)
    assert found["c1"]["fields"] == {"score": 0.5, "country": "FR", "label": "ok"}
    assert found["c2"]["fields"] == {"score": 0.1, "label": "bad"}


def test_a_csv_files_numbers_arrive_as_numbers_and_its_blank_cells_leave_fields_as_they_were(stack, arc):
    drop(stack, f"mona/{arc}/first.jsonl", jsonl([{"contextId": "007", "score": 0.1, "country": "FR"}]))
    drop(stack, f"mona/{arc}/scores.csv", b"contextId,score,zip,country\n007,0.93,02134,\n")
    assert contexts(stack, arc)["007"]["fields"] == {"score": 0.93, "zip": "02134", "country": "FR"}


def test_a_context_id_a_spreadsheet_mangled_sets_its_row_aside_rather_than_merging_others_into_one(stack, arc):
    report = drop(stack, f"mona/{arc}/sheet.csv", b"contextId,score\n123456789012,0.1\n1.23457E+11,0.2\n#N/A,0.3\n"
                                                b"1001.0,0.4\n")
    assert (report["sent"], report["rejected"]) == (1, 3)
    assert sorted(report["rejected_reasons"]) == [
        "contextId: found '...', a long number as a spreadsheet shows it, rounded to six figures: format the column"
        " as text before saving the file, which holds what the sheet shows",
        "contextId: found '...', a spreadsheet's error: mend its formula, or name it in CSV_NULLS to read such CSV"
        " cells as empty",
        "contextId: found '...', a whole number written as a float, as pandas writes an integer column that holds a"
        " blank: write the ids as integers (in pandas, as the dtype Int64)"]
    assert list(contexts(stack, arc)) == ["123456789012"]
    drop(stack, f"mona/{arc}/copied.csv", "contextId,score\n\u200b123456789012 ,0.5\n".encode())  # from a web page
    assert list(contexts(stack, arc)) == ["123456789012"] and contexts(stack, arc)["123456789012"]["fields"]["score"] == 0.5


def test_a_csv_written_without_its_header_sends_nothing_rather_than_fields_named_after_its_first_row(stack, arc):
    report = drop(stack, f"mona/{arc}/unloaded.csv", b"o-1,gold,FR\no-2,silver,DE\n")
    assert (report["status"], report["sent"]) == ("failed", 0) and contexts(stack, arc) == {}
    assert report["errors"] == ["the CSV header holds values, not column names ('o-1' is written as 'o-2' under it, on"
                                " line 2): the file's first line must name its columns"]
    drop(stack, f"mona/{arc}/named.csv", b"contextId,tier_v2\no-1,gold\n")  # names with digits, values without
    assert contexts(stack, arc)["o-1"]["fields"] == {"tier_v2": "gold"}


def test_a_csv_written_by_hand_with_spaces_after_its_commas_sends_numbers_and_quoted_lists(stack, arc):
    report = drop(stack, f"mona/{arc}/by-hand.csv", b'contextId, score, tags\nm-1, 0.5, "vip, new"\nm-2, 3, plain\n')
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 2, 0)
    assert {c: found["fields"] for c, found in contexts(stack, arc).items()} == {
        "m-1": {"score": 0.5, "tags": "vip, new"}, "m-2": {"score": 3, "tags": "plain"}}


def test_a_column_the_header_does_not_name_is_never_sent_and_a_value_in_it_sets_its_row_aside(stack, arc):
    report = drop(stack, f"mona/{arc}/trailing.csv", b"contextId,score,\no-1,0.5,\no-2,0.7,oops\n")
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 1, 1)
    assert {c: found["fields"] for c, found in contexts(stack, arc).items()} == {"o-1": {"score": 0.5}}


def test_a_csv_in_the_charset_its_content_type_names_lands_in_its_own_text(stack, arc):
    data = "contextId,city\nc-1,Z\u00fcrich\n".encode("iso-8859-1")
    report = drop(stack, f"mona/{arc}/legacy.csv", data, content_type="text/csv; charset=ISO-8859-1")
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 1, 0)
    assert contexts(stack, arc)["c-1"]["fields"] == {"city": "Zürich"}


def test_messages_in_monas_own_shape_are_taken_as_they_are_from_a_file_and_the_records_webhook(stack, arc):
    sdk = [{"arcClass": arc, "contextId": "s-1", "message": {"label": "fraud"}},
           {"arcClass": arc, "contextId": "s-1", "message": {"tags": "manual"}, "action": "ADD"},
           {"arcClass": "other", "contextId": "s-2", "message": {"label": "ok"}}]
    report = drop(stack, f"mona/{arc}/sdk.jsonl", jsonl(sdk))
    assert (report["status"], report["sent"], report["rejected"]) == ("complete", 2, 1)
    assert list(report["rejected_reasons"]) == ["arcClass: '...', where the folder or path says '...'; a message of"
                                                " another context class goes under its own, or to /mona/export"]
    answer = webhook(stack, f"/mona/{arc}/messages", {"messages": [{"arcClass": arc, "contextId": "s-3", "message": {"v": 1}}]})
    assert answer.status_code == 200 and answer.json()["sent"] == 1
    found = contexts(stack, arc)
    assert (found["s-1"]["fields"], found["s-3"]["fields"]) == ({"label": "fraud", "tags": ["manual"]}, {"v": 1})
    assert "s-2" not in found


def test_json_lines_named_as_a_csv_fail_at_once_and_send_nothing(stack, arc):
    report = drop(stack, f"mona/{arc}/export.csv", jsonl([{"contextId": "o-1", "score": 0.5}] * 2))
    assert (report["status"], report["sent"]) == ("failed", 0)
    assert report["errors"] == [f"mona/{arc}/export.csv: this is JSON, not CSV; name it .jsonl (one object per line)"
                                " or .json (an array)"]
    assert contexts(stack, arc) == {}


def test_a_csv_whose_header_is_in_capitals_lands_in_its_contexts_at_its_times(stack, arc):
    drop(stack, f"mona/{arc}/EXPORT.csv", b"ID,EXPORTTIMESTAMP,SCORE\no-1,1714557600,0.5\no-2,1714557601,0.7\n")
    found = contexts(stack, arc)
    assert {c: (found[c]["fields"], found[c]["mainTime"]) for c in found} == {
        "o-1": ({"SCORE": 0.5}, 1714557600.0), "o-2": ({"SCORE": 0.7}, 1714557601.0)}


def test_a_csv_whose_header_is_in_snake_case_as_warehouses_name_columns_lands_in_its_contexts_at_its_times(stack, arc):
    report = drop(stack, f"mona/{arc}/orders.csv", b"context_id,export_timestamp,score\no-1,1714557600,0.5\n")
    assert report["read_as"] == {"context_id": "contextId", "export_timestamp": "exportTimestamp"}
    found = contexts(stack, arc)
    assert {c: (found[c]["fields"], found[c]["mainTime"]) for c in found} == {"o-1": ({"score": 0.5}, 1714557600.0)}


def test_a_file_whose_metadata_asks_a_dry_run_is_checked_and_nothing_is_sent(stack, arc):
    data = jsonl([{"contextId": "c1", "score": 0.5}, {"contextId": "c2", "exportTimestamp": "soon"}])
    report = drop(stack, f"mona/{arc}/new-feed.jsonl", data, **{"dry-run": "true"})
    assert (report["status"], report["dry_run"], report["checked"], report["rejected"], report["sent"]) == (
        "complete", True, 1, 1, 0)
    assert contexts(stack, arc) == {}


def test_a_records_call_says_which_fields_were_read_as_the_context_id_and_time(stack, arc):
    record = {"context_id": "o-9", "export_timestamp": 1714557600, "score": 1}
    answer = call(stack, "POST", f"/mona/{arc}/messages", json=[record])
    assert answer.status_code == 200 and answer.json()["sent"] == 1
    assert answer.json()["read_as"] == {"context_id": "contextId", "export_timestamp": "exportTimestamp"}
    assert list(contexts(stack, arc)) == ["o-9"]


def test_add_appends_and_new_resets_as_documented(stack, arc):
    records = [{"contextId": "c", "tag": "a", "keep": 1}, {"contextId": "c", "tag": "b", "action": "ADD"},
               {"contextId": "d", "x": 1}, {"contextId": "d", "y": 2, "action": "NEW"}]
    drop(stack, f"mona/{arc}/actions.jsonl", jsonl(records))
    found = contexts(stack, arc)
    assert found["c"]["fields"] == {"tag": ["a", "b"], "keep": 1}
    assert found["d"]["fields"] == {"y": 2}


def test_a_file_retried_after_a_transient_failure_goes_on_where_it_stopped(stack, arc):
    records = [{"contextId": f"c{i}", "visits": 1, "action": "ADD"} for i in range(500)]  # ADD twice would count 2
    records[50]["contextId"] = records[450]["contextId"] = ["not", "text"]  # set aside before and after the failure
    # Batches of 100: the first two are taken, the third keeps answering 503 until the client gives up.
    stack.mona.faults.update({"script": ["pass", "pass"] + ["503"] * 10, "paths": "/export"})
    report = drop(stack, f"mona/{arc}/visits.jsonl", jsonl(records))
    assert report["status"] == "complete" and report["runs"] == 2
    assert (report["read"], report["sent"], report["rejected"]) == (500, 498, 2)
    assert "transient (try 1 of 5; the next in 5 minutes): Mona answered 503 after retries" in report["errors"]
    found = contexts(stack, arc)
    assert len(found) == 498 and all(c["fields"] == {"visits": [1]} for c in found.values())  # each ADD applied once
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()
    assert [json.loads(line)["line"] for line in rejected] == [51, 451]


def test_timestamps_in_seconds_milliseconds_iso_or_the_objects_time(stack, arc):
    records = [{"contextId": "s", "v": 1, "exportTimestamp": 1714557600},
               {"contextId": "ms", "v": 1, "exportTimestamp": 1714557600000},
               {"contextId": "iso", "v": 1, "exportTimestamp": "2024-05-01T10:00:00Z"},
               {"contextId": "excel", "v": 1, "exportTimestamp": "5/1/2024 10:00"},  # as a spreadsheet writes it
               {"contextId": "none", "v": 1}]
    drop(stack, f"mona/{arc}/times.jsonl", jsonl(records))
    found = contexts(stack, arc)
    assert {found[c]["mainTime"] for c in ("s", "ms", "iso", "excel")} == {1714557600.0}
    written = stack.s3.head_object(Bucket=stack.bucket, Key=f"mona/{arc}/times.jsonl")["LastModified"].timestamp()
    assert found["none"]["mainTime"] == pytest.approx(written, abs=1)


def test_bad_records_are_rejected_with_reasons_and_the_rest_sent(stack, arc):
    records = [{"contextId": "ok", "v": 1}, {"contextId": "bad", "v": 1, "exportTimestamp": 12345},
               {"contextId": "act", "v": 1, "action": "MERGE"}]
    report = drop(stack, f"mona/{arc}/bad.jsonl", jsonl(records))
    assert (report["read"], report["sent"], report["rejected"]) == (3, 1, 2)
    rejected = [json.loads(line) for line in
                stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()]
    assert [r["line"] for r in rejected] == [2, 3]
    assert "exportTimestamp" in rejected[0]["reasons"][0] and "action" in rejected[1]["reasons"][0]


def test_messages_mona_refuses_come_back_with_their_line_and_reason_and_the_rest_stand(stack, arc):
    from martech.mona_delivery import export_batch

    client = stack.functions["MonaFunction"].module.mona()
    # The sandbox fails a message whose contextId is a list; the builder never makes one, so send it directly.
    outcome = export_batch(client, [(7, {"arcClass": arc, "contextId": ["list"], "message": {"v": 1}}),
                                    (8, {"arcClass": arc, "contextId": "fine", "message": {"v": 1}})])
    assert outcome.sent == 1 and outcome.refused[0][0] == 7 and "contextId" in outcome.refused[0][1][0]
    assert list(contexts(stack, arc)) == ["fine"]


def test_a_top_level_error_rejects_the_batch_with_its_reason(stack, arc):
    from martech.mona_delivery import export_batch

    client = stack.functions["MonaFunction"].module.mona()
    client.tokens.token()
    saved = client.tokens.user_id
    client.tokens.user_id = "someone-else"
    try:
        outcome = export_batch(client, [(2, {"arcClass": arc, "contextId": "a", "message": {"v": 1}})])
    finally:
        client.tokens.user_id = saved
    assert outcome.sent == 0 and "userId" in outcome.refused[0][1][0]


def test_429_5xx_and_dropped_connections_lose_nothing(stack, arc):
    stack.mona.faults.update({"rate_429": 0.1, "rate_500": 0.2, "rate_503": 0.1, "rate_drop": 0.05, "retry_after": 0,
                              "seed": 3, "paths": "^/export", "script": ["500", "429", "drop"]})
    records = [{"contextId": f"c{i}", "n": i} for i in range(1000)]
    report = drop(stack, f"mona/{arc}/bursty.jsonl.gz", gzip.compress(jsonl(records)))
    stack.mona.faults.clear()
    assert report["status"] == "complete" and report["sent"] == 1000
    found = contexts(stack, arc)
    assert len(found) == 1000 and all(c["fields"] == {"n": int(c["contextId"][1:])} for c in found.values())


def overwrites_twice(n):
    """Each context overwritten twice, the second time a batch (of 100) later."""
    return [{"contextId": f"c{i}", "v": v} for v in (1, 2) for i in range(n)]


def test_a_context_overwritten_in_a_later_batch_keeps_the_later_value_though_the_earlier_batch_was_retried(stack, arc):
    throttled_before = [e["status"] for e in stack.mona.received("/export")].count(429)
    stack.mona.faults.update({"script": ["429"], "retry_after": 0.3, "paths": "^/export"})
    report = drop(stack, f"mona/{arc}/twice.jsonl", jsonl(overwrites_twice(100)))
    assert (report["status"], report["sent"], report["batches"]) == ("complete", 200, 2)
    assert [e["status"] for e in stack.mona.received("/export")].count(429) == throttled_before + 1
    assert {c["fields"]["v"] for c in contexts(stack, arc).values()} == {2}


def test_export_webhook_keeps_a_contexts_messages_in_order_across_batches(stack, arc):
    stack.mona.faults.update({"script": ["429"], "retry_after": 0.3, "paths": "^/export"})
    messages = [{"arcClass": arc, "contextId": m["contextId"], "message": {"v": m["v"]}} for m in overwrites_twice(100)]
    answer = webhook(stack, "/mona/export", {"messages": messages})
    assert answer.status_code == 200 and answer.json()["sent"] == 200
    assert {c["fields"]["v"] for c in contexts(stack, arc).values()} == {2}


def _with_settings(stack, **changes):
    module = stack.functions["MonaFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, **changes)
    return lambda: setattr(module, "settings", settings)


def test_csv_nulls_leave_a_contexts_fields_as_they_were(stack, arc):
    drop(stack, f"mona/{arc}/first.jsonl", jsonl([{"contextId": "o-1", "score": 0.1, "country": "FR"}]))
    restore = _with_settings(stack, csv_nulls="NULL")
    try:
        report = drop(stack, f"mona/{arc}/nulls.csv", b"contextId,score,country\no-1,0.5,NULL\n")
    finally:
        restore()
    assert report["sent"] == 1 and contexts(stack, arc)["o-1"]["fields"] == {"score": 0.5, "country": "FR"}


def _not_sent(answer, messages):
    return [messages[int(index)] for index in answer.json()["not_sent_reasons"]]


def test_an_export_webhook_whose_mona_fails_part_way_says_what_was_not_sent_and_those_complete_it(stack, arc):
    restore = _with_settings(stack, mona_concurrency=1)  # batches of 100, one after the other: the third keeps failing
    stack.mona.faults.update({"script": ["pass", "pass"] + ["503"] * 10, "paths": "^/export"})
    messages = [{"arcClass": arc, "contextId": f"c{i}", "message": {"n": i}, "action": "ADD"} for i in range(500)]
    try:
        answer = webhook(stack, "/mona/export", {"messages": messages})
    finally:
        restore()
        stack.mona.faults.clear()
    assert answer.status_code == 503 and "not_sent_reasons" in answer.json()["message"]
    assert (answer.json()["sent"], answer.json()["not_sent"]) == (200, 300)
    reasons = answer.json()["not_sent_reasons"]
    assert reasons["200"][0].startswith("not taken: Mona answered 503") and reasons["499"][0].startswith("not sent:")
    again = webhook(stack, "/mona/export", {"messages": _not_sent(answer, messages)})
    assert again.status_code == 200 and again.json()["sent"] == 300
    found = contexts(stack, arc)
    assert len(found) == 500 and all(c["fields"]["n"] == [int(cid[1:])] for cid, c in found.items())  # ADD: each once


def test_an_export_webhook_stops_sending_before_api_gateway_stops_waiting_and_says_what_it_did_not_send(stack, arc):
    restore = _with_settings(stack, webhook_seconds=0.5)
    stack.mona.faults.update({"latency": 0.3})  # ten batches, four at a time, would take 0.9 s
    messages = [{"arcClass": arc, "contextId": f"c{i}", "message": {"n": i}} for i in range(1000)]
    try:
        began = time.monotonic()
        answer = webhook(stack, "/mona/export", {"messages": messages})
        took = time.monotonic() - began
    finally:
        restore()
        stack.mona.faults.clear()
    counts = answer.json()
    assert answer.status_code == 503 and took < 1.0 and "time ran out" in counts["message"]
    assert counts["not_sent"] >= 200 and counts["sent"] + counts["not_sent"] == 1000
    again = webhook(stack, "/mona/export", {"messages": _not_sent(answer, messages)})
    assert again.status_code == 200 and again.json()["sent"] == counts["not_sent"]
    assert {cid: c["fields"]["n"] for cid, c in contexts(stack, arc).items()} == {f"c{i}": i for i in range(1000)}


def test_an_export_webhook_body_over_the_limit_is_refused_with_413_and_nothing_sent(stack, arc):
    restore = _with_settings(stack, webhook_max_bytes=2000)
    try:
        answer = webhook(stack, f"/mona/{arc}/messages", [{"contextId": f"c{i}", "note": "x" * 50} for i in range(40)])
    finally:
        restore()
    assert answer.status_code == 413 and "drop a file" in answer.json()["message"] and contexts(stack, arc) == {}


def test_an_export_webhook_with_more_messages_than_an_answer_can_carry_is_refused_with_413(stack, arc):
    restore = _with_settings(stack, webhook_max_records=5)
    try:
        exported = webhook(stack, "/mona/export", {"messages": [{"arcClass": arc, "contextId": f"c{i}", "message": {}}
                                                                for i in range(6)]})
        plain = webhook(stack, f"/mona/{arc}/messages", [{"contextId": f"c{i}"} for i in range(6)])
    finally:
        restore()
    assert exported.status_code == plain.status_code == 413 and contexts(stack, arc) == {}


def test_a_file_cut_short_sends_what_was_read_before_the_break_and_fails(stack, arc):
    whole = gzip.compress(jsonl([{"contextId": f"c{i}", "n": i} for i in range(5000)]))  # past one 64 KiB chunk
    report = drop(stack, f"mona/{arc}/cut.jsonl.gz", whole[:-12])  # the gzip trailer and a little more lost
    assert report["status"] == "failed" and "cannot decompress" in report["errors"][0]
    assert report["sent"] > 2000 and report["failed"] == 0 and report["read"] == report["sent"]
    assert len(contexts(stack, arc)) == report["sent"]


def test_an_add_batch_whose_fate_is_unknown_is_reported_not_resent(stack, arc):
    # ADD appends: resending after a 500 could append twice, so the batch is reported instead.
    stack.mona.faults.update({"script": ["500"], "paths": "^/export"})
    records = [{"contextId": f"c{i}", "n": i, "action": "ADD"} for i in range(150)]
    report = drop(stack, f"mona/{arc}/adds.jsonl", jsonl(records))
    assert report["status"] == "partial" and report["unknown"] in (50, 100) and report["unknown"] + report["sent"] == 150
    assert all(len(c["fields"]["n"]) == 1 for c in contexts(stack, arc).values())


def test_a_token_that_dies_mid_file_is_renewed(stack, arc):
    client = stack.functions["MonaFunction"].module.mona()
    # Tokens die 0.4 s after they are issued; 20 batches, 4 at a time, 0.1 s each, take longer than that,
    # while a fresh token outlives a few requests.
    stack.mona.faults.update({"token_ttl": 0.4, "latency": 0.1})
    client.tokens.invalidate(client.tokens._access)
    records = [{"contextId": f"c{i}", "n": i} for i in range(2000)]
    report = drop(stack, f"mona/{arc}/slow.jsonl", jsonl(records))
    assert report["status"] == "complete" and report["sent"] == 2000
    assert report["token_refreshes"] >= 2 and stack.mona.stats()["by_status"].get("401", 0) >= 1
    assert len(contexts(stack, arc)) == 2000


def test_a_duplicate_s3_event_exports_nothing_twice(stack, arc):
    key = f"mona/{arc}/once.jsonl"
    drop(stack, key, jsonl([{"contextId": "c", "n": 1, "action": "ADD"}]))
    version = stack.s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
    event = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": stack.bucket},
                                                                   "object": {"key": key, "versionId": version}}}]}
    stack.sqs.send_message(QueueUrl=stack.queue_urls["MonaQueue"], MessageBody=json.dumps(event))
    stack.wait_idle()
    assert contexts(stack, arc)["c"]["fields"] == {"n": [1]}


@pytest.mark.parametrize("body", [{"messages": []}, {"messages": "x"}, {"userId": "nobody", "messages": [
    {"arcClass": "a", "message": {"v": 1}}]}, {"defaultAction": "MERGE", "messages": [{"arcClass": "a", "message": {}}]}])
def test_export_webhook_refuses_what_mona_would_refuse(stack, body):
    answer = webhook(stack, "/mona/export", body)
    assert answer.status_code == 400 and answer.json()["topLevelError"]


def test_a_query_parameter_the_call_does_not_take_is_refused(stack, arc):
    answer = call(stack, "POST", f"/mona/{arc}/messages", json=[{"contextId": "c", "v": 1}], params={"defaultAction": "ADD"})
    assert answer.status_code == 400 and answer.json()["message"].endswith("?defaultAction; it takes ?dry_run")
    answer = call(stack, "POST", "/mona/export", json={"messages": [{"arcClass": arc, "message": {"v": 1}}]},
                  params={"dry_run": "maybe"})
    assert answer.status_code == 400 and answer.json()["message"] == "?dry_run=maybe: write true or false"
    assert contexts(stack, arc) == {}


@pytest.mark.parametrize("path", ["/mona/export", "/mona/{arc}/messages"])
def test_a_dry_run_checks_every_message_and_sends_none(stack, arc, path):
    messages = [{"arcClass": arc, "contextId": "c1", "message": {"v": 1}}, {"arcClass": arc, "message": {"v": 2}}]
    body = {"messages": messages}
    answer = call(stack, "POST", path.format(arc=arc), json=body, params={"dry_run": "true"})
    assert answer.status_code == 200
    assert answer.json() == {"total": 2, "sent": 0, "failed": 0, "unknown": 0, "failure_reasons": {}, "not_sent": 2,
                             "not_sent_reasons": {"0": ["valid; not sent: dry_run=true only checks"],
                                                  "1": ["valid; not sent: dry_run=true only checks"]}}
    messages[1]["action"] = "MERGE"
    answer = call(stack, "POST", path.format(arc=arc), json=body, params={"dry_run": "true"})
    assert answer.status_code == 400 and list(answer.json()["failure_reasons"]) == ["1"]
    assert contexts(stack, arc) == {}  # nothing reached Mona


def test_an_export_of_no_messages_is_refused_saying_so(stack):
    answer = webhook(stack, "/mona/export", {"messages": []})
    assert answer.status_code == 400 and answer.json()["topLevelError"].startswith("messages is empty")


@pytest.mark.parametrize("value", ["NaN", "-Infinity", "1e400"])
def test_webhook_bodies_holding_what_json_has_not_are_refused_not_sent_on_as_null(stack, arc, value):
    export = f'{{"messages": [{{"arcClass": "{arc}", "contextId": "c", "message": {{"score": {value}}}}}]}}'
    answer = call(stack, "POST", "/mona/export", data=export)
    assert answer.status_code == 400 and "line 1, column" in answer.json()["topLevelError"]
    answer = call(stack, "POST", f"/mona/{arc}/messages", data=f'[{{"contextId": "c", "score": {value}}}]')
    assert answer.status_code == 400 and answer.json()["message"].startswith("the body is not valid JSON: ")
    assert contexts(stack, arc) == {}


def test_webhook_bodies_that_are_not_utf8_are_refused_saying_so(stack, arc):
    export = call(stack, "POST", "/mona/export", data=b'{"messages": [{"x": "\xfc"}]}')
    assert export.status_code == 400 and export.json() == {"topLevelError": "the body is not UTF-8 text: byte 22 is 0xfc"}
    records = call(stack, "POST", f"/mona/{arc}/messages", data=b'[{"x": "\xfc"}]')
    assert records.status_code == 400 and records.json() == {"message": "the body is not UTF-8 text: byte 9 is 0xfc"}


def test_numbers_json_holds_no_exact_form_of_arrive_as_written_or_are_set_aside_with_the_rest_sent(stack, arc):
    sims = drop(stack, f"mona/{arc}/sims.csv", b"contextId,iccid,count\nc1,89014103211118510720,18446744073709551615\n")
    assert (sims["status"], sims["sent"]) == ("complete", 1)  # the 20-digit SIM number, past 64 bits, stays text
    scores = drop(stack, f"mona/{arc}/scores.json",
                  b'[{"contextId": "c2", "score": NaN},\n {"contextId": "c3", "big": 123456789012345678901234567890}]')
    assert (scores["status"], scores["read"], scores["sent"], scores["rejected"]) == ("complete", 2, 1, 1)
    found = contexts(stack, arc)
    assert found["c1"]["fields"] == {"iccid": "89014103211118510720", "count": 18446744073709551615}
    assert found["c3"]["fields"] == {"big": 1.2345678901234568e+29}  # as orjson, and JSON Lines, read it
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key=scores["rejected_rows"])["Body"].read()
    assert json.loads(rejected) == {"line": 1, "index": 0, "reasons": ["invalid JSON: NaN is not JSON: write null or a number"],
                                    "record": {"contextId": "c2", "score": "NaN"}}


def test_export_webhook_with_an_invalid_message_sends_nothing(stack, arc):
    body = {"messages": [{"arcClass": arc, "contextId": "a", "message": {"v": 1}},
                         {"arcClass": arc, "contextId": "b", "message": {"v": 1}, "exportTimestamp": 42}]}
    answer = webhook(stack, "/mona/export", body)
    assert answer.status_code == 400 and list(answer.json()["failure_reasons"]) == ["1"]
    assert contexts(stack, arc) == {}


def test_export_webhook_accepts_the_sdk_shape_with_nulls_and_fills_the_user_id(stack, arc):
    message = {"arcClass": arc, "contextId": "n", "message": {"v": 1}, "action": None, "exportTimestamp": None,
               "sendTimestamp": None, "sampleConfigName": None}
    assert webhook(stack, "/mona/export", {"messages": [message], "defaultAction": "ADD"}).status_code == 200
    assert contexts(stack, arc)["n"]["fields"] == {"v": [1]}


def test_a_time_without_an_offset_is_read_in_the_time_zone_set_in_an_export_call_and_a_file_in_monas_form(stack, arc):
    from zoneinfo import ZoneInfo

    restore = _with_settings(stack, time_zone=ZoneInfo("America/New_York"))
    try:
        called = {"arcClass": arc, "contextId": "call", "message": {"v": 1}, "exportTimestamp": "2024-05-01T06:00:00"}
        assert webhook(stack, "/mona/export", {"messages": [called]}).status_code == 200
        dropped = {**called, "contextId": "file", "exportTimestamp": "2024-01-15 05:00:00"}
        assert drop(stack, f"mona/{arc}/zoned.jsonl", jsonl([dropped]))["sent"] == 1
    finally:
        restore()
    found = contexts(stack, arc)
    assert found["call"]["mainTime"] == 1714557600.0  # 10:00 UTC: New York is 4 hours behind in May
    assert found["file"]["mainTime"] == 1705312800.0  # and 5 in January


def test_a_file_too_big_for_one_run_goes_on_in_later_runs_and_nothing_is_added_twice(stack, arc):
    module = stack.functions["MonaFunction"].module
    settings = module.settings
    module.settings = dataclasses.replace(settings, file_run_margin_seconds=900)  # each run takes 500 records
    records = [{"contextId": f"c{i}", "n": i, "action": "ADD"} for i in range(1200)]
    records[800] = {"contextId": "c800", "n": 800, "action": "MERGE"}  # not an action: rejected by the second run
    try:
        report = drop(stack, f"mona/{arc}/big.jsonl", jsonl(records))
    finally:
        module.settings = settings
    assert (report["status"], report["runs"]) == ("complete", 3)
    assert (report["read"], report["sent"], report["rejected"]) == (1200, 1199, 1)
    found = contexts(stack, arc)
    assert len(found) == 1199 and all(found[f"c{i}"]["fields"] == {"n": [i]} for i in range(1200) if i != 800)
    rejected = stack.s3.get_object(Bucket=stack.bucket, Key=report["rejected_rows"])["Body"].read().splitlines()
    assert [json.loads(line)["line"] for line in rejected] == [801]
