"""Settings, read once from the environment into one typed object.

Every vendor URL is a setting, so the same code runs against the vendor or a sandbox.
Secrets are never settings: only the names of the Secrets Manager entries that hold them.

Example::

    settings = Settings.from_env()          # raises SettingsError naming every problem
    settings.require("monetate_secret_name")
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def yes_or_no(raw: str) -> bool:
    """A switch written as true/false, 1/0 or yes/no, in any case; ValueError for anything else,
    so that a mistyped switch is told rather than taken for false."""
    word = raw.strip().lower()
    if word in ("true", "1", "yes"):
        return True
    if word in ("false", "0", "no"):
        return False
    raise ValueError(raw)


def time_zone(raw: str) -> dt.tzinfo:
    """An IANA time zone (``America/New_York``, ``Europe/Paris``, ``UTC``); ValueError for another name."""
    try:
        return ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(raw) from None


time_zone.what = "IANA time zone name (America/New_York, Europe/Paris, UTC)"  # type: ignore[attr-defined]


class SettingsError(Exception):
    """A setting is missing or malformed; the message names each one and what it wants."""


def _env(name: str, kind: type = str, default: Any = None, choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"env": name, "kind": kind, "choices": choices})


@dataclass(frozen=True)
class Settings:
    # AWS resources (from the template)
    inbox_bucket: str | None = _env("INBOX_BUCKET")
    idempotency_table: str | None = _env("IDEMPOTENCY_TABLE")
    # Monetate
    retailer: str | None = _env("RETAILER_SHORTNAME")
    monetate_auth_url: str = _env("MONETATE_AUTH_URL", default="https://api.monetate.net/api/auth/v0/refresh/")
    monetate_data_url: str | None = _env("MONETATE_DATA_URL")
    monetate_metadata_url: str | None = _env("MONETATE_METADATA_URL")
    monetate_secret_name: str | None = _env("MONETATE_SECRET_NAME")
    monetate_token_ttl: int = _env("MONETATE_TOKEN_TTL", int, 3600)
    monetate_token_margin: int = _env("MONETATE_TOKEN_MARGIN", int, 120)
    monetate_batch_size: int = _env("MONETATE_BATCH_SIZE", int, 500)
    monetate_batch_bytes: int = _env("MONETATE_BATCH_BYTES", int, 4_000_000)
    monetate_concurrency: int = _env("MONETATE_CONCURRENCY", int, 4)  # batches in flight per file
    monetate_schema_cache_seconds: int = _env("MONETATE_SCHEMA_CACHE_SECONDS", int, 300)
    unknown_columns: str = _env("UNKNOWN_COLUMNS", str, "reject", ("reject", "drop"))
    # Dates written with slashes (05/01/2024) in files and webhooks: month first, as in the US, or day first.
    date_order: str = _env("DATE_ORDER", str, "month-first", ("month-first", "day-first"))
    # Where times written without an offset were (2024-05-01 10:15, as SQL Server exports local times); unset,
    # Monetate gets them as written and Mona takes them as UTC.
    time_zone: dt.tzinfo | None = _env("TIME_ZONE", time_zone)
    # Mona and Optimove files: a CSV cell that is a plain number is sent as a number, or every cell as text.
    csv_values: str = _env("CSV_VALUES", str, "typed", ("typed", "text"))
    # CSV cells that mean no value, comma-separated (NULL,\N as SQL Server and Hive export them): read as empty.
    csv_nulls: str = _env("CSV_NULLS", str, "")
    # A file run stops taking records this long before the function would time out, settles what
    # is in flight and hands the rest of the file to a new run.
    file_run_margin_seconds: float = _env("FILE_RUN_MARGIN_SECONDS", float, 90.0)
    file_queue_url: str | None = _env("FILE_QUEUE_URL")  # the function's own queue, from the template
    # A file whose run failed comes back this long after, doubled at each further try (SQS holds at most 12 h).
    retry_after_seconds: int = _env("RETRY_AFTER_SECONDS", int, 300)
    file_tries: int = _env("FILE_TRIES", int, 5)  # the queues' maxReceiveCount: then the dead-letter queue
    # A file version waiting for the version before it to finish is looked at again after this, doubled each time.
    earlier_version_recheck_seconds: int = _env("EARLIER_VERSION_RECHECK_SECONDS", int, 30)
    metadata_event_bus: str = _env("METADATA_EVENT_BUS", default="default")  # where metadata changes are published
    file_event_bus: str = _env("FILE_EVENT_BUS", default="default")  # where "File run finished" events go
    metadata_cache_seconds: int = _env("METADATA_CACHE_SECONDS", int, 60)  # lookups re-check the snapshot after this
    metadata_stale_seconds: int = _env("METADATA_STALE_SECONDS", int, 900)  # unknown ids refresh an older snapshot
    # Optimove
    optimove_base_url: str = _env("OPTIMOVE_BASE_URL", default="https://api.opti-x.optimove.net/api/data-connections/v1")
    optimove_secret_name: str | None = _env("OPTIMOVE_SECRET_NAME")
    optimove_ttl: int | None = _env("OPTIMOVE_TTL", int)  # seconds uploaded data lives; unset: never expires
    optimove_batch_size: int = _env("OPTIMOVE_BATCH_SIZE", int, 5000)
    optimove_connection_cache_seconds: int = _env("OPTIMOVE_CONNECTION_CACHE_SECONDS", int, 300)
    # Mona
    mona_auth_url: str = _env("MONA_AUTH_URL", default="https://monalabs.frontegg.com/identity/resources/auth/v1/api-token")
    mona_refresh_url: str | None = _env("MONA_REFRESH_URL")  # default: <MONA_AUTH_URL>/token/refresh
    mona_export_url: str = _env("MONA_EXPORT_URL", default="https://incoming{user_id}.monalabs.io/export")
    mona_secret_name: str | None = _env("MONA_SECRET_NAME")
    mona_token_margin: int = _env("MONA_TOKEN_MARGIN", int, 300)
    mona_batch_size: int = _env("MONA_BATCH_SIZE", int, 1000)
    mona_batch_bytes: int = _env("MONA_BATCH_BYTES", int, 5_000_000)
    mona_concurrency: int = _env("MONA_CONCURRENCY", int, 4)
    mona_context_fields: str = _env("MONA_CONTEXT_FIELDS", default="contextId,id")  # first one present wins
    mona_timestamp_field: str = _env("MONA_TIMESTAMP_FIELD", default="exportTimestamp")
    mona_action_field: str = _env("MONA_ACTION_FIELD", default="action")
    mona_default_action: str = _env("MONA_DEFAULT_ACTION", str, "OVERWRITE", ("OVERWRITE", "ADD", "NEW"))
    mona_drop_nulls: bool = _env("MONA_DROP_NULLS", bool, False)
    # HTTP
    http_connect_timeout: float = _env("HTTP_CONNECT_TIMEOUT", float, 5.0)
    http_read_timeout: float = _env("HTTP_READ_TIMEOUT", float, 30.0)
    http_max_attempts: int = _env("HTTP_MAX_ATTEMPTS", int, 5)
    http_backoff_factor: float = _env("HTTP_BACKOFF_FACTOR", float, 0.5)
    http_backoff_max: float = _env("HTTP_BACKOFF_MAX", float, 20.0)
    http_pool_size: int = _env("HTTP_POOL_SIZE", int, 10)
    # Secrets and webhooks
    secret_cache_seconds: int = _env("SECRET_CACHE_SECONDS", int, 300)
    webhook_max_bytes: int = _env("WEBHOOK_MAX_BYTES", int, 6_000_000)
    # An answer says something of every record; Lambda answers at most 6 MB, so a call takes at most this many.
    webhook_max_records: int = _env("WEBHOOK_MAX_RECORDS", int, 10_000)
    # A webhook call stops sending after this long and says what it did not send: API Gateway stops waiting at 29 s.
    webhook_seconds: float = _env("WEBHOOK_SECONDS", float, 25.0)
    webhook_replay_hours: int = _env("WEBHOOK_REPLAY_HOURS", int, 24)  # how long a call's answer is kept for its Idempotency-Key
    idempotency_expiry_days: int = _env("IDEMPOTENCY_EXPIRY_DAYS", int, 30)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values, problems = {}, []
        for f in dataclasses.fields(cls):
            raw = environ.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            kind, choices = f.metadata["kind"], f.metadata["choices"]
            try:
                value = yes_or_no(raw) if kind is bool else kind(raw)
            except ValueError:
                problems.append(f"{f.metadata['env']}={raw!r} is not a valid {getattr(kind, 'what', kind.__name__)}")
                continue
            if choices and value not in choices:
                problems.append(f"{f.metadata['env']}={raw!r} must be one of {', '.join(choices)}")
            elif kind in (int, float) and value <= 0:
                problems.append(f"{f.metadata['env']}={raw!r} must be greater than 0")
            else:
                values[f.name] = value
        if problems:
            raise SettingsError("malformed settings: " + "; ".join(problems))
        return cls(**values)

    @property
    def csv_null_texts(self) -> frozenset[str]:
        """``CSV_NULLS`` as a set: ``"NULL, \\N"`` -> ``{"NULL", "\\N"}``."""
        return frozenset(filter(None, (text.strip() for text in self.csv_nulls.split(","))))

    @property
    def day_first(self) -> bool:
        """Whether a date written with slashes has its day first (``DATE_ORDER=day-first``)."""
        return self.date_order == "day-first"

    def require(self, *names: str) -> None:
        """Raise SettingsError naming the environment variables a caller needs but lacks."""
        by_name = {f.name: f for f in dataclasses.fields(self)}
        missing = [by_name[n].metadata["env"] for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise SettingsError(f"missing settings: set {', '.join(missing)} in the function's environment")
