"""Metadata snapshots, change events, schedules and Session Stream rows, without a network."""

import datetime as dt
import io
import json

import pytest

from martech.metadata_refresh import MAX_DETAIL_BYTES, change_event
from martech.metadata_snapshots import as_csv
from martech.monetate_metadata import Changes
from martech.session_stream import Interpretation, Names, interpret, interpret_session, output_key
from sandbox.local.schedules import interval_seconds, scheduled_event

WHEN = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("expression, seconds", [("rate(1 hour)", 3600), ("rate(5 minutes)", 300),
                                                 ("rate(2 days)", 172800), ("cron(0 * * * ? *)", None)])
def test_schedule_expressions_tick_at_their_rate(expression, seconds):
    assert interval_seconds(expression) == seconds


def test_a_scheduled_event_looks_like_eventbridge_s():
    event = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/x", WHEN)
    assert (event["source"], event["detail-type"], event["time"]) == ("aws.events", "Scheduled Event",
                                                                       "2026-11-23T10:00:00Z")


def test_a_change_event_names_the_history_object_and_what_changed():
    entry = change_event("pageevent", Changes(added=[3], removed=[1], renamed=[{"id": 2, "from": "a", "to": "b"}]),
                         WHEN, 10, "default")
    detail = json.loads(entry["Detail"])
    assert detail["history"] == "metadata/history/2026-11-23T100000.000000Z/pageevent.json"
    assert (detail["added"], detail["removed"], detail["renamed"]) == ([3], [1], [{"id": 2, "from": "a", "to": "b"}])
    assert detail["counts"] == {"added": 1, "removed": 1, "renamed": 1, "items": 10}
    assert "truncated" not in detail


def test_a_change_too_big_for_one_event_is_cut_and_marked():
    entry = change_event("variant", Changes(added=list(range(10**7, 10**7 + 60_000))), WHEN, 60_000, "default")
    detail = json.loads(entry["Detail"])
    assert len(entry["Detail"]) <= MAX_DETAIL_BYTES and detail["truncated"] is True
    assert detail["counts"]["added"] == 60_000 and detail["added"] == list(range(10**7, 10**7 + len(detail["added"])))


def test_the_csv_has_one_row_per_item_with_lists_as_json():
    text = as_csv([{"id": 1, "title": "A", "splits": [5, 6]}, {"id": 2, "title": None}]).decode()
    assert text.splitlines() == ["id,splits,title", '1,"[5,6]",A', "2,,"]


def test_an_offer_whose_variant_belongs_to_another_experience_has_no_split():
    names = Names(variant={7: {"id": 7, "experience_id": 100, "experience_name": "Hero", "split_name": "B"}},
                  experience={100: {"id": 100, "experience_name": "Hero"}, 200: {"id": 200, "experience_name": "Cart"}})
    seen = Interpretation()
    row = interpret_session({"offers": ["100-7", "200-7"]}, names, seen)
    assert [(e["experience_name"], e["split"]) for e in row["interpreted"]["experiences"]] == [("Hero", "B"), ("Cart", None)]
    assert dict(seen.unknown["variant"]) == {"200-7": 1} and "experience" not in seen.unknown


def test_a_session_of_another_shape_is_set_aside_with_why_and_the_others_are_interpreted():
    lines = [{"session_id": "s1", "city": "Denver", "page_event_ids": {"7": "2026-11-23T10:00:00Z"}, "offers": ["100-7"]},
             {"session_id": "s2", "page_event_ids": ["7"], "offers": "100-7", "custom_targets": [1]},
             {"session_id": "s3", "city": {"name": "Lyon"}, "offers": None},
             {"session_id": "s4", "city": 75001, "custom_targets": {"3": True}}]
    stream = io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    out, rejected = io.BytesIO(), []
    seen = interpret(stream, "monetate-sessions/x.jsonl", Names(), out, lambda *row: rejected.append(row))
    assert [json.loads(line)["session_id"] for line in out.getvalue().splitlines()] == ["s1", "s4"]
    assert (seen.sessions, seen.rejected) == (2, 2)
    assert [(line, reasons) for line, reasons, _ in rejected] == [
        (2, ["page_event_ids: expected an object of page event ids and their times, found an array",
             'offers: expected an array of offers ("<experience id>-<variant id>"), found text',
             "custom_targets: expected an object of custom target ids and their values, found an array"]),
        (3, ["city: expected text, found an object"])]
    assert rejected[0][2] == lines[1]
    assert dict(seen.events_by_city) == {"Denver": {"unknown page event 7": 1}}


def test_interpreted_files_mirror_the_session_key():
    assert output_key("monetate-sessions/2026/11/23/10.json.gz") == "interpreted/2026/11/23/10.json.gz"
    with pytest.raises(ValueError):
        output_key("monetate/customers/x.csv")
