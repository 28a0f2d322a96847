"""Webhook calls made again with the same ``Idempotency-Key`` header get the first call's answer.

A caller that lost an answer (a timeout, a dropped connection) can call again without sending
the records twice: the first answer is kept (Powertools idempotency on DynamoDB, by method,
path and key) for ``WEBHOOK_REPLAY_HOURS`` and given again, marked ``Idempotency-Replayed:
true``. The same key with another body or query is refused (422), so is a key whose first call is still
being answered (409). Answers of 500 and over are not kept, so that calling again does the work
again, unless the call sent part of its records before it failed: that answer says which were not
sent, and calling again gets it, rather than sending the others twice.

Example::

    replays = RepeatedCalls(settings)
    return replays.resolve(api, event, context)  # in the handler, for API Gateway events
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from typing import Any

import orjson
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.idempotency import (DynamoDBPersistenceLayer, IdempotencyConfig,
                                                        idempotent_function)
from aws_lambda_powertools.utilities.idempotency.exceptions import (IdempotencyAlreadyInProgressError,
                                                                   IdempotencyValidationError)

from martech.settings import Settings

HEADER = "Idempotency-Key"
REPLAYED = "Idempotency-Replayed"
# A DynamoDB item holds 400 KB; an answer that does not fit, compressed, is given but not kept.
MAX_KEPT_BYTES = 300_000


class _NotKept(Exception):
    """An answer that a call made again should not get: the call is forgotten and runs anew."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer.get("statusCode"))
        self.answer = answer


class RepeatedCalls:
    def __init__(self, settings: Settings) -> None:
        # A store of its own: a Powertools store keeps the first config it is used with.
        persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table or "")
        self.config = IdempotencyConfig(event_key_jmespath="key", payload_validation_jmespath="body",
                                        expires_after_seconds=settings.webhook_replay_hours * 3600,
                                        response_hook=_replayed)
        self._once = idempotent_function(data_keyword_argument="call", persistence_store=persistence,
                                         config=self.config)(_answer)

    def resolve(self, api: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The resolver's answer to an API Gateway event, or the kept answer to the same call."""
        key = _header(event, HEADER)
        if not key or event.get("httpMethod") in ("GET", "HEAD", "OPTIONS"):
            return api.resolve(event, context)
        # The query is part of what was asked (?partial=true sends what a call without it does not).
        asked = orjson.dumps(_query(event)) + b"\n" + (event.get("body") or "").encode()
        call = {"key": f"{event['httpMethod']} {event.get('path')} {key}", "body": hashlib.sha256(asked).hexdigest()}
        self.config.register_lambda_context(context)
        try:
            kept = self._once(call=call, answer=lambda: api.resolve(event, context))
        except _NotKept as exc:
            return exc.answer
        except IdempotencyValidationError:
            return _error(422, f"the {HEADER} {key!r} was used before with another body or query; a new call needs a"
                               " new key")
        except IdempotencyAlreadyInProgressError:
            return _error(409, f"the first call with the {HEADER} {key!r} is still being answered; call again later")
        return _unpacked(kept)


def _answer(call: dict[str, Any], answer: Any) -> dict[str, Any]:
    result = answer()
    if int(result.get("statusCode", 500)) >= 500 and not _partly_sent(result):
        raise _NotKept(result)
    packed = {**result, "body": base64.b64encode(gzip.compress((result.get("body") or "").encode())).decode()}
    if len(packed["body"]) > MAX_KEPT_BYTES:
        raise _NotKept(result)
    return packed


def _partly_sent(result: dict[str, Any]) -> bool:
    """Whether a failed call's answer accounts for records it did send: one with ``not_sent`` counted
    among more records (``total``, or one result each)."""
    try:
        body = orjson.loads(result.get("body") or "{}")
    except orjson.JSONDecodeError:
        return False
    if not isinstance(body, dict) or not isinstance(body.get("not_sent"), int):
        return False
    total = body.get("total", len(body.get("results") or []))
    return isinstance(total, int) and total > body["not_sent"]


def _replayed(kept: dict[str, Any], record: Any) -> dict[str, Any]:
    """Powertools calls this for a kept answer given again, and only then."""
    return {**kept, "headers": {**(kept.get("headers") or {}), REPLAYED: "true"}}


def _unpacked(kept: dict[str, Any]) -> dict[str, Any]:
    return {**kept, "body": gzip.decompress(base64.b64decode(kept["body"])).decode()}


def _query(event: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """The call's query parameters, in an order that does not depend on how they were written."""
    query = event.get("multiValueQueryStringParameters") or \
        {name: [value] for name, value in (event.get("queryStringParameters") or {}).items()}
    return sorted((name, sorted(values)) for name, values in query.items())


def _header(event: dict[str, Any], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in (event.get("headers") or {}).items() if k.lower() == wanted and v), None)


def _error(status: int, message: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": orjson.dumps({"message": message}).decode(), "isBase64Encoded": False}
