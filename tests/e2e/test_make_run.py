"""`make run` as a test: the samples in events/ go through the whole local stack."""

import pytest

from sandbox.local.__main__ import main


def test_make_run_delivers_the_samples_and_summarises_them(capsys):
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "monetate/customers/customers.csv: complete - read 8, sent 4, rejected 4, failed 0" in out
    assert "rejected s3://local-inbox-123456789012/rejected/monetate/customers/customers.csv.jsonl" in out
    assert "line 5: lifetime_value: expected a number, found 'lots'" in out  # why, for the first three
    assert "and 1 more; by reason, most first:" in out  # the report's counts, its values left out
    assert "      1  lifetime_value: expected a number, found '...'" in out
    assert "      1  last_purchase: " in out  # the fourth row's reason too: every row set aside is counted
    assert "optimove/loyalty/upsert/loyalty.upsert.csv: complete - read 5, sent 3, rejected 1, failed 0, duplicates 1" in out
    assert "POST /monetate/customers/records: 200 - accepted 2, rejected 0" in out
    assert "PUT /optimove/connections/loyalty/data?merge=true: 200 - status success, updated_records 1, reads 1" in out
    assert "monetate dataset customers: 6" in out
    assert "optimove connection loyalty: 3" in out
    assert "mona/orders/orders.jsonl: complete - read 6, sent 5, rejected 1, failed 0" in out
    assert "POST /mona/export: 200 - total 2, sent 2, failed 0" in out
    assert "mona context class orders: 4 contexts" in out
    assert "pageevent: 300 items, 300 added" in out  # the schedule fired once: the first snapshot
    assert "5 change event(s) on EventBridge" in out
    assert "File run finished events on EventBridge: 4 (4 complete)" in out  # one per file: three and the sessions
    assert "monetate-sessions/2026-11-23-10.jsonl: complete - read 40, sent 40, rejected 0" in out
    assert "unknown ids {'pageevent': ['299999']}; refresh triggered: False" in out
    assert "GET /metadata/pageevent?ids=200000,200001: 200" in out
    assert '"level":"INFO"' not in out  # the summary alone: the functions log at INFO under `make serve` only


def test_make_run_with_files_of_your_own_delivers_them_instead_of_the_samples(tmp_path, capsys):
    mine = tmp_path / "day.csv"
    mine.write_text("Customer ID,tier,last_purchase,notes\nU-1,gold,25/12/2024,x\nU-2,silver,31/31/2024,y\n")
    events = tmp_path / "events.jsonl"
    events.write_text('{"id": "o-1", "score": 0.5}\n')
    assert main(["run", "--file", f"{mine}=monetate/customers/", "--file", f"{events}=mona/orders/today.jsonl",
                 "--env", "DATE_ORDER=day-first", "--env", "UNKNOWN_COLUMNS=drop"]) == 0
    out = capsys.readouterr().out
    assert "monetate/customers/day.csv: complete - read 2, sent 1, rejected 1, failed 0" in out  # 25/12 read day first
    assert "line 3: last_purchase: expected a date or date-time" in out
    assert "read as  Customer ID -> customer_id" in out and "left out notes: not a field of schema customers" in out
    assert "mona/orders/today.jsonl: complete - read 1, sent 1, rejected 0" in out
    assert "customers.csv" not in out and "orders.jsonl" not in out and "Webhooks" not in out  # not the samples


def test_make_run_ends_in_failure_when_a_file_of_yours_does_not_complete_and_says_why(tmp_path, capsys):
    unloaded = tmp_path / "unloaded.csv"
    unloaded.write_text("U-1,gold,12.5\nU-2,silver,3\n")  # a warehouse unload without its header
    assert main(["run", "--file", f"{unloaded}=monetate/customers/"]) == 1
    out = capsys.readouterr().out
    assert "monetate/customers/unloaded.csv: failed - read 0, sent 0" in out
    assert "File run finished events on EventBridge: 1 (1 failed)" in out
    assert "error    the CSV header (line 1) holds values, not column names ('12.5')" in out


@pytest.mark.parametrize("given, said", [
    ("day.csv", "'day.csv': write a file as PATH=KEY, e.g. day.csv=monetate/customers/"),
    ("{missing}=monetate/customers/", "no such file"),
    ("{mine}=monetat/customers/", "monetat/customers/day.csv: no function takes files there; keys start with monetate/"),
])
def test_a_file_to_drop_that_is_missing_or_would_reach_no_function_is_refused_before_anything_starts(
        tmp_path, monkeypatch, capsys, given, said):
    from sandbox.local import __main__ as local

    mine = tmp_path / "day.csv"
    mine.write_text("customer_id\nU-1\n")
    monkeypatch.setattr(local, "LocalStack", lambda **kwargs: pytest.fail("the stack was started"))
    with pytest.raises(SystemExit) as exited:
        main(["run", "--file", given.format(mine=mine, missing=tmp_path / "missing.csv")])
    assert exited.value.code == 2 and said in capsys.readouterr().err
