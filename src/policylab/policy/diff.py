"""The semantic difference between two policies: what a reviewer needs to see, not a line diff.

Objects are matched by id (definitions by term, precedence entries by their winning category), so
moving an object to another file or reordering a list is no change. Changes that alter how a
request must be handled come first and are marked `breaking`: a category's or an example's expected
behaviour flipping, a category's severity tier changing, and an action rule's confirmation
requirement or subject changing. A rule's criteria are compared item by item, its action patterns
pattern by pattern (matched by `id`, else by the tools they name). An object removed and another added with near-identical content are reported as
`renamed`, with their similarity, followed by the changes between them.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from policylab.policy.schema import Policy, Rule

ChangeKind = Literal["added", "removed", "changed", "renamed"]
ObjectKind = Literal[
    "header", "category", "rule", "definition", "precedence", "ambiguity", "example", "gate"
]
SECTION_ORDER: tuple[ObjectKind, ...] = (
    "header",
    "category",
    "rule",
    "definition",
    "precedence",
    "ambiguity",
    "example",
    "gate",
)

# Lists of free text compared item by item; other lists are compared whole.
_ITEMISED: dict[str, frozenset[str]] = {
    "rule": frozenset({"allowed", "violating", "escalate", "ambiguity"}),
    "precedence": frozenset({"over"}),
}
_BREAKING: dict[str, frozenset[str]] = {
    "category": frozenset({"expected_behavior", "severity"}),
    "example": frozenset({"expected_behavior"}),
    "rule": frozenset({"subject"}),
}
_BREAKING_ACTION_FIELDS = frozenset({"requires_confirmation"})
# Two reworded criteria are one change, not a removal and an addition, when this similar.
_REWORD = 0.6


class Change(BaseModel):
    """One difference; `field` is dotted: `harm_model.uplift`, `under_refusal.high`."""

    model_config = ConfigDict(frozen=True)

    kind: ChangeKind
    object: ObjectKind
    id: str
    field: str | None = None
    old: Any = None
    new: Any = None
    breaking: bool = False
    similarity: float | None = Field(default=None, description="For `renamed`: content similarity.")


class PolicyDiff(BaseModel):
    """All changes from `old` to `new`, breaking ones first, then by section."""

    old_id: str
    old_version: str
    new_id: str
    new_version: str
    changes: list[Change] = Field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def by_section(self) -> dict[ObjectKind, list[Change]]:
        """Non-breaking changes grouped by section, in section order (empty sections left out)."""
        out: dict[ObjectKind, list[Change]] = {}
        for section in SECTION_ORDER:
            found = [c for c in self.changes if c.object == section and not c.breaking]
            if found:
                out[section] = found
        return out


def diff_policies(old: Policy, new: Policy, *, rename_threshold: float = 0.9) -> PolicyDiff:
    """The semantic diff from `old` to `new`. Works on any `Policy`, however it was made.

    `rename_threshold` is the content similarity (0-1, `difflib` ratio over the object without its
    id) above which a removed and an added object count as one renamed object; 1.01 turns it off.
    """
    changes: list[Change] = []
    changes += _header(old, new)
    changes += _objects(
        "category", _by(old.categories, "id"), _by(new.categories, "id"), rename_threshold
    )
    changes += _objects("rule", _rules(old.rules), _rules(new.rules), rename_threshold)
    changes += _objects(
        "definition", _by(old.definitions, "term"), _by(new.definitions, "term"), rename_threshold
    )
    changes += _objects(
        "precedence", _by(old.precedence, "category"), _by(new.precedence, "category"), 1.01
    )
    changes += _objects(
        "ambiguity", _by(old.ambiguity, "id"), _by(new.ambiguity, "id"), rename_threshold
    )
    changes += _objects(
        "example", _by(old.examples, "id"), _by(new.examples, "id"), rename_threshold
    )
    changes += _gates(old, new)
    rank = {s: i for i, s in enumerate(SECTION_ORDER)}
    # Stable sort: breaking first, then by section, keeping discovery order within a section.
    changes.sort(key=lambda c: (not c.breaking, rank[c.object]))
    return PolicyDiff(
        old_id=old.id,
        old_version=old.version,
        new_id=new.id,
        new_version=new.version,
        changes=changes,
    )


def _by(items: Iterable[BaseModel], key: str) -> dict[str, dict[str, Any]]:
    """Objects as JSON-like dicts by key; a repeated key (a lint error) gets `#2`, `#3`, ..."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        base = str(getattr(item, key))
        name, n = base, 1
        while name in out:
            n += 1
            name = f"{base}#{n}"
        out[name] = item.model_dump(mode="json")
    return out


def _rules(rules: list[Rule]) -> dict[str, dict[str, Any]]:
    out = _by(rules, "id")
    for rule, data in zip(rules, out.values(), strict=True):
        data["category"] = rule.category_id  # implicit and explicit category compare equal
    return out


def _header(old: Policy, new: Policy) -> list[Change]:
    fields = ("id", "version", "title", "scope", "owners", "grader_token_budget")
    a = old.model_dump(mode="json", include=set(fields))
    b = new.model_dump(mode="json", include=set(fields))
    return [
        Change(kind="changed", object="header", id=new.id, field=f, old=a[f], new=b[f])
        for f in fields
        if a[f] != b[f]
    ]


def _objects(
    kind: ObjectKind,
    old: dict[str, dict[str, Any]],
    new: dict[str, dict[str, Any]],
    rename_threshold: float,
) -> list[Change]:
    out: list[Change] = []
    removed = [k for k in old if k not in new]
    added = [k for k in new if k not in old]
    renames = _pair_renames(old, new, removed, added, kind, rename_threshold)
    renamed_from = {new_key: old_key for old_key, new_key, _ in renames}
    similarity = {new_key: ratio for _, new_key, ratio in renames}
    for key, data in new.items():
        if key in old:
            out += _fields(kind, key, old[key], data)
        elif key in renamed_from:
            before = renamed_from[key]
            out.append(
                Change(
                    kind="renamed",
                    object=kind,
                    id=key,
                    old=before,
                    new=key,
                    similarity=round(similarity[key], 3),
                )
            )
            out += _fields(kind, key, old[before], data)
        else:
            out.append(Change(kind="added", object=kind, id=key, new=data))
    paired = set(renamed_from.values())
    for key in removed:
        if key not in paired:
            out.append(Change(kind="removed", object=kind, id=key, old=old[key]))
    return out


def _id_field(kind: ObjectKind) -> str:
    return {"definition": "term", "precedence": "category"}.get(kind, "id")


def _content(kind: ObjectKind, data: dict[str, Any]) -> str:
    rest = {k: v for k, v in data.items() if k != _id_field(kind)}
    return orjson.dumps(rest, option=orjson.OPT_SORT_KEYS).decode()


def _pair_renames(
    old: dict[str, dict[str, Any]],
    new: dict[str, dict[str, Any]],
    removed: list[str],
    added: list[str],
    kind: ObjectKind,
    threshold: float,
) -> list[tuple[str, str, float]]:
    if threshold > 1 or not removed or not added:
        return []
    scored: list[tuple[float, str, str]] = []
    for a in removed:
        text_a = _content(kind, old[a])
        for b in added:
            matcher = difflib.SequenceMatcher(None, text_a, _content(kind, new[b]), autojunk=False)
            # The cheap upper bounds rule most pairs out before the quadratic ratio.
            if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
                continue
            ratio = matcher.ratio()
            if ratio >= threshold:
                scored.append((ratio, a, b))
    pairs: list[tuple[str, str, float]] = []
    used_old: set[str] = set()
    used_new: set[str] = set()
    for ratio, a, b in sorted(scored, key=lambda t: -t[0]):
        if a not in used_old and b not in used_new:
            pairs.append((a, b, ratio))
            used_old.add(a)
            used_new.add(b)
    return pairs


def _fields(kind: ObjectKind, key: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out: list[Change] = []
    itemised = _ITEMISED.get(kind, frozenset())
    breaking = _BREAKING.get(kind, frozenset())
    skip = {_id_field(kind)}
    for name in [*old, *(k for k in new if k not in old)]:
        if name in skip:
            continue
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if name in itemised and isinstance(a, list) and isinstance(b, list):
            out += _items(kind, key, name, a, b)
        elif kind == "rule" and name == "actions":
            out += _actions(key, a or [], b or [])
        elif isinstance(a, dict) and isinstance(b, dict):
            out += _nested(kind, key, name, a, b)
        else:
            out.append(
                Change(
                    kind="changed",
                    object=kind,
                    id=key,
                    field=name,
                    old=a,
                    new=b,
                    breaking=name in breaking,
                )
            )
    return out


def _nested(
    kind: ObjectKind, key: str, name: str, a: dict[str, Any], b: dict[str, Any]
) -> list[Change]:
    out = []
    for sub in [*a, *(k for k in b if k not in a)]:
        if a.get(sub) == b.get(sub):
            continue
        change: ChangeKind = "added" if sub not in a else "removed" if sub not in b else "changed"
        out.append(
            Change(
                kind=change,
                object=kind,
                id=key,
                field=f"{name}.{sub}",
                old=a.get(sub),
                new=b.get(sub),
            )
        )
    return out


def _items(kind: ObjectKind, key: str, name: str, a: list[Any], b: list[Any]) -> list[Change]:
    """Item-level changes of a list of texts; order is not meaning, so a move is no change."""
    old, new = [str(x) for x in a], [str(x) for x in b]
    removed = sorted((Counter(old) - Counter(new)).elements(), key=old.index)
    added = sorted((Counter(new) - Counter(old)).elements(), key=new.index)
    out: list[Change] = []
    # Pair rewordings, most similar first, so a small edit reads as one change.
    scored = sorted(
        (
            (difflib.SequenceMatcher(None, r, d).ratio(), i, j)
            for i, r in enumerate(removed)
            for j, d in enumerate(added)
        ),
        reverse=True,
    )
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for ratio, i, j in scored:
        if ratio >= _REWORD and i not in pairs and j not in used:
            pairs[i] = j
            used.add(j)
    for i, r in enumerate(removed):
        if i in pairs:
            out.append(
                Change(kind="changed", object=kind, id=key, field=name, old=r, new=added[pairs[i]])
            )
        else:
            out.append(Change(kind="removed", object=kind, id=key, field=name, old=r))
    for j, d in enumerate(added):
        if j not in used:
            out.append(Change(kind="added", object=kind, id=key, field=name, new=d))
    return out


def _pattern_keys(patterns: list[dict[str, Any]]) -> list[str]:
    """`id`, else the tools named (`send_payment`, `read_file>send_email`) and `#2`, `#3` ..."""
    keys: list[str] = []
    for p in patterns:
        tools = [p["tool"]] if p.get("tool") else [s["tool"] for s in p.get("sequence") or []]
        base = p.get("id") or ">".join(tools)
        key, n = base, 1
        while key in keys:
            n += 1
            key = f"{base}#{n}"
        keys.append(key)
    return keys


def _actions(key: str, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[Change]:
    """Action patterns compared one by one; `field` reads `actions[send_payment].arguments`."""
    old = dict(zip(_pattern_keys(a), a, strict=True))
    new = dict(zip(_pattern_keys(b), b, strict=True))
    out: list[Change] = []
    for name, pattern in new.items():
        field = f"actions[{name}]"
        if name not in old:
            out.append(Change(kind="added", object="rule", id=key, field=field, new=pattern))
            continue
        before = old[name]
        for sub in [*before, *(k for k in pattern if k not in before)]:
            x, y = before.get(sub), pattern.get(sub)
            if x != y:
                out.append(
                    Change(
                        kind="changed",
                        object="rule",
                        id=key,
                        field=f"{field}.{sub}",
                        old=x,
                        new=y,
                        breaking=sub in _BREAKING_ACTION_FIELDS,
                    )
                )
    for name, pattern in old.items():
        if name not in new:
            out.append(
                Change(kind="removed", object="rule", id=key, field=f"actions[{name}]", old=pattern)
            )
    return out


def _gates(old: Policy, new: Policy) -> list[Change]:
    a = old.gates.model_dump(mode="json")
    b = new.gates.model_dump(mode="json")
    out: list[Change] = []
    for name in a:
        if a[name] == b[name]:
            continue
        if name == "under_refusal":
            for tier in [*a[name], *(t for t in b[name] if t not in a[name])]:
                x, y = a[name].get(tier), b[name].get(tier)
                if x == y:
                    continue
                change: ChangeKind = "added" if x is None else "removed" if y is None else "changed"
                out.append(Change(kind=change, object="gate", id=name, field=tier, old=x, new=y))
        else:
            change = "added" if a[name] is None else "removed" if b[name] is None else "changed"
            out.append(Change(kind=change, object="gate", id=name, old=a[name], new=b[name]))
    return out
