"""Deployment monitoring in the workspace: ingest, grading passes, frames for drift and discovery.

The SQL for monitoring lives here; `policylab.monitor` works on the values and frames these
functions return and knows nothing of the database.
"""

from __future__ import annotations

import datetime as dt
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from policylab.data.redact import Redactor
from policylab.errors import PolicylabError
from policylab.monitor.grading import INPUT_SCHEMA
from policylab.monitor.ingest import Conversation, IngestReport, LogParser, Rejection, read_log
from policylab.store.models import (
    MonitorCluster,
    MonitorClusterMember,
    MonitorConversation,
    MonitorGrading,
    MonitorSetting,
    MonitorVerdict,
)
from policylab.store.workspace import Workspace

__all__ = [
    "conversation_texts",
    "conversations_frame",
    "create_grading",
    "export_conversations",
    "finish_grading",
    "get_grading",
    "ingest_file",
    "latest_grading",
    "list_clusters",
    "list_gradings",
    "store_clusters",
    "verdicts_frame",
    "workspace_salt",
    "write_verdicts",
]

SALT_KEY = "id_salt"
DEFAULT_BATCH = 2000


# -- ingest --------------------------------------------------------------------------------------
def workspace_salt(session: Session) -> bytes:
    """The workspace's salt for hashing user and session ids, created on first use."""
    row = session.get(MonitorSetting, SALT_KEY)
    if row is None:
        row = MonitorSetting(key=SALT_KEY, value=secrets.token_hex(32))
        session.add(row)
        session.flush()
    return bytes.fromhex(row.value)


def _insert_ignoring_existing(conn: Connection, rows: list[dict[str, Any]]) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(MonitorConversation).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(MonitorConversation).on_conflict_do_nothing()
    else:  # pragma: no cover - the workspace supports SQLite and PostgreSQL only
        stmt = insert(MonitorConversation)
    conn.execute(stmt, rows)


def _row(source: str, c: Conversation) -> dict[str, Any]:
    return {
        "source": source,
        "external_id": c.external_id,
        "timestamp": c.timestamp,
        "user_hash": c.user_hash,
        "session_hash": c.session_hash,
        "model": c.model,
        "messages": c.messages,
        "has_response": c.has_response,
        "extra": c.extra,
        "content_hash": c.content_hash,
        "ingested_at": dt.datetime.now(dt.UTC),
    }


def _count(conn: Connection, source: str) -> int:
    query = select(func.count(MonitorConversation.id)).where(MonitorConversation.source == source)
    return int(conn.scalar(query) or 0)


def ingest_file(
    ws: Workspace,
    path: Path,
    *,
    source: str,
    format: str = "auto",
    batch_size: int = DEFAULT_BATCH,
    redactor: Redactor | None = None,
) -> IngestReport:
    """Stream a log file into the workspace, redacting PII and hashing ids before storing.

    Conversations already stored under the same source and id are skipped, so an interrupted
    ingest is finished by running it again.
    """
    if not source.strip() or len(source) > 200:
        raise PolicylabError(f"source name {source!r}: give 1 to 200 characters")
    started = time.perf_counter()
    report = IngestReport(source=source, file=str(path))
    with ws.session() as session:
        salt = workspace_salt(session)
    parser = LogParser(salt=salt, redactor=redactor)
    pending: list[dict[str, Any]] = []
    with ws.engine.begin() as conn:
        before = _count(conn, source)
    for row_no, row in read_log(path, format=format):
        report.rows_read += 1
        parsed = parser.parse(row_no, row)
        if isinstance(parsed, Rejection):
            report.reject(parsed)
            continue
        report.saw(parsed.timestamp)
        pending.append(_row(source, parsed))
        if len(pending) >= batch_size:
            with ws.engine.begin() as conn:
                _insert_ignoring_existing(conn, pending)
            pending = []
    if pending:
        with ws.engine.begin() as conn:
            _insert_ignoring_existing(conn, pending)
    with ws.engine.begin() as conn:
        report.stored = _count(conn, source) - before
    report.already_stored = report.rows_read - report.rejected - report.stored
    report.redactions = parser.redactor.counts
    report.seconds = time.perf_counter() - started
    return report


# -- grading -------------------------------------------------------------------------------------
def _scope(query: Any, *, source: str | None, since: dt.datetime | None) -> Any:
    if source:
        query = query.where(MonitorConversation.source == source)
    if since is not None:
        query = query.where(MonitorConversation.timestamp >= since)
    return query


def export_conversations(
    ws: Workspace,
    path: Path,
    *,
    source: str | None = None,
    since: dt.datetime | None = None,
    page: int = 5000,
) -> int:
    """Write the scope's conversations to Parquet (`conversation_id`, `messages` as JSON),
    streamed page by page; returns how many were written."""
    rows = 0
    last = 0
    with pq.ParquetWriter(path, INPUT_SCHEMA) as writer, ws.engine.connect() as conn:
        while True:
            query = _scope(
                select(MonitorConversation.id, MonitorConversation.messages)
                .where(MonitorConversation.id > last)
                .order_by(MonitorConversation.id)
                .limit(page),
                source=source,
                since=since,
            )
            batch = conn.execute(query).all()
            if not batch:
                break
            writer.write_table(
                pa.Table.from_pydict(
                    {
                        "conversation_id": [r[0] for r in batch],
                        "messages": [orjson.dumps(r[1]).decode() for r in batch],
                    },
                    schema=INPUT_SCHEMA,
                )
            )
            rows += len(batch)
            last = batch[-1][0]
    return rows


@contextmanager
def exported_conversations(
    ws: Workspace, *, source: str | None = None, since: dt.datetime | None = None
) -> Iterator[tuple[Path, int]]:
    """The scope's conversations in a temporary Parquet file (removed afterwards), and the count."""
    with tempfile.TemporaryDirectory(prefix="policylab-monitor-") as tmp:
        path = Path(tmp) / "conversations.parquet"
        n = export_conversations(ws, path, source=source, since=since)
        yield path, n


def create_grading(
    session: Session,
    *,
    name: str,
    grader: Any,
    params: dict[str, Any],
    policy_id: str | None,
    policy_hash: str | None,
    engine: str,
) -> MonitorGrading:
    if session.scalars(select(MonitorGrading).where(MonitorGrading.name == name)).first():
        raise PolicylabError(
            f"a grading called {name!r} already exists", hint="choose another --name"
        )
    row = MonitorGrading(
        name=name,
        grader=grader.id,
        grader_version=grader.version,
        params=params,
        policy_id=policy_id,
        policy_hash=policy_hash,
        engine=engine,
        status="running",
    )
    session.add(row)
    session.flush()
    return row


def write_verdicts(ws: Workspace, grading_id: int, table: pa.Table) -> int:
    """Store one batch of verdict rows (`VERDICT_SCHEMA`) of a grading pass."""
    data = table.to_pydict()
    rows = [
        {
            "grading_id": grading_id,
            "conversation_id": data["conversation_id"][i],
            "behavior": data["behavior"][i],
            "violation": data["violation"][i],
            "category": data["category"][i],
            "category_similarity": data["category_similarity"][i],
            "rule_ids": data["rule_ids"][i] or [],
            "confidence": data["confidence"][i],
            "rationale": data["rationale"][i],
            "error": data["error"][i],
        }
        for i in range(table.num_rows)
    ]
    if rows:
        with ws.engine.begin() as conn:
            conn.execute(insert(MonitorVerdict), rows)
    return len(rows)


def finish_grading(ws: Workspace, grading_id: int, stats: dict[str, Any]) -> None:
    with ws.engine.begin() as conn:
        conn.execute(
            update(MonitorGrading)
            .where(MonitorGrading.id == grading_id)
            .values(status="finished", stats=stats, finished_at=dt.datetime.now(dt.UTC))
        )


def list_gradings(session: Session) -> list[MonitorGrading]:
    return list(session.scalars(select(MonitorGrading).order_by(MonitorGrading.id.desc())))


def get_grading(session: Session, name: str) -> MonitorGrading:
    found = session.scalars(select(MonitorGrading).where(MonitorGrading.name == name)).first()
    if found is None:
        known = [g.name for g in list_gradings(session)]
        raise PolicylabError(
            f"no grading {name!r}",
            hint=f"gradings: {', '.join(known[:20]) or 'none yet'}; run `policylab monitor grade`",
        )
    return found


def latest_grading(session: Session) -> MonitorGrading | None:
    query = (
        select(MonitorGrading)
        .where(MonitorGrading.status == "finished")
        .order_by(MonitorGrading.id.desc())
    )
    return session.scalars(query).first()


# -- frames --------------------------------------------------------------------------------------
def conversations_frame(
    session: Session,
    *,
    grading_id: int | None,
    source: str | None = None,
    since: dt.datetime | None = None,
) -> pd.DataFrame:
    """One row per conversation in scope: `conversation_id`, `timestamp`, `user_hash`, and, with a
    grading, `behavior`, `violation`, `category`, `category_similarity`, `confidence`, `error`."""
    c, v = MonitorConversation, MonitorVerdict
    columns: list[Any] = [c.id, c.timestamp, c.user_hash]
    names = ["conversation_id", "timestamp", "user_hash"]
    query: Any
    if grading_id is not None:
        columns += [v.behavior, v.violation, v.category, v.category_similarity, v.confidence, v.error]
        names += ["behavior", "violation", "category", "category_similarity", "confidence", "error"]
        query = select(*columns).outerjoin(
            v, (v.conversation_id == c.id) & (v.grading_id == grading_id)
        )
    else:
        query = select(*columns)
    query = _scope(query, source=source, since=since).order_by(c.timestamp, c.id)
    rows = session.execute(query).tuples().all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=names)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    for col in ("behavior", "violation", "category", "error", "user_hash"):
        if col in frame:
            frame[col] = frame[col].astype(object)
    return frame


def conversation_texts(session: Session, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The (redacted) messages of the given conversations."""
    out: dict[int, list[dict[str, Any]]] = {}
    chunk = 500
    for start in range(0, len(ids), chunk):
        part = list(ids[start : start + chunk])
        query = select(MonitorConversation.id, MonitorConversation.messages).where(
            MonitorConversation.id.in_(part)
        )
        for cid, messages in session.execute(query).tuples():
            out[int(cid)] = list(messages)
    return out


def verdicts_frame(session: Session, grading_id: int) -> pd.DataFrame:
    """Every verdict of a grading pass, with the conversation's messages (for re-grading)."""
    c, v = MonitorConversation, MonitorVerdict
    query = (
        select(
            v.conversation_id,
            v.behavior,
            v.violation,
            v.category,
            v.rule_ids,
            v.confidence,
            v.error,
            c.messages,
        )
        .join(c, c.id == v.conversation_id)
        .where(v.grading_id == grading_id)
        .order_by(v.conversation_id)
    )
    names = ["conversation_id", "behavior", "violation", "category", "rule_ids", "confidence", "error", "messages"]
    rows = session.execute(query).tuples().all()
    return pd.DataFrame([tuple(r) for r in rows], columns=names).astype(
        {"behavior": object, "violation": object, "category": object, "error": object}
    )


# -- clusters ------------------------------------------------------------------------------------
def store_clusters(
    session: Session,
    clusters: Iterable[Any],
    *,
    kind: str,
    params: dict[str, Any],
    grading_id: int | None,
) -> list[MonitorCluster]:
    """Store a new batch of clusters (each with `label`, `terms`, `size`, `users`, `members` and
    `similarities`), replacing earlier batches of the same kind."""
    old = select(MonitorCluster.id).where(MonitorCluster.kind == kind)
    session.execute(delete(MonitorClusterMember).where(MonitorClusterMember.cluster_id.in_(old)))
    session.execute(delete(MonitorCluster).where(MonitorCluster.kind == kind))
    batch = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    out: list[MonitorCluster] = []
    for cluster in clusters:
        row = MonitorCluster(
            batch=batch,
            kind=kind,
            label=cluster.label[:300],
            terms=list(cluster.terms),
            size=cluster.size,
            users=cluster.users,
            params=params,
            grading_id=grading_id,
        )
        session.add(row)
        session.flush()
        session.execute(
            insert(MonitorClusterMember),
            [
                {"cluster_id": row.id, "conversation_id": int(m), "similarity": float(s)}
                for m, s in zip(cluster.members, cluster.similarities, strict=True)
            ],
        )
        out.append(row)
    return out


def list_clusters(session: Session, *, kind: str | None = None) -> list[MonitorCluster]:
    query = select(MonitorCluster).order_by(MonitorCluster.size.desc(), MonitorCluster.id)
    if kind:
        query = query.where(MonitorCluster.kind == kind)
    return list(session.scalars(query))


def get_cluster(session: Session, cluster_id: int) -> tuple[MonitorCluster, list[int]]:
    """A stored cluster and its member conversation ids, most central first."""
    row = session.get(MonitorCluster, cluster_id)
    if row is None:
        known = [str(c.id) for c in list_clusters(session)]
        raise PolicylabError(
            f"no cluster {cluster_id}",
            hint=f"clusters: {', '.join(known[:30]) or 'none'}; run `policylab monitor clusters`",
        )
    members = session.execute(
        select(MonitorClusterMember.conversation_id)
        .where(MonitorClusterMember.cluster_id == cluster_id)
        .order_by(MonitorClusterMember.similarity.desc())
    ).scalars()
    return row, [int(m) for m in members]
