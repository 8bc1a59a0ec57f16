"""Map a source file's columns onto item fields, and external category names onto policy ids.

A `FieldMapping` says which column holds the prompt (a string) or the conversation (a list in the
OpenAI chat format), which holds the id, and which column or constant fills each other field.
Columns named like a field (`id`, `messages`, `prompt`, `categories`, `expected_behavior`, `source`,
`language`, `tags`, `split`, `metadata`) map to it unless told otherwise, so an exported set imports
back as it was. Every column not mapped to a field is kept in the item's metadata.

A `CategoryMap` (a YAML or CSV file) maps each external category name to zero or more policy
category ids; mapping a name to nothing says the policy has no counterpart, and rows in it are
rejected.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from policylab.errors import InputError, Location, PolicylabError, Problem
from policylab.policy.schema import CATEGORY_ID, Policy

# Fields a column (or a constant) can fill, besides the prompt/messages/context/id columns.
FIELD_TARGETS = (
    "categories",
    "expected_behavior",
    "source",
    "language",
    "tags",
    "split",
    "metadata",
)
COLUMN_TARGETS = ("prompt", "messages", "context", "id", *FIELD_TARGETS)
CONSTANT_TARGETS = ("categories", "expected_behavior", "source", "language", "tags", "split")
_ALIASES = {"category": "categories", "tag": "tags", "expected": "expected_behavior"}

CONTEXT_SEPARATOR = "\n\n---\n\n"
"""Between a context passage and the request, in one user turn (HarmBench's contextual format)."""


def parse_assignments(values: Iterable[str], *, option: str) -> dict[str, str]:
    """`["a=b", "c=d"]` -> `{"a": "b", "c": "d"}`, with an error naming the option on a bad one."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name.strip():
            raise PolicylabError(
                f"{option} {value!r}: expected NAME=VALUE",
                hint=f"for example {option} source=harmbench",
            )
        out[name.strip()] = rest.strip()
    return out


def _target(name: str, allowed: tuple[str, ...], option: str) -> str:
    target = _ALIASES.get(name, name)
    if target not in allowed:
        names = [*allowed, *(k for k, v in _ALIASES.items() if v in allowed)]
        close = difflib.get_close_matches(name, names, n=1)
        raise PolicylabError(
            f"{option}: unknown field {name!r}",
            hint=(f"did you mean {close[0]!r}? " if close else "")
            + f"fields: {', '.join(allowed)}",
        )
    return target


# -- category maps ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CategoryTarget:
    """The policy ids an external category maps to (none: no counterpart), and where it says so."""

    ids: tuple[str, ...]
    line: int


@dataclass
class CategoryMap:
    """External category name -> policy category ids, read from a file."""

    path: Path
    entries: dict[str, CategoryTarget] = field(default_factory=dict)

    def lookup(self, name: str) -> CategoryTarget | None:
        return self.entries.get(name.strip())

    def where(self, name: str) -> str:
        target = self.lookup(name)
        return f"{self.path}:{target.line}" if target else str(self.path)

    def check(self, policy: Policy) -> None:
        """Raise `InputError` naming each line whose target id is not a category of `policy`."""
        known = [c.id for c in policy.categories]
        problems: list[Problem] = []
        for name, target in self.entries.items():
            for cid in target.ids:
                if cid in known:
                    continue
                close = difflib.get_close_matches(cid, known, n=3)
                problems.append(
                    Problem(
                        f"{name!r} maps to {cid!r}, which is not a category of policy {policy.id}",
                        Location(self.path, target.line),
                        (f"did you mean {', '.join(close)}? " if close else "")
                        + "map it to an existing category id, or to [] for no counterpart",
                    )
                )
        if problems:
            raise InputError(problems, what=f"category map {self.path}")


def load_category_map(path: str | Path, *, policy: Policy | None = None) -> CategoryMap:
    """Read a category map from YAML (`name: ID` or `name: [ID, ...]`) or CSV (`external,target`).

    In CSV a name may take several lines (one target each); an empty target means no counterpart.
    With `policy`, every target id must be one of its categories.
    """
    file = Path(path)
    if not file.exists():
        raise PolicylabError(f"{file}: no such category map file")
    problems: list[Problem] = []
    if file.suffix.lower() == ".csv":
        cmap = _category_map_csv(file, problems)
    elif file.suffix.lower() in (".yaml", ".yml"):
        cmap = _category_map_yaml(file, problems)
    else:
        raise PolicylabError(f"{file}: a category map is a .yaml or a .csv file")
    for name, target in cmap.entries.items():
        for cid in target.ids:
            if not re.match(CATEGORY_ID, cid):
                problems.append(
                    Problem(
                        f"{name!r} maps to {cid!r}, which is not a category id",
                        Location(file, target.line),
                        "category ids look like CYB or CYB.1",
                    )
                )
    if problems:
        raise InputError(problems, what=f"category map {file}")
    if policy is not None:
        cmap.check(policy)
    return cmap


def _category_map_yaml(file: Path, problems: list[Problem]) -> CategoryMap:
    try:
        node = YAML(typ="rt").load(file.read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise PolicylabError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(node, CommentedMap):
        raise PolicylabError(
            f"{file}: expected a mapping of external category names to policy category ids",
            hint="for example `cybercrime_intrusion: CYB` or `copyright: []`",
        )
    cmap = CategoryMap(file)
    for key, value in node.items():
        line = node.lc.key(key)[0] + 1
        if value is None:
            ids: list[Any] = []
        elif isinstance(value, str):
            ids = [value]
        elif isinstance(value, list):
            ids = list(value)
        else:
            problems.append(
                Problem(
                    f"{key!r}: expected a category id or a list of them",
                    Location(file, line),
                    "write `[]` for no counterpart",
                )
            )
            continue
        bad = [v for v in ids if not isinstance(v, str)]
        if bad:
            problems.append(
                Problem(f"{key!r}: {bad[0]!r} is not a category id", Location(file, line))
            )
            continue
        cmap.entries[str(key).strip()] = CategoryTarget(tuple(i.strip() for i in ids), line)
    return cmap


def _category_map_csv(file: Path, problems: list[Problem]) -> CategoryMap:
    cmap = CategoryMap(file)
    with file.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if header[:2] != ["external", "target"]:
            raise PolicylabError(
                f"{file}: the header must be `external,target`", location=Location(file, 1)
            )
        for values in reader:
            line = reader.line_num
            if not values or not any(v.strip() for v in values):
                continue
            if len(values) < 2 or not values[0].strip():
                problems.append(Problem("expected `external,target`", Location(file, line)))
                continue
            name, target = values[0].strip(), values[1].strip()
            previous = cmap.entries.get(name)
            ids = (*previous.ids, target) if previous else (target,)
            cmap.entries[name] = CategoryTarget(
                tuple(i for i in ids if i), previous.line if previous else line
            )
    return cmap


# -- field mappings -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldMapping:
    """Which column fills which item field. See the module docstring for the defaults."""

    prompt_field: str | None = None
    messages_field: str | None = None
    context_field: str | None = None
    id_field: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)
    category_map: CategoryMap | None = None
    expected_from_policy: bool = False
    allow_unmapped: bool = False

    @classmethod
    def from_options(
        cls,
        *,
        prompt_field: str | None = None,
        messages_field: str | None = None,
        context_field: str | None = None,
        id_field: str | None = None,
        maps: Iterable[str] = (),
        constants: Iterable[str] = (),
        category_map: CategoryMap | None = None,
        expected_from_policy: bool = False,
        allow_unmapped: bool = False,
    ) -> FieldMapping:
        """A mapping from command-line options (`--map field=column`, `--set-field field=value`)."""
        fields = {
            _target(k, COLUMN_TARGETS, "--map"): v
            for k, v in parse_assignments(maps, option="--map").items()
        }
        consts = {
            _target(k, CONSTANT_TARGETS, "--set-field"): v
            for k, v in parse_assignments(constants, option="--set-field").items()
        }
        explicit = {
            "prompt": prompt_field,
            "messages": messages_field,
            "context": context_field,
            "id": id_field,
        }
        for name, column in explicit.items():
            if column is not None:
                if name in fields and fields[name] != column:
                    raise PolicylabError(f"--{name}-field and --map {name}=... disagree")
                fields[name] = column
        both = set(fields) & set(consts)
        if both:
            raise PolicylabError(
                f"{', '.join(sorted(both))}: given both a column (--map) and a constant "
                "(--set-field)"
            )
        return cls(
            prompt_field=fields.pop("prompt", None),
            messages_field=fields.pop("messages", None),
            context_field=fields.pop("context", None),
            id_field=fields.pop("id", None),
            fields=fields,
            constants=consts,
            category_map=category_map,
            expected_from_policy=expected_from_policy,
            allow_unmapped=allow_unmapped,
        )

    def resolve(self, columns: Iterable[str]) -> ResolvedMapping:
        """Fix the defaults against a file's columns and check every named column exists."""
        cols = list(columns)
        available = set(cols)
        prompt, messages = self.prompt_field, self.messages_field
        if prompt and messages:
            raise PolicylabError("give either a prompt column or a messages column, not both")
        if not prompt and not messages:
            if "messages" in available:
                messages = "messages"
            elif "prompt" in available:
                prompt = "prompt"
            else:
                raise PolicylabError(
                    "which column holds the prompt?",
                    hint="pass --prompt-field NAME or --messages-field NAME; "
                    f"columns: {', '.join(cols)}",
                )
        auto = tuple(t for t in FIELD_TARGETS if t not in self.fields and t not in self.constants)
        if self.category_map is not None and not (
            "categories" in self.fields
            or "categories" in self.constants
            or available & {"categories", "category"}
        ):
            raise PolicylabError(
                f"the category map {self.category_map.path} needs a category column",
                hint="pass --map category=COLUMN",
            )
        id_field = self.id_field or ("id" if "id" in available else None)
        named = {
            "--prompt-field": prompt,
            "--messages-field": messages,
            "--context-field": self.context_field,
            "--id-field": self.id_field,
            **{f"--map {k}": v for k, v in self.fields.items()},
        }
        for option, column in named.items():
            if column is not None and column not in available:
                close = difflib.get_close_matches(column, cols, n=1)
                raise PolicylabError(
                    f"{option}: no column {column!r} in the file",
                    hint=(f"did you mean {close[0]!r}? " if close else "")
                    + f"columns: {', '.join(cols)}",
                )
        return ResolvedMapping(
            prompt=prompt,
            messages=messages,
            context=self.context_field,
            id=id_field,
            fields=dict(self.fields),
            auto=auto,
            constants=dict(self.constants),
            category_map=self.category_map,
            expected_from_policy=self.expected_from_policy,
            allow_unmapped=self.allow_unmapped,
        )


@dataclass(frozen=True)
class ResolvedMapping:
    """A `FieldMapping` fixed against a file's first row: every column named here exists.

    `auto` lists the fields with neither a column nor a constant: each takes the same-named column
    of a row that has one (`categories` also takes a `category` column), so JSONL rows may differ.
    """

    prompt: str | None
    messages: str | None
    context: str | None
    id: str | None
    fields: dict[str, str]
    auto: tuple[str, ...]
    constants: dict[str, str]
    category_map: CategoryMap | None
    expected_from_policy: bool
    allow_unmapped: bool

    def columns(self, row: Mapping[str, Any]) -> dict[str, str]:
        """Field -> column for one row: the explicit mapping plus same-named columns."""
        out = dict(self.fields)
        for target in self.auto:
            if target in row:
                out[target] = target
            elif target == "categories" and "category" in row:
                out[target] = "category"
        return out

    def consumed(self, columns: Mapping[str, str]) -> set[str]:
        """Columns whose values become item fields (the rest go to metadata)."""
        used = {c for c in (self.prompt, self.messages, self.context, self.id) if c}
        return used | set(columns.values())


# -- values ---------------------------------------------------------------------------------------
def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def as_text(value: Any) -> str | None:
    """A cell as text: None for a missing or blank cell; numbers as written (1.0 stays 1.0)."""
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise ValueError(f"expected text, found {type(value).__name__}")


def as_list(value: Any, *, comma_separated: bool) -> list[str]:
    """A cell as a list of strings: a list, a JSON array in text, or one string.

    With `comma_separated` a plain string is split on commas (for tags); category names are not
    split, because real taxonomies have commas inside names.
    """
    if is_missing(value):
        return []
    if isinstance(value, list | tuple):
        out = [as_text(v) for v in value]
        return [v for v in out if v]
    text = as_text(value)
    assert text is not None
    if text.startswith("["):
        import orjson

        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"looks like a JSON list but is not valid JSON: {exc}") from exc
        return as_list(parsed, comma_separated=False)
    if comma_separated:
        return [t.strip() for t in text.split(",") if t.strip()]
    return [text]


def to_json_value(value: Any) -> JsonValue:
    """Any cell value (CSV text, Arrow/NumPy scalars, dates, bytes) as a JSON value for metadata."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json_value(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, np.generic | np.ndarray):  # Parquet and HF rows may carry NumPy values
        return to_json_value(value.tolist())
    return str(value)
