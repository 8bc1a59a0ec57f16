"""Eval sets and their items in the workspace: create, import in batches, stream, export, delete.

Imports are batched: one transaction and one bulk INSERT per batch (1,000 items by default), no
per-row queries. If an import stops half-way, the batches already written stay; importing the same
file again finishes it, because re-import is idempotent:

- an id already in the set with the same conversation (content hash) is kept under its database id;
  its labels and metadata (categories, expected behaviour, source, language, tags, split, metadata)
  are updated to the file's, so a corrected category map can be re-applied;
- an id already in the set with a *different* conversation is rejected to the quarantine: responses
  and verdicts stored for the old conversation would otherwise silently describe a new prompt.

Duplicates are looked up against every item already in the workspace (all sets) and against the
items imported before them; they are flagged in `Item.duplicate_of` and counted, or dropped (and
written to the quarantine) with `drop_duplicates`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from policylab.chat import ChatMessage
from policylab.data.dedup import DEFAULT_NEAR_THRESHOLD, Duplicate, DuplicateIndex, near_text
from policylab.data.importer import Accepted, ImportReport, ImportResult, Quarantine, Rejected
from policylab.data.items import ItemRecord
from policylab.data.writers import write_items
from policylab.errors import PolicylabError
from policylab.store.eval_sets import find_eval_set, get_eval_set
from policylab.store.models import EvalSet, Item, Run
from policylab.store.workspace import Workspace

DEFAULT_BATCH = 1000
_ITEMS = cast(Table, Item.__table__)
_IN_CHUNK = 1000  # ids per `IN (...)`: well under SQLite's limit on bound parameters

# The columns an import may change on an item whose conversation is unchanged.
_LABEL_COLUMNS = ("categories", "expected_behavior", "source", "language", "tags", "split", "extra")


@dataclass(frozen=True)
class EvalSetSummary:
    name: str
    items: int
    duplicates: int
    description: str | None
    source: str | None
    created_at: dt.datetime


# -- sets ----------------------------------------------------------------------------------------
def get_or_create_eval_set(
    session: Session, name: str, *, description: str | None = None, source: str | None = None
) -> tuple[EvalSet, bool]:
    """The set called `name`, created if missing. Returns it and whether it is new."""
    found = find_eval_set(session, name)
    if found is not None:
        return found, False
    if not name.strip() or len(name) > 200:
        raise PolicylabError(f"set name {name!r}: give 1 to 200 characters")
    row = EvalSet(name=name, description=description, source=source)
    session.add(row)
    session.flush()
    return row, True


def list_eval_sets(session: Session) -> list[EvalSetSummary]:
    """Every set with its item and duplicate counts, by name."""
    items = func.count(Item.id)
    dups = func.count(Item.duplicate_of)
    query = (
        select(EvalSet, items, dups)
        .outerjoin(Item, Item.eval_set_id == EvalSet.id)
        .group_by(EvalSet.id)
        .order_by(EvalSet.name)
    )
    return [
        EvalSetSummary(s.name, n, d, s.description, s.source, s.created_at)
        for s, n, d in session.execute(query)
    ]


def count_items(session: Session, set_name: str) -> int:
    set_id = get_eval_set(session, set_name).id
    return int(session.scalar(select(func.count(Item.id)).where(Item.eval_set_id == set_id)) or 0)


def delete_eval_set(session: Session, set_name: str) -> int:
    """Delete a set and its items; returns how many items went. Refused while runs use the set."""
    es = get_eval_set(session, set_name)
    runs = session.scalar(select(func.count(Run.id)).where(Run.eval_set_id == es.id)) or 0
    if runs:
        raise PolicylabError(
            f"eval set {set_name!r} has {runs} run(s): their responses and verdicts refer to "
            "its items",
            hint="delete the runs first, or keep the set",
        )
    n = int(session.scalar(select(func.count(Item.id)).where(Item.eval_set_id == es.id)) or 0)
    # Other sets' items flagged as duplicates of these lose the pointer (ON DELETE SET NULL).
    session.execute(delete(Item).where(Item.eval_set_id == es.id))
    session.execute(delete(EvalSet).where(EvalSet.id == es.id))
    return n


# -- items ---------------------------------------------------------------------------------------
def _values(item: ItemRecord) -> dict[str, Any]:
    return {
        "external_id": item.id,
        "messages": item.messages_json(),
        "categories": list(item.categories),
        "expected_behavior": item.expected_behavior.value if item.expected_behavior else None,
        "source": item.source,
        "language": item.language,
        "tags": list(item.tags),
        "split": item.split,
        "extra": dict(item.metadata),
        "content_hash": item.content_hash,
    }


def insert_items(
    session: Session,
    eval_set_id: int,
    items: Sequence[ItemRecord],
    *,
    duplicate_of: Sequence[int | None] | None = None,
) -> list[int]:
    """Bulk-insert items (one statement) and return their database ids, in order."""
    if not items:
        return []
    dups = duplicate_of if duplicate_of is not None else [None] * len(items)
    rows = [
        {**_values(item), "eval_set_id": eval_set_id, "duplicate_of": dup}
        for item, dup in zip(items, dups, strict=True)
    ]
    # A Core executemany without RETURNING: the ORM's bulk insert (or RETURNING) makes SQLAlchemy
    # split SQLite inserts into statements of ~14 rows (999 bind parameters). Then one look-up per
    # 1,000 ids, keyed on the external id (unique within the set).
    session.execute(insert(_ITEMS), rows)
    wanted = [item.id for item in items]
    by_external: dict[str, int] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        found = session.execute(
            select(Item.external_id, Item.id).where(
                Item.eval_set_id == eval_set_id, Item.external_id.in_(chunk)
            )
        )
        for external, db_id in found:
            by_external[external] = db_id
    return [by_external[external] for external in wanted]


_RECORD_COLUMNS = (
    Item.id,
    Item.external_id,
    Item.messages,
    Item.categories,
    Item.expected_behavior,
    Item.source,
    Item.language,
    Item.tags,
    Item.split,
    Item.extra,
)


def _record(row: Any) -> ItemRecord:
    return ItemRecord.model_validate(
        {
            "id": row.external_id,
            "messages": row.messages,
            "categories": row.categories,
            "expected_behavior": row.expected_behavior,
            "source": row.source,
            "language": row.language,
            "tags": row.tags,
            "split": row.split,
            "metadata": row.extra,
        }
    )


def iter_items(
    session: Session, set_name: str, *, batch: int = DEFAULT_BATCH
) -> Iterator[tuple[int, ItemRecord]]:
    """Stream a set's items in id order as `(database id, record)`, `batch` rows per query.

    Keyset pagination (`id > last`), so each page costs the same however deep into the set.
    """
    set_id = get_eval_set(session, set_name).id
    last = 0
    while True:
        rows = session.execute(
            select(*_RECORD_COLUMNS)
            .where(Item.eval_set_id == set_id, Item.id > last)
            .order_by(Item.id)
            .limit(batch)
        ).all()
        for row in rows:
            yield row.id, _record(row)
        if len(rows) < batch:
            return
        last = rows[-1].id


def export_items(session: Session, set_name: str, path: str | Path, *, format: str = "auto") -> int:
    """Write a set's items to JSONL, CSV or Parquet (streamed); returns how many were written."""
    get_eval_set(session, set_name)
    return write_items((record for _, record in iter_items(session, set_name)), path, format=format)


# -- import --------------------------------------------------------------------------------------
@dataclass
class _Pending:
    row: int
    ordinal: int
    item: ItemRecord
    duplicate: Duplicate | None


@dataclass(slots=True)
class _Known:
    id: int
    content_hash: str


class _Importer:
    def __init__(
        self,
        ws: Workspace,
        set_id: int,
        set_name: str,
        report: ImportReport,
        quarantine: Quarantine | None,
        index: DuplicateIndex,
        *,
        drop_duplicates: bool,
        batch_size: int,
    ):
        self.ws = ws
        self.set_id = set_id
        self.set_name = set_name
        self.report = report
        self.quarantine = quarantine
        self.index = index
        self.drop_duplicates = drop_duplicates
        self.batch_size = batch_size
        self.refs: list[int | None] = []  # index ordinal -> database id (None until inserted)
        self.labels: list[str] = []  # index ordinal -> "set/external id", for messages
        self.known: dict[str, _Known] = {}  # external id -> stored item of the target set
        self.inserts: list[_Pending] = []
        self.updates: list[tuple[int, ItemRecord]] = []

    def seed(self, *, with_text: bool) -> None:
        """Index every stored item of the workspace, streaming in id order."""
        columns = [
            Item.id,
            Item.eval_set_id,
            Item.external_id,
            Item.content_hash,
            Item.duplicate_of,
        ]
        if with_text:
            columns.append(Item.messages)
        last = 0
        with self.ws.session() as session:
            names = dict(session.execute(select(EvalSet.id, EvalSet.name)).all())
            while True:
                rows = session.execute(
                    select(*columns).where(Item.id > last).order_by(Item.id).limit(DEFAULT_BATCH)
                ).all()
                for row in rows:
                    text = ""
                    if with_text:
                        text = near_text([ChatMessage.model_validate(m) for m in row.messages])
                    self.index.add_existing(
                        row.content_hash, text, canonical=row.duplicate_of is None
                    )
                    self.refs.append(row.id)
                    self.labels.append(f"{names[row.eval_set_id]}/{row.external_id}")
                    if row.eval_set_id == self.set_id:
                        self.known[row.external_id] = _Known(row.id, row.content_hash)
                if len(rows) < DEFAULT_BATCH:
                    return
                last = rows[-1].id

    def reject(self, row: int, kind: str, reason: str, raw: Any) -> None:
        self.report.reject(Rejected(row, kind, reason, raw))
        if self.quarantine is not None:
            self.quarantine.write(row, kind, reason, raw)

    def add(self, result: ImportResult) -> None:
        self.report.rows_read += 1
        if isinstance(result, Rejected):
            self.reject(result.row, result.kind, result.reason, result.raw)
            return
        self._accept(result)
        if len(self.inserts) + len(self.updates) >= self.batch_size:
            self.flush()

    def _accept(self, result: Accepted) -> None:
        item = result.item
        known = self.known.get(item.id)
        if known is not None:
            if known.content_hash != item.content_hash:
                self.reject(
                    result.row,
                    "changed conversation",
                    f"id {item.id!r} is already in set {self.set_name!r} with a different "
                    "conversation: import into a new set, or delete this one first",
                    result.raw,
                )
            else:
                self.updates.append((known.id, item))
            return
        found = self.index.lookup(item.content_hash, near_text(item.messages))
        dup = found.duplicate
        if dup is not None:
            if dup.kind == "exact":
                self.report.exact_duplicates += 1
            else:
                self.report.near_duplicates += 1
            if self.drop_duplicates:
                # Not a rejection, but written to the quarantine all the same: nothing vanishes.
                self.report.dropped_duplicates += 1
                what = "an exact" if dup.kind == "exact" else f"a near ({dup.similarity:.2f})"
                reason = f"dropped as {what} duplicate of {self.labels[dup.of]}"
                if self.quarantine is not None:
                    self.quarantine.write(result.row, "dropped duplicate", reason, result.raw)
                return
        ordinal = self.index.add(found)
        self.refs.append(None)
        self.labels.append(f"{self.set_name}/{item.id}")
        self.inserts.append(_Pending(result.row, ordinal, item, dup))

    def flush(self) -> None:
        if not self.inserts and not self.updates:
            return
        with self.ws.session() as session:
            if self.inserts:
                self._insert(session)
            if self.updates:
                self._update(session)
        self.inserts, self.updates = [], []

    def _insert(self, session: Session) -> None:
        pending = self.inserts
        targets = [self.refs[p.duplicate.of] if p.duplicate else None for p in pending]
        ids = insert_items(session, self.set_id, [p.item for p in pending], duplicate_of=targets)
        for p, new_id in zip(pending, ids, strict=True):
            self.refs[p.ordinal] = new_id
            self.known[p.item.id] = _Known(new_id, p.item.content_hash)
            self._count(p.item)
        # A duplicate of an item from the same batch learns its target's id only now.
        late = [
            {"id": new_id, "duplicate_of": self.refs[p.duplicate.of]}
            for p, new_id, target in zip(pending, ids, targets, strict=True)
            if p.duplicate is not None and target is None
        ]
        if late:
            session.execute(update(Item), late)
        self.report.inserted += len(pending)

    def _update(self, session: Session) -> None:
        ids = [db_id for db_id, _ in self.updates]
        columns = [Item.id, *(getattr(Item, c) for c in _LABEL_COLUMNS)]
        stored = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            stored.update(
                {row.id: row for row in session.execute(select(*columns).where(Item.id.in_(chunk)))}
            )
        changes = []
        for db_id, item in self.updates:
            values = _values(item)
            new = {c: values[c] for c in _LABEL_COLUMNS}
            old = stored[db_id]
            if any(getattr(old, c) != new[c] for c in _LABEL_COLUMNS):
                changes.append({"id": db_id, **new})
            self._count(item)
        if changes:
            session.execute(update(Item), changes)
        self.report.updated += len(changes)
        self.report.unchanged += len(self.updates) - len(changes)

    def _count(self, item: ItemRecord) -> None:
        for category in item.categories or ["(none)"]:
            self.report.by_category[category] += 1


def import_into_set(
    ws: Workspace,
    set_name: str,
    results: Iterable[ImportResult],
    *,
    report: ImportReport | None = None,
    quarantine: Quarantine | None = None,
    near_threshold: float | None = DEFAULT_NEAR_THRESHOLD,
    drop_duplicates: bool = False,
    batch_size: int = DEFAULT_BATCH,
    description: str | None = None,
    source: str | None = None,
) -> ImportReport:
    """Store import results in the set `set_name` (created if missing) and return the report.

    `near_threshold=None` looks for exact duplicates only. Rejected rows go to `quarantine`.
    """
    # Read the first result before touching the store: a mapping that does not fit the file fails
    # on the first row, and must not leave an empty set behind.
    stream = iter(results)
    first = next(stream, None)
    with ws.session() as session:
        es, _ = get_or_create_eval_set(session, set_name, description=description, source=source)
        set_id = es.id
    report = report or ImportReport(source=source or "", set_name=set_name)
    index = DuplicateIndex(near_threshold=near_threshold)
    importer = _Importer(
        ws,
        set_id,
        set_name,
        report,
        quarantine,
        index,
        drop_duplicates=drop_duplicates,
        batch_size=batch_size,
    )
    importer.seed(with_text=near_threshold is not None)
    for result in chain([first] if first is not None else [], stream):
        importer.add(result)
    importer.flush()
    if quarantine is not None and quarantine.written:
        report.quarantine = quarantine.path
    return report
