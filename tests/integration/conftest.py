import boto3
import pytest
from moto import mock_aws

INBOX = "inbox"  # the bucket of the tests that run against S3 in moto in process


@pytest.fixture
def s3(monkeypatch):
    """An S3 client on moto in process, with the inbox bucket made and versioning on, as the template makes it."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # a local stack started earlier may have set it
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=INBOX)
        client.put_bucket_versioning(Bucket=INBOX, VersioningConfiguration={"Status": "Enabled"})
        yield client
