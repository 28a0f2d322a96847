"""`make run` as a test: the samples in events/ go through the whole local stack."""

from sandbox.local.__main__ import main


def test_make_run_delivers_the_samples_and_summarises_them(capsys):
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "monetate/customers/customers.csv: complete - read 8, sent 4, rejected 4, failed 0" in out
    assert "rejected s3://local-inbox-123456789012/rejected/monetate/customers/customers.csv.jsonl" in out
    assert "POST /monetate/customers/records: 200 - accepted 2, rejected 0" in out
    assert "monetate dataset customers: 6" in out
