"""Delivering SQS messages to functions as Lambda's event source mapping does, with
partial batch responses: messages a function reports as failed come back later."""

from __future__ import annotations

import threading
import traceback
from typing import Any

from sandbox.local.functions import LocalFunction
from sandbox.local.template import PSEUDO


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": PSEUDO["AWS::Region"],
            }
            for m in messages
        ]
    }


class QueuePoller:
    """Polls one queue and invokes one function, until stopped."""

    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, function: LocalFunction, batch_size: int,
                 retry_after: int = 1) -> None:
        self.sqs, self.queue_url, self.queue_arn = sqs, queue_url, queue_arn
        self.function, self.batch_size, self.retry_after = function, min(batch_size, 10), retry_after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"poll-{function.spec.logical_id}")
        self.busy = False

    def start(self) -> QueuePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:  # keep polling, as the event source mapping would
                traceback.print_exc()

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Deliver one batch; the number of messages received."""
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                          WaitTimeSeconds=wait_seconds, AttributeNames=["All"])
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        self.busy = True
        try:
            try:
                result = self.function.invoke(sqs_event(messages, self.queue_arn)) or {}
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            except Exception:
                traceback.print_exc()
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                if message["MessageId"] in failed:
                    # Visible again soon, not after the full visibility timeout: local runs are short.
                    self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                       VisibilityTimeout=self.retry_after)
                else:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        finally:
            self.busy = False
        return len(messages)
