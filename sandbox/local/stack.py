"""The whole bundle on one machine: moto in server mode for AWS, the vendor sandboxes,
the template's resources made in moto, and the functions fed as AWS would feed them.

Example::

    with LocalStack() as stack:
        stack.s3.upload_file("customers.csv", stack.bucket, "monetate/customers/customers.csv")
        stack.wait_idle()
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from sandbox.faults import Faults
from sandbox.keys import generate_key_pair
from sandbox.local.api import LocalApi
from sandbox.local.functions import LocalFunction, import_layer
from sandbox.local.queues import QueuePoller
from sandbox.local.schedules import ScheduleTimer
from sandbox.local.template import PSEUDO, Template
from sandbox.mona import MonaSandbox
from sandbox.monetate import MetadataSizes, MonetateSandbox, MonetateSettings
from sandbox.optimove import OptimoveSandbox, OptimoveSettings
from sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
MONETATE_API_USER = "api-1-local"


def _forget_cached_aws_clients() -> None:
    """AWS clients live as long as a container; a new stack is a new container, pointing at a new moto.

    Powertools keeps one Secrets Manager client per process, the layer one S3, one SQS and one EventBridge client.
    """
    from aws_lambda_powertools.utilities.parameters import base

    base.DEFAULT_PROVIDERS.clear()
    handlers = sys.modules.get("martech.handlers")
    if handlers is not None:
        for client in (handlers.s3, handlers.sqs, handlers.events):
            client.cache_clear()


def _notifications_name_versions() -> None:
    """S3 names the object version in each notification of a bucket with versioning on; moto leaves it out,
    so that a retried message would deliver whatever version is current by then, not the one dropped."""
    from moto.s3 import notifications

    made = notifications._get_s3_event
    if getattr(made, "names_versions", False):
        return

    def with_version(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = made(event_name, bucket, key, notification_id)
        if bucket.is_versioned and key.version_id != "null":
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = key.version_id
        return event

    with_version.names_versions = True  # type: ignore[attr-defined]
    notifications._get_s3_event = with_version


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalStack:
    def __init__(self, root: Path = ROOT, monetate_faults: Faults | None = None, optimove_faults: Faults | None = None,
                 mona_faults: Faults | None = None,
                 metadata: MetadataSizes | None = None, retry_after: int = 1,
                 function_env: dict[str, str] | None = None, log_level: str = "WARNING") -> None:
        self.root = root
        self.log_level = log_level  # the template's LogLevel: the functions' Powertools loggers
        self.function_env = function_env or {}  # overrides of the template's environment, e.g. for tests
        self.monetate_faults = monetate_faults
        self.optimove_faults = optimove_faults
        self.mona_faults = mona_faults
        self.metadata = metadata or MetadataSizes(customtargets=300, pageevents=300, experiences=200)
        self.retry_after = retry_after
        self.functions: dict[str, LocalFunction] = {}
        self.pollers: list[QueuePoller] = []
        self.schedules: dict[str, list[ScheduleTimer]] = {}  # function logical id -> its schedules
        self.queue_urls: dict[str, str] = {}

    # -- start and stop --------------------------------------------------------------------
    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
        _notifications_name_versions()
        port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.moto.start()
        self.aws_endpoint = f"http://127.0.0.1:{port}"
        # moto keeps its state per process: an earlier stack's resources must not leak into this one.
        urllib.request.urlopen(urllib.request.Request(f"{self.aws_endpoint}/moto-api/reset", method="POST"))
        os.environ.update({
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": PSEUDO["AWS::Region"], "AWS_REGION": PSEUDO["AWS::Region"],
            "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
        })
        _forget_cached_aws_clients()
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        self.events = boto3.client("events")

        self.monetate = MonetateSandbox(MonetateSettings(metadata=self.metadata), faults=self.monetate_faults)
        self.monetate_server = SandboxServer(self.monetate).start()
        self.optimove = OptimoveSandbox(OptimoveSettings(rate_limit=None), faults=self.optimove_faults)
        self.optimove_server = SandboxServer(self.optimove).start()
        self.mona = MonaSandbox(faults=self.mona_faults)
        self.mona_server = SandboxServer(self.mona).start()

        self.template = Template(self.root / "template.yaml", {
            "RetailerShortname": self.monetate.settings.retailer,
            "MonetateBaseUrl": self.monetate_server.url,
            "OptimoveBaseUrl": f"{self.optimove_server.url}/api/data-connections/v1",
            "MonaAuthUrl": f"{self.mona_server.url}/identity/resources/auth/v1/api-token",
            "MonaExportUrl": f"{self.mona_server.url}/export",
            "LogLevel": self.log_level,
        })
        self._make_resources()
        self.api = LocalApi(api_key=secrets.token_urlsafe(24), stage=self.template.parameters["Environment"])
        for spec in self.template.functions():
            function = LocalFunction(spec, self.function_env)
            self.functions[spec.logical_id] = function
            for queue, batch_size in spec.queues:
                self.pollers.append(QueuePoller(self.sqs, self.queue_urls[queue], self.template.physical[queue]["Arn"],
                                                function, batch_size, self.retry_after).start())
            for method, path in spec.routes:
                self.api.add(method, path, function)
            for i, (expression, _) in enumerate(spec.schedules):
                rule = self.events.put_rule(Name=f"{spec.logical_id}-schedule-{i}", ScheduleExpression=expression)
                self.schedules.setdefault(spec.logical_id, []).append(
                    ScheduleTimer(function, rule["RuleArn"], expression).start())
        self.api.start()
        return self

    def stop(self) -> None:
        for timer in (t for timers in self.schedules.values() for t in timers):
            timer.stop()
        for poller in self.pollers:
            poller.stop()
        self.api.stop()
        self.monetate_server.stop()
        self.optimove_server.stop()
        self.mona_server.stop()
        self.moto.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- the template's resources in moto ------------------------------------------------------
    def _make_resources(self) -> None:
        t = self.template
        queues = t.of_type("AWS::SQS::Queue")
        for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q].get("Properties", {})):
            self._make_queue(logical_id, queues[logical_id].get("Properties", {}))
        dynamodb = boto3.client("dynamodb")
        for logical_id, resource in t.of_type("AWS::DynamoDB::Table").items():
            props = resource["Properties"]
            name = f"{PSEUDO['AWS::StackName']}-{logical_id}"
            dynamodb.create_table(TableName=name, KeySchema=props["KeySchema"],
                                  AttributeDefinitions=props["AttributeDefinitions"], BillingMode="PAY_PER_REQUEST")
            t.physical[logical_id] = {"Ref": name, "Arn": f"arn:aws:dynamodb:{PSEUDO['AWS::Region']}:"
                                                           f"{PSEUDO['AWS::AccountId']}:table/{name}"}
        for logical_id, resource in t.of_type("AWS::S3::Bucket").items():
            self._make_bucket(logical_id, resource["Properties"])
        self._make_secrets()
        self._watch_events()

    def _watch_events(self) -> None:
        """Local queues that receive the metadata change events and the File run finished events, so runs
        and tests can see them."""
        import_layer()
        from martech.file_events import EVENT_SOURCE as FILE_EVENTS
        from martech.metadata_refresh import EVENT_SOURCE as METADATA_CHANGES

        self.event_queue_urls: dict[str, str] = {}  # each watched kind of event, and the queue a rule sends it to
        for name, source in (("metadata-changes", METADATA_CHANGES), ("file-events", FILE_EVENTS)):
            url = self.sqs.create_queue(QueueName=f"{PSEUDO['AWS::StackName']}-{name}")["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
            self.events.put_targets(Rule=name, Targets=[{"Id": "local-queue", "Arn": arn}])
            self.event_queue_urls[name] = url

    def metadata_changes(self) -> list[dict[str, Any]]:
        """The metadata change events published since the last call, oldest first."""
        return self._events_since("metadata-changes")

    def file_events(self) -> list[dict[str, Any]]:
        """The File run finished events published since the last call, oldest first."""
        return self._events_since("file-events")

    def _events_since(self, name: str) -> list[dict[str, Any]]:
        found = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.event_queue_urls[name], MaxNumberOfMessages=10)
            if not messages.get("Messages"):
                return found
            for message in messages["Messages"]:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.event_queue_urls[name], ReceiptHandle=message["ReceiptHandle"])

    def run_schedule(self, function: str) -> Any:
        """Fire the function's first schedule now, as EventBridge would."""
        return self.schedules[function][0].fire()

    def _make_queue(self, logical_id: str, props: dict[str, Any]) -> None:
        t = self.template
        name = f"{PSEUDO['AWS::StackName']}-{logical_id}"
        attributes = {"VisibilityTimeout": "30"}  # the template's hours are for Lambda timeouts, not local runs
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(t.resolve(props["RedrivePolicy"]))
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        t.physical[logical_id] = {"Ref": url, "Arn": arn, "QueueName": name}
        self.queue_urls[logical_id] = url

    def _make_bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        t = self.template
        name = t.resolve(props["BucketName"])
        self.s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        t.physical[logical_id] = {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
        configs = []
        for n in t.notifications(logical_id):
            rules = [{"Name": k, "Value": v} for k, v in (("prefix", n.prefix), ("suffix", n.suffix)) if v]
            configs.append({"QueueArn": t.physical[n.queue]["Arn"], "Events": ["s3:ObjectCreated:*"],
                            "Filter": {"Key": {"FilterRules": rules}}})
        if configs:
            self.s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": configs})
            for queue in {n.queue for n in t.notifications(logical_id)}:  # S3's test event, as on AWS
                self.sqs.purge_queue(QueueUrl=self.queue_urls[queue])
        self.bucket = name

    def _make_secrets(self) -> None:
        """The vendors' credentials, known to their sandboxes, stored where the functions read them."""
        private_pem, public_pem = generate_key_pair()
        self.monetate.register_key(MONETATE_API_USER, public_pem)
        secrets_manager = boto3.client("secretsmanager")
        secrets_manager.create_secret(
            Name=self.template.parameters["MonetateSecretName"],
            SecretString=json.dumps({"username": MONETATE_API_USER, "private_key": private_pem}),
        )
        secrets_manager.create_secret(
            Name=self.template.parameters["OptimoveSecretName"],
            SecretString=json.dumps(self.optimove.credentials()),
        )
        mona = self.mona.credentials()
        secrets_manager.create_secret(  # no user_id: the function reads it from the access token
            Name=self.template.parameters["MonaSecretName"],
            SecretString=json.dumps({"api_key": mona["client_id"], "secret": mona["secret"]}),
        )

    # -- waiting ---------------------------------------------------------------------------------
    def wait_idle(self, timeout: float = 120.0) -> None:
        """Return once every queue is empty and no function is running (twice in a row)."""
        deadline, quiet = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            pending = 0
            for url in self.queue_urls.values():
                counts = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                          "ApproximateNumberOfMessagesDelayed")  # delayed: a file waiting for its earlier version
                attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(counts))["Attributes"]
                pending += sum(int(attrs.get(count, 0)) for count in counts)
            busy = any(p.busy for p in self.pollers)
            quiet = quiet + 1 if not pending and not busy else 0
            if quiet >= 2:
                return
            time.sleep(0.2)
        raise TimeoutError(f"the local stack was still busy after {timeout} s")

    def dead_letters(self) -> dict[str, int]:
        """Messages in each dead-letter queue."""
        counts = {}
        for logical_id, url in self.queue_urls.items():
            if "DeadLetter" in logical_id:
                attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                counts[logical_id] = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
        return counts

    def report(self, key: str) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=f"reports/{key}.json")["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(body)
