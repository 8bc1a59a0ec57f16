"""Deployment monitoring in the workspace: ingest, grading passes, frames for drift and discovery.

The SQL for monitoring lives here; `policylab.monitor` works on the values and frames these
functions return and knows nothing of the database.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from policylab.chat import ChatMessage
from policylab.core import Behavior
from policylab.data.dedup import DuplicateIndex
from policylab.data.items import ItemRecord
from policylab.data.redact import Redactor
from policylab.errors import PolicylabError
from policylab.monitor.grading import INPUT_SCHEMA, split_conversation
from policylab.monitor.impact import Outcome, Subject
from policylab.monitor.ingest import Conversation, IngestReport, LogParser, Rejection, read_log
from policylab.monitor.redteam import Finding, request_hash
from policylab.policy.schema import RULE_ID, Policy
from policylab.store.items import get_or_create_eval_set, insert_items
from policylab.store.models import (
    Item,
    MonitorCluster,
    MonitorClusterMember,
    MonitorConversation,
    MonitorGrading,
    MonitorSetting,
    MonitorVerdict,
    RedTeamFinding,
    Response,
    VerdictRecord,
)
from policylab.store.runs import get_run
from policylab.store.workspace import Workspace

__all__ = [
    "REGRESSION_SET",
    "FindingImport",
    "conversation_texts",
    "conversations_frame",
    "create_grading",
    "export_conversations",
    "find_grading",
    "finish_grading",
    "get_cluster",
    "get_finding",
    "get_grading",
    "impact_subjects_for_grading",
    "impact_subjects_for_run",
    "import_findings",
    "ingest_file",
    "latest_grading",
    "list_clusters",
    "list_findings",
    "list_gradings",
    "store_clusters",
    "triage_finding",
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
        columns += [
            v.behavior,
            v.violation,
            v.category,
            v.category_similarity,
            v.confidence,
            v.error,
        ]
        names += ["behavior", "violation", "category", "category_similarity", "confidence", "error"]
        query = select(*columns).outerjoin(
            v, (v.conversation_id == c.id) & (v.grading_id == grading_id)
        )
    else:
        query = select(*columns)
    query = _scope(query, source=source, since=since).order_by(c.timestamp, c.id)
    rows = session.execute(query).all()
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
        for cid, messages in session.execute(query):
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
    names = [
        "conversation_id",
        "behavior",
        "violation",
        "category",
        "rule_ids",
        "confidence",
        "error",
        "messages",
    ]
    rows = session.execute(query).all()
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


# -- red-team findings ---------------------------------------------------------------------------
REGRESSION_SET = "regressions"


@dataclass
class FindingImport:
    """What `import_findings` did."""

    read: int = 0
    new: int = 0
    duplicates: int = 0
    already_imported: int = 0


def import_findings(
    session: Session, findings: Iterable[Finding], *, source_file: str | None = None
) -> FindingImport:
    """Store findings; an exact or near duplicate (MinHash, `data.dedup`) of an earlier
    finding's attack is stored with status `duplicate`, pointing at it. A finding already
    imported (same tool and id) is skipped."""
    report = FindingImport()
    index = DuplicateIndex()
    ordinals: list[int] = []
    for stored in session.execute(
        select(
            RedTeamFinding.id,
            RedTeamFinding.content_hash,
            RedTeamFinding.messages,
            RedTeamFinding.duplicate_of,
        ).order_by(RedTeamFinding.id)
    ):
        text = "\n".join(str(m.get("content") or "") for m in stored[2] if m.get("role") == "user")
        index.add_existing(stored[1], text, canonical=stored[3] is None)
        ordinals.append(int(stored[0]))
    known = {
        (t, e) for t, e in session.execute(select(RedTeamFinding.tool, RedTeamFinding.external_id))
    }
    for finding in findings:
        report.read += 1
        if (finding.tool, finding.external_id) in known:
            report.already_imported += 1
            continue
        digest = request_hash(finding)
        found = index.lookup(digest, finding.request)
        duplicate_of = ordinals[found.duplicate.of] if found.duplicate is not None else None
        row = RedTeamFinding(
            tool=finding.tool,
            source_file=source_file,
            external_id=finding.external_id[:300],
            messages=finding.messages,
            response=finding.response,
            plugin=finding.plugin,
            strategy=finding.strategy,
            tool_verdict=finding.tool_verdict,
            score=finding.score,
            content_hash=digest,
            duplicate_of=duplicate_of,
            status="duplicate" if duplicate_of is not None else "new",
            extra=finding.extra,
        )
        session.add(row)
        session.flush()
        index.add(found)
        ordinals.append(row.id)
        known.add((finding.tool, finding.external_id))
        if duplicate_of is None:
            report.new += 1
        else:
            report.duplicates += 1
    return report


def list_findings(
    session: Session, *, status: str | None = None, limit: int | None = None
) -> list[RedTeamFinding]:
    query = select(RedTeamFinding).order_by(RedTeamFinding.id)
    if status:
        query = query.where(RedTeamFinding.status == status)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def get_finding(session: Session, finding_id: int) -> RedTeamFinding:
    row = session.get(RedTeamFinding, finding_id)
    if row is None:
        raise PolicylabError(
            f"no red-team finding {finding_id}", hint="list them with `policylab redteam list`"
        )
    return row


def triage_finding(
    session: Session,
    finding_id: int,
    *,
    confirm: bool,
    rule_id: str | None = None,
    policy: Policy | None = None,
    note: str | None = None,
    by: str | None = None,
) -> RedTeamFinding:
    """Confirm a finding as a failure against `rule_id` (it becomes a regression item in the eval
    set `regressions`, tagged with the rule) or reject it."""
    finding = get_finding(session, finding_id)
    if finding.status in {"confirmed", "rejected"}:
        raise PolicylabError(
            f"finding {finding_id} is already {finding.status}",
            hint="triage each finding once; import it again under a new id to reconsider it",
        )
    finding.note = note
    finding.triaged_by = by
    finding.triaged_at = dt.datetime.now(dt.UTC)
    if not confirm:
        finding.status = "rejected"
        return finding
    if not rule_id or not re.fullmatch(RULE_ID, rule_id):
        raise PolicylabError(
            f"--rule {rule_id!r}: give the id of the rule the response broke, such as CYB.2.a"
        )
    category_id = rule_id.rsplit(".", 1)[0]
    expected = Behavior.REFUSE
    if policy is not None:
        rule = policy.rule(rule_id)
        if rule is None:
            raise PolicylabError(
                f"policy {policy.id} {policy.version} has no rule {rule_id}",
                hint="check the id with `policylab policy lint`, or pass the policy it belongs to",
            )
        category_id = rule.category_id
        category = policy.category(category_id)
        if category is not None:
            expected = category.expected_behavior
    eval_set, _ = get_or_create_eval_set(
        session, REGRESSION_SET, description="Confirmed red-team failures", source="redteam"
    )
    request = list(finding.messages)
    while request and request[-1].get("role") == "assistant":
        request.pop()  # the item is the attack; the failing response goes to its metadata
    item = ItemRecord.model_validate(
        {
            "id": f"redteam-{finding.id}",
            "messages": request,
            "categories": [category_id],
            "expected_behavior": expected,
            "source": f"redteam:{finding.tool}",
            "tags": ["regression", f"rule:{rule_id}", f"redteam:{finding.tool}"],
            "metadata": {
                "rule_id": rule_id,
                "finding_id": finding.id,
                "tool": finding.tool,
                "tool_id": finding.external_id,
                "plugin": finding.plugin,
                "failing_response": finding.response,
            },
        }
    )
    [item_id] = insert_items(session, eval_set.id, [item])
    finding.status = "confirmed"
    finding.rule_id = rule_id
    finding.category = category_id
    finding.item_id = item_id
    return finding


# -- policy impact -------------------------------------------------------------------------------
def _outcome_from(behavior: Any, violation: Any, category: Any, rule_ids: Any) -> Outcome:
    return Outcome(
        behavior=behavior,
        violation=violation,
        category=category,
        rule_ids=tuple(rule_ids or ()),
    )


def impact_subjects_for_grading(session: Session, grading: MonitorGrading) -> list[Subject]:
    """The graded deployment responses of a grading pass, with their stored verdicts."""
    c, v = MonitorConversation, MonitorVerdict
    rows = session.execute(
        select(v.conversation_id, v.behavior, v.violation, v.category, v.rule_ids, c.messages)
        .join(c, c.id == v.conversation_id)
        .where(v.grading_id == grading.id, v.behavior.is_not(None))
        .order_by(v.conversation_id)
    )
    out: list[Subject] = []
    for cid, behavior, violation, category, rule_ids, raw in rows:
        messages = [ChatMessage.model_validate(m) for m in raw]
        request, response = split_conversation(messages)
        if response is None:
            continue
        out.append(
            Subject(
                key=int(cid),
                messages=request,
                response=response,
                before=_outcome_from(behavior, violation, category, rule_ids),
            )
        )
    return out


def impact_subjects_for_run(session: Session, run_name: str, grader: str) -> list[Subject]:
    """A run's answered responses with their items' categories and, where `grader` has graded
    them, its latest stored verdict."""
    run = get_run(session, run_name)
    rows = session.execute(
        select(Response.id, Response.text, Item.messages, Item.categories)
        .join(Item, Item.id == Response.item_id)
        .where(Response.run_id == run.id, Response.error.is_(None), Response.text.is_not(None))
        .order_by(Response.id)
    )
    stored: dict[int, Outcome] = {}
    verdicts = session.execute(
        select(
            VerdictRecord.response_id,
            VerdictRecord.behavior,
            VerdictRecord.violation,
            VerdictRecord.category,
            VerdictRecord.rule_ids,
        )
        .where(
            VerdictRecord.run_id == run.id,
            VerdictRecord.grader_id == grader,
            VerdictRecord.response_id.is_not(None),
            VerdictRecord.error.is_(None),
        )
        .order_by(VerdictRecord.id)
    )
    for response_id, behavior, violation, category, rule_ids in verdicts:
        if response_id is None:
            continue
        stored[int(response_id)] = _outcome_from(behavior, violation, category, rule_ids)
    out: list[Subject] = []
    for response_id, text, messages, categories in rows:
        out.append(
            Subject(
                key=int(response_id),
                messages=[ChatMessage.model_validate(m) for m in messages],
                response=str(text),
                category=categories[0] if categories else None,
                before=stored.get(int(response_id)),
            )
        )
    return out


def find_grading(session: Session, name: str) -> MonitorGrading | None:
    return session.scalars(select(MonitorGrading).where(MonitorGrading.name == name)).first()
