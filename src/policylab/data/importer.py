"""Turn the rows of a source file into items: validate, map categories, reject what does not fit.

`import_items` streams `Accepted` and `Rejected` results; nothing is dropped silently. A rejected
row carries its row number, a short `kind` (a report groups rows by kind, such as `missing prompt`
or `category 'copyright' maps to nothing`) and a reason that names the column and what to do.
`Quarantine` writes rejected rows to a JSONL file; `ImportReport` counts everything.

Ids: the id column's value, or (without one) the first 16 hex digits of the content hash, with `-2`,
`-3`, ... for repeats in the same file, so re-importing an unchanged file gives the same ids. A
second row with an id already used in the file is rejected.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson
from pydantic import ValidationError

from policylab.chat import ChatMessage
from policylab.core import Behavior
from policylab.data.items import ItemRecord
from policylab.data.mapping import (
    CONTEXT_SEPARATOR,
    FieldMapping,
    ResolvedMapping,
    as_list,
    as_text,
    is_missing,
    to_json_value,
)
from policylab.data.readers import Row, UnreadableRow
from policylab.errors import PolicylabError
from policylab.policy.schema import Policy

# Strictest first: when an item's categories expect different behaviours, the strictest applies.
_STRICTNESS = (Behavior.REFUSE, Behavior.PARTIAL, Behavior.COMPLY)
_BEHAVIORS = ", ".join(b.value for b in Behavior)


@dataclass(frozen=True)
class Accepted:
    row: int
    item: ItemRecord
    raw: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    row: int
    kind: str
    reason: str
    raw: Any


ImportResult = Accepted | Rejected


class RowError(Exception):
    """Why one row cannot become an item."""

    def __init__(self, kind: str, reason: str):
        self.kind = kind
        self.reason = reason
        super().__init__(reason)


def import_items(
    rows: Iterable[tuple[int, Row]], mapping: FieldMapping, *, policy: Policy | None = None
) -> Iterator[ImportResult]:
    """Map each row to an `ItemRecord`, or reject it with the reason.

    With `policy`, category ids are checked against it (and a category map's targets too), and
    `mapping.expected_from_policy` takes each item's expected behaviour from its categories.
    """
    if mapping.expected_from_policy and policy is None:
        raise PolicylabError(
            "expected behaviour from the policy needs a policy", hint="pass --policy POLICY.yaml"
        )
    if mapping.category_map is not None and policy is not None:
        mapping.category_map.check(policy)
    converter: _Converter | None = None
    used_ids: dict[str, int] = {}
    hash_repeats: Counter[str] = Counter()
    for row_no, row in rows:
        if isinstance(row, UnreadableRow):
            yield Rejected(row_no, "unreadable row", row.reason, row.raw)
            continue
        if converter is None:
            converter = _Converter(mapping.resolve(row.keys()), policy)
        try:
            item = converter.convert(row)
        except RowError as exc:
            yield Rejected(row_no, exc.kind, exc.reason, row)
            continue
        if converter.mapping.id is None:
            digest = item.content_hash
            hash_repeats[digest] += 1
            n = hash_repeats[digest]
            item = item.model_copy(update={"id": digest[:16] + (f"-{n}" if n > 1 else "")})
        first = used_ids.setdefault(item.id, row_no)
        if first != row_no:
            yield Rejected(
                row_no,
                "duplicate id",
                f"id {item.id!r} is already used on row {first}",
                row,
            )
            continue
        yield Accepted(row_no, item, row)


class _Converter:
    def __init__(self, mapping: ResolvedMapping, policy: Policy | None):
        self.mapping = mapping
        self.policy = policy
        self.categories = {c.id: c for c in policy.categories} if policy else None
        self._row: dict[str, Any] = {}
        self._columns: dict[str, str] = {}
        if mapping.context and not mapping.prompt:
            raise PolicylabError(
                "--context-field goes with --prompt-field, not with a messages column"
            )

    def _cell(self, target: str) -> tuple[str | None, Any]:
        column = self._columns.get(target)
        if target in self.mapping.constants:
            return f"--set-field {target}", self.mapping.constants[target]
        return (column, self._row.get(column)) if column else (None, None)

    def _text(self, target: str) -> str | None:
        where, value = self._cell(target)
        try:
            return as_text(value)
        except ValueError as exc:
            raise RowError("invalid value", f"column {where!r}: {exc}") from exc

    def convert(self, row: dict[str, Any]) -> ItemRecord:
        self._row = row
        self._columns = self.mapping.columns(row)
        m = self.mapping
        messages = self._messages()
        categories, kept = self._categories()
        expected = self._expected(categories)
        item_id = None
        if m.id:
            item_id = as_text(row.get(m.id))
            if item_id is None:
                raise RowError("missing id", f"column {m.id!r} is empty")
        _, tag_value = self._cell("tags")
        try:
            tags = as_list(tag_value, comma_separated=True)
        except ValueError as exc:
            raise RowError("invalid value", f"tags: {exc}") from exc
        try:
            return ItemRecord(
                id=item_id or "pending",
                messages=messages,
                categories=categories,
                expected_behavior=expected,
                source=self._text("source"),
                language=self._text("language"),
                tags=tags,
                split=self._text("split"),
                metadata=self._metadata(kept),
            )
        except ValidationError as exc:
            raise RowError("invalid item", _validation_summary(exc)) from exc

    def _messages(self) -> list[ChatMessage]:
        m, row = self.mapping, self._row
        if m.messages:
            value = row.get(m.messages)
            if is_missing(value):
                raise RowError("missing prompt", f"column {m.messages!r} is empty")
            if isinstance(value, str):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError as exc:
                    raise RowError(
                        "invalid messages", f"column {m.messages!r} is not a JSON list: {exc}"
                    ) from exc
            if not isinstance(value, list) or not value:
                raise RowError(
                    "invalid messages",
                    f"column {m.messages!r}: expected a non-empty list of chat messages",
                )
            messages: list[ChatMessage] = []
            for i, entry in enumerate(value, start=1):
                try:
                    messages.append(ChatMessage.model_validate(entry))
                except ValidationError as exc:
                    raise RowError(
                        "invalid messages",
                        f"column {m.messages!r}, message {i}: {_validation_summary(exc)}",
                    ) from exc
            return messages
        assert m.prompt is not None
        try:
            prompt = as_text(row.get(m.prompt))
            context = as_text(row.get(m.context)) if m.context else None
        except ValueError as exc:
            raise RowError("invalid value", f"prompt: {exc}") from exc
        if prompt is None:
            raise RowError("missing prompt", f"column {m.prompt!r} is empty")
        text = f"{context}{CONTEXT_SEPARATOR}{prompt}" if context else prompt
        return [ChatMessage(role="user", content=text)]

    def _categories(self) -> tuple[list[str], dict[str, Any]]:
        """The item's policy category ids, and the raw external value to keep in metadata."""
        m = self.mapping
        where, value = self._cell("categories")
        if where is None:
            return [], {}
        try:
            names = as_list(value, comma_separated=where.startswith("--set-field"))
        except ValueError as exc:
            raise RowError("invalid value", f"column {where!r}: {exc}") from exc
        kept: dict[str, Any] = {}
        if m.category_map is not None and where in self._row:
            kept[where] = value
        if not names:
            # Without a category map a blank cell is an item with no category; with one, it is a
            # row the map cannot place.
            if m.category_map is None or m.allow_unmapped:
                return [], kept
            raise RowError("missing category", f"column {where!r} is empty")
        if m.category_map is None:
            return self._checked(names, where), kept
        ids: list[str] = []
        for name in names:
            target = m.category_map.lookup(name)
            if target is None:
                if m.allow_unmapped:
                    continue
                raise RowError(
                    f"category {name!r} not in the category map",
                    f"category {name!r} (column {where!r}) is not in the category map "
                    f"{m.category_map.path}: add it there (`[]` for no counterpart)",
                )
            ids.extend(target.ids)
        if not ids and not m.allow_unmapped:
            listed = ", ".join(repr(n) for n in names)
            raise RowError(
                f"category {listed} maps to nothing",
                f"category {listed} maps to no policy category ({m.category_map.where(names[0])})",
            )
        return ids, kept

    def _checked(self, ids: list[str], where: str) -> list[str]:
        if self.categories is None:
            return ids
        unknown = [c for c in ids if c not in self.categories]
        if unknown and not self.mapping.allow_unmapped:
            assert self.policy is not None
            raise RowError(
                f"category {unknown[0]!r} not in the policy",
                f"category {unknown[0]!r} (column {where!r}) is not a category of policy "
                f"{self.policy.id}: use a category map (--category-map FILE)",
            )
        return [c for c in ids if c in self.categories]

    def _expected(self, categories: list[str]) -> Behavior | None:
        text = self._text("expected_behavior")
        if text is not None:
            try:
                return Behavior(text.lower())
            except ValueError:
                where, _ = self._cell("expected_behavior")
                raise RowError(
                    "invalid expected_behavior",
                    f"column {where!r}: {text!r} is not one of {_BEHAVIORS}",
                ) from None
        if not self.mapping.expected_from_policy or self.categories is None:
            return None
        found = {self.categories[c].expected_behavior for c in categories if c in self.categories}
        return next((b for b in _STRICTNESS if b in found), None)

    def _metadata(self, kept: dict[str, Any]) -> dict[str, Any]:
        m, row = self.mapping, self._row
        out: dict[str, Any] = {}
        column = self._columns.get("metadata")
        if column is not None and not is_missing(row.get(column)):
            value = row[column]
            if isinstance(value, str):
                try:
                    value = orjson.loads(value)
                except orjson.JSONDecodeError as exc:
                    raise RowError("invalid value", f"column {column!r}: not JSON: {exc}") from exc
            if not isinstance(value, dict):
                raise RowError("invalid value", f"column {column!r}: expected a JSON object")
            out.update(value)
        consumed = m.consumed(self._columns)
        for key, value in row.items():
            if key not in consumed and not is_missing(value):
                out[key] = value
        out.update(kept)
        return {str(k): to_json_value(v) for k, v in out.items()}


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


# -- report and quarantine ------------------------------------------------------------------------
@dataclass(frozen=True)
class Rejection:
    row: int
    kind: str
    reason: str


@dataclass
class RejectionGroup:
    kind: str
    count: int
    example: str
    rows: list[int]


@dataclass
class ImportReport:
    """What an import did, row by row counted: read = accepted + rejected + dropped duplicates."""

    source: str
    set_name: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    dropped_duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    by_category: Counter[str] = field(default_factory=Counter)
    quarantine: Path | None = None

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def reject(self, result: Rejected) -> None:
        self.rejections.append(Rejection(result.row, result.kind, result.reason))

    def rejections_by_kind(self, *, max_rows: int = 10) -> list[RejectionGroup]:
        """Rejections grouped by kind, most frequent first, each with its first reason and rows."""
        groups: dict[str, RejectionGroup] = {}
        for r in self.rejections:
            group = groups.setdefault(r.kind, RejectionGroup(r.kind, 0, r.reason, []))
            group.count += 1
            if len(group.rows) < max_rows:
                group.rows.append(r.row)
        return sorted(groups.values(), key=lambda g: (-g.count, g.kind))


def quarantine_path(folder: Path, set_name: str, *, now: dt.datetime | None = None) -> Path:
    """`<folder>/quarantine/<set>-<UTC timestamp>.jsonl`, with a suffix if that file exists."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", set_name).strip("._") or "set"
    base = folder / "quarantine" / f"{safe}-{stamp}"
    path = base.with_suffix(".jsonl")
    n = 1
    while path.exists():
        n += 1
        path = base.parent / f"{base.name}-{n}.jsonl"
    return path


class Quarantine:
    """Rejected rows, one JSON object a line: source file, row number, kind, reason, the raw row.

    The file is created on the first write only, so a clean import leaves nothing behind.
    """

    def __init__(self, path: Path, *, source: str):
        self.path = path
        self.source = source
        self.written = 0
        self._fh: IO[bytes] | None = None

    def write(self, row: int, kind: str, reason: str, raw: Any) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("xb")
        record = {
            "source": self.source,
            "row": row,
            "kind": kind,
            "reason": reason,
            "raw": to_json_value(raw),
        }
        self._fh.write(orjson.dumps(record) + b"\n")
        self.written += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
