"""Deployment conversation logs in, PII redacted and ids hashed before anything is stored.

A log row is one conversation in the OpenAI chat format:

    {"id": "c-1", "timestamp": "2025-03-01T12:00:00Z", "user_id": "u-42", "session_id": "s-7",
     "model": "acme-chat-2", "messages": [{"role": "user", "content": "..."},
                                          {"role": "assistant", "content": "..."}],
     "metadata": {...}}

`timestamp` (or `created_at`) is required: an ISO 8601 string, or seconds (or milliseconds) since
the epoch; a time without a zone is UTC. `messages` is required (a list, or a JSON string of one, as
Parquet files often hold it); the last assistant turn, if any, is the response that gets graded.
`id` is optional: without it the id is derived from the timestamp and the conversation, so
ingesting the same file twice stores nothing new. `user_id` and `session_id` are replaced by
HMAC-SHA-256 digests keyed with the workspace's salt, so the same user maps to the same digest
within a workspace and to nothing outside it. Every other key is kept under `extra`, redacted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from policylab.chat import ChatMessage
from policylab.data.readers import UnreadableRow, read_jsonl, read_parquet
from policylab.data.redact import Redactor
from policylab.errors import PolicylabError

__all__ = [
    "Conversation",
    "IngestReport",
    "LogParser",
    "Rejection",
    "hash_id",
    "parse_timestamp",
    "read_log",
]

_MESSAGES = TypeAdapter(list[ChatMessage])
_KNOWN = frozenset(
    {
        "id",
        "timestamp",
        "created_at",
        "messages",
        "user_id",
        "user",
        "session_id",
        "model",
        "metadata",
    }
)
MAX_REJECTIONS_KEPT = 50


@dataclass(frozen=True)
class Conversation:
    """One redacted conversation, ready to store."""

    external_id: str
    timestamp: dt.datetime
    messages: list[dict[str, Any]]
    has_response: bool
    content_hash: str
    user_hash: str | None = None
    session_hash: str | None = None
    model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    row: int
    reason: str


@dataclass
class IngestReport:
    """What an ingest read, stored, skipped and redacted."""

    source: str
    file: str
    rows_read: int = 0
    stored: int = 0
    already_stored: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    redactions: Counter[str] = field(default_factory=Counter)
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    seconds: float = 0.0

    def reject(self, rejection: Rejection) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REJECTIONS_KEPT:
            self.rejections.append(rejection)

    def saw(self, when: dt.datetime) -> None:
        if self.first is None or when < self.first:
            self.first = when
        if self.last is None or when > self.last:
            self.last = when


def hash_id(value: str, salt: bytes) -> str:
    """A user or session id as a salted HMAC-SHA-256 digest (hex, 32 characters)."""
    return hmac.new(salt, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def parse_timestamp(value: Any) -> dt.datetime:
    """An ISO 8601 string or epoch seconds/milliseconds as an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    elif isinstance(value, int | float):
        seconds = float(value) / 1000 if abs(value) > 1e11 else float(value)
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    elif isinstance(value, str) and value.strip():
        when = dt.datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def _strip_nones(messages: list[Any]) -> list[Any]:
    # Parquet list-of-struct columns give every struct field, unset ones as None.
    return [
        {k: v for k, v in m.items() if v is not None} if isinstance(m, dict) else m
        for m in messages
    ]


class LogParser:
    """Turns log rows into redacted `Conversation`s (or `Rejection`s), counting redactions."""

    def __init__(self, *, salt: bytes, redactor: Redactor | None = None) -> None:
        self.salt = salt
        self.redactor = redactor or Redactor()

    def parse(self, row_no: int, row: dict[str, Any] | UnreadableRow) -> Conversation | Rejection:
        if isinstance(row, UnreadableRow):
            return Rejection(row_no, row.reason)
        raw_time = row.get("timestamp", row.get("created_at"))
        if raw_time is None:
            return Rejection(row_no, "missing `timestamp` (ISO 8601, or seconds since the epoch)")
        try:
            when = parse_timestamp(raw_time)
        except (ValueError, OverflowError, OSError) as exc:
            return Rejection(row_no, f"`timestamp`: {exc}")
        messages = row.get("messages")
        if isinstance(messages, str | bytes):
            try:
                messages = orjson.loads(messages)
            except orjson.JSONDecodeError as exc:
                return Rejection(row_no, f"`messages` is a string but not JSON: {exc}")
        if not isinstance(messages, list) or not messages:
            return Rejection(row_no, "`messages` must be a non-empty list of chat messages")
        messages = _strip_nones(messages)
        try:
            parsed = _MESSAGES.validate_python(messages)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            return Rejection(row_no, f"`messages.{where}`: {first['msg']}")
        redactor = self.redactor
        clean = redactor.redact_messages(messages)
        content = orjson.dumps(clean, option=orjson.OPT_SORT_KEYS)
        content_hash = hashlib.sha256(content).hexdigest()
        raw_id = row.get("id")
        if raw_id is None or raw_id == "":
            stamp = when.isoformat().encode()
            external_id = hashlib.sha256(stamp + b"\x00" + content).hexdigest()[:24]
        else:
            external_id = str(raw_id)[:300]
        user = row.get("user_id", row.get("user"))
        session = row.get("session_id")
        extra: dict[str, Any] = {}
        metadata = row.get("metadata")
        if isinstance(metadata, dict):
            extra.update(metadata)
        for key, value in row.items():
            if key not in _KNOWN and value is not None:
                extra[key] = value
        model = row.get("model")
        return Conversation(
            external_id=external_id,
            timestamp=when,
            messages=clean,
            has_response=parsed[-1].role == "assistant",
            content_hash=content_hash,
            user_hash=hash_id(str(user), self.salt) if user not in (None, "") else None,
            session_hash=hash_id(str(session), self.salt) if session not in (None, "") else None,
            model=str(model)[:300] if model is not None else None,
            extra=redactor.redact_value(extra) if extra else {},
        )


def read_log(
    path: Path, *, format: str = "auto"
) -> Iterator[tuple[int, dict[str, Any] | UnreadableRow]]:
    """Stream the rows of a JSONL or Parquet log file."""
    if not path.exists():
        raise PolicylabError(f"{path}: no such file")
    fmt = format
    if fmt == "auto":
        suffix = path.suffix.lower()
        fmt = "parquet" if suffix in {".parquet", ".pq"} else "jsonl"
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "parquet":
        return read_parquet(path)
    raise PolicylabError(f"unknown log format {format!r}", hint="use --format jsonl or parquet")
