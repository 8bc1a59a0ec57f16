"""Load a policy file and its includes, with errors that name file, line, column and field.

YAML is parsed with ruamel.yaml, which keeps the position of every key and value, so a pydantic error's
field path can be turned back into a line and column of the user's file.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from policylab.errors import InputError, Location, Problem
from policylab.policy.schema import Policy, PolicyContent, PolicyFile

# Sections whose entries carry an `id` (or a `term`), so locations can be found by id after merging.
SECTIONS: dict[str, str] = {
    "definitions": "term",
    "categories": "id",
    "rules": "id",
    "precedence": "category",
    "ambiguity": "id",
    "examples": "id",
}


@dataclass
class _Entry:
    file: Path
    node: CommentedMap


@dataclass
class SourceMap:
    """Where each part of a merged policy came from."""

    root: Path
    root_node: CommentedMap | None = None
    entries: dict[tuple[str, str], list[_Entry]] = field(default_factory=dict)

    def add(self, section: str, key: str, file: Path, node: CommentedMap) -> None:
        self.entries.setdefault((section, key), []).append(_Entry(file, node))

    def locate(self, section: str, key: str, *path: str | int, occurrence: int = 0) -> Location:
        """The location of `section[key]` (e.g. `("rules", "CYB.2.a")`), or of a field inside it.

        `occurrence` picks among entries that share an id (a duplicate id is itself a lint finding).
        """
        found = self.entries.get((section, key))
        if not found:
            return Location(self.root, field=f"{section}[{key}]")
        entry = found[min(occurrence, len(found) - 1)]
        line, col = _position(entry.node, list(path))
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        return Location(entry.file, line, col, f"{section}[{key}]{dotted}")

    def locate_root(self, *path: str | int) -> Location:
        """The location of a top-level field of the root file, e.g. `("gates", "under_refusal")`."""
        if self.root_node is None:
            return Location(self.root)
        line, col = _position(self.root_node, list(path))
        return Location(self.root, line, col, ".".join(str(p) for p in path) or None)

    def count(self, section: str, key: str) -> int:
        return len(self.entries.get((section, key), []))


@dataclass
class LoadedPolicy:
    """A policy with its includes merged, and where each part came from."""

    policy: Policy
    sources: SourceMap
    files: list[Path]

    @property
    def path(self) -> Path:
        return self.sources.root

    def source_texts(self) -> dict[str, str]:
        """Each file's text, by path relative to the root file's folder (for storing a version)."""
        base = self.path.parent
        out: dict[str, str] = {}
        for f in self.files:
            try:
                name = str(f.relative_to(base))
            except ValueError:
                name = str(f)
            out[name] = f.read_text(encoding="utf-8")
        return out


def load_policy(path: str | Path) -> LoadedPolicy:
    """Load and validate a policy file and everything it includes.

    Raises `InputError` listing every problem found, each with file, line, column and field.
    """
    root = Path(path)
    problems: list[Problem] = []
    sources = SourceMap(root=root)
    files: list[Path] = []
    header: PolicyFile | None = None
    merged: dict[str, list[Any]] = {name: [] for name in SECTIONS}

    def visit(file: Path, *, is_root: bool, stack: tuple[Path, ...]) -> None:
        nonlocal header
        resolved = file.resolve()
        if resolved in stack:
            chain = " -> ".join(str(p) for p in (*stack, resolved))
            problems.append(
                Problem(f"include cycle: {chain}", Location(file), "remove one of the includes")
            )
            return
        if any(resolved == f.resolve() for f in files):
            return  # included twice through different paths: once is enough
        node = _read_yaml(file, problems)
        if node is None:
            return
        files.append(file)
        model: type[BaseModel] = PolicyFile if is_root else PolicyContent
        try:
            parsed = model.model_validate(_plain(node))
        except ValidationError as exc:
            problems.extend(_problems_from(exc, file, node, model))
            parsed = None
        includes = [str(i) for i in (node.get("include") or [])]
        if parsed is None:
            # Keep checking the included files (and that they exist): report every problem at once.
            visit_includes(file, node, includes, (*stack, resolved))
            return
        if is_root:
            assert isinstance(parsed, PolicyFile)
            header = parsed
            sources.root_node = node
        assert isinstance(parsed, PolicyContent)
        for section, key_field in SECTIONS.items():
            entries = getattr(parsed, section)
            raw = node.get(section) or []
            for entry, raw_entry in zip(entries, raw, strict=True):
                sources.add(section, str(getattr(entry, key_field)), file, raw_entry)
            merged[section].extend(entries)
        visit_includes(file, node, includes, (*stack, resolved))

    def visit_includes(
        file: Path, node: CommentedMap, includes: list[str], stack: tuple[Path, ...]
    ) -> None:
        for i, inc in enumerate(includes):
            target = (file.parent / inc).resolve()
            if not target.exists():
                line, col = _position(node, ["include", i])
                problems.append(
                    Problem(
                        f"included file not found: {inc} (looked for {target})",
                        Location(file, line, col, f"include[{i}]"),
                        "paths in `include` are relative to the file that includes them",
                    )
                )
                continue
            visit(target, is_root=False, stack=stack)

    visit(root, is_root=True, stack=())
    if problems or header is None:
        raise InputError(problems, what=f"policy {root}")
    data = header.model_dump(exclude={"include", *SECTIONS})
    policy = Policy.model_validate({**data, **merged})
    return LoadedPolicy(policy=policy, sources=sources, files=files)


def _read_yaml(file: Path, problems: list[Problem]) -> CommentedMap | None:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(Problem("file not found", Location(file), "check the path"))
        return None
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"not UTF-8 text: {exc}", Location(file), "save it as UTF-8"))
        return None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        node = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problems.append(
            Problem(
                f"YAML syntax error: {exc.problem or exc}",
                Location(file, line, col),
                "check indentation, colons and quotes around this line",
            )
        )
        return None
    except Exception as exc:  # ruamel raises several unrelated types for duplicate keys etc.
        problems.append(Problem(f"YAML error: {exc}", Location(file), None))
        return None
    if not isinstance(node, CommentedMap):
        problems.append(
            Problem(
                "a policy file must be a YAML mapping (key: value) at the top level",
                Location(file, 1, 1),
                "start the file with `id:`, `version:`, ... or with `categories:` in an included file",
            )
        )
        return None
    return node


def _plain(node: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists (pydantic wants plain types)."""
    if isinstance(node, CommentedMap):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _position(node: Any, path: list[str | int]) -> tuple[int | None, int | None]:
    """1-based line and column of `path` inside `node`, or of the deepest part that exists."""
    line: int | None = None
    col: int | None = None
    if hasattr(node, "lc") and node.lc.line is not None:
        line, col = node.lc.line + 1, node.lc.col + 1
    current = node
    for part in path:
        if isinstance(current, CommentedMap) and isinstance(part, str) and part in current:
            ln, cl = current.lc.key(part)
            line, col = ln + 1, cl + 1
            current = current[part]
        elif isinstance(current, CommentedSeq) and isinstance(part, int) and part < len(current):
            ln, cl = current.lc.item(part)
            line, col = ln + 1, cl + 1
            current = current[part]
        else:
            break
    return line, col


def _problems_from(
    exc: ValidationError, file: Path, node: CommentedMap, model: type[BaseModel]
) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if isinstance(p, str | int)]
        # Union branches add their type names to the path; keep only real keys.
        loc = _real_path(node, loc)
        line, col = _position(node, loc)
        field_name = _render_path(node, loc)
        kind = err["type"]
        hint: str | None = None
        message = err["msg"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            message = f"unknown key `{loc[-1]}`"
            hint = (
                f"did you mean `{close[0]}`?"
                if close
                else f"allowed keys here: {', '.join(allowed)}"
            )
        elif kind == "missing":
            message = f"missing required key `{loc[-1]}`"
            hint = f"add `{loc[-1]}:` here (see docs/policy-format.md)"
        elif kind in ("enum", "literal_error"):
            expected = err.get("ctx", {}).get("expected")
            hint = f"use one of {expected}" if expected else None
        elif kind == "string_pattern_mismatch":
            hint = _pattern_hint(str(loc[-1]) if loc else "")
        out.append(Problem(message, Location(file, line, col, field_name), hint))
    return out


def _real_path(node: Any, loc: list[str | int]) -> list[str | int]:
    out: list[str | int] = []
    current = node
    for part in loc:
        if isinstance(current, CommentedMap) and isinstance(part, str):
            out.append(part)
            current = current.get(part)
        elif isinstance(current, CommentedSeq) and isinstance(part, int):
            out.append(part)
            current = current[part] if part < len(current) else None
        elif current is None and isinstance(part, str):
            out.append(part)  # a missing key: name it
            break
        # otherwise: a union tag such as `str` or `list[ContentPart]`, skip it
    return out


def _render_path(node: Any, loc: list[str | int]) -> str:
    parts: list[str] = []
    current = node
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if isinstance(current, CommentedSeq) and part < len(current):
                item = current[part]
                if isinstance(item, CommentedMap):
                    for key in ("id", "term"):
                        if key in item:
                            label = str(item[key])
                            break
                current = item
            parts.append(f"[{label}]")
        else:
            parts.append(f".{part}" if parts else part)
            current = current.get(part) if isinstance(current, CommentedMap) else None
    return "".join(parts)


def _allowed_keys(model: type[BaseModel], loc: list[str | int]) -> list[str]:
    current: Any = model
    for part in loc:
        current = _descend(current, part)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _descend(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if isinstance(part, str) and part in annotation.model_fields:
            return _unwrap(annotation.model_fields[part].annotation)
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and isinstance(part, int):
        return _unwrap(args[0])
    if origin is dict:
        return _unwrap(args[1])
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated` and `X | None`; for unions of models, take the first model."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = next(
                (a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), args[0]
            )
        else:
            return annotation


def _pattern_hint(field_name: str) -> str:
    hints = {
        "version": "use a semantic version such as 1.2.0",
        "id": "ids use capital letters, digits and dots, e.g. CYB or CYB.2 (rules: CYB.2.a)",
        "category": "a category id such as CYB or CYB.2",
    }
    return hints.get(field_name, "check the format of this value (see docs/policy-format.md)")
