"""What an import found: counts, breakdowns, references that did not resolve, and warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from policylab.errors import InputError, Location, Problem
from policylab.policy.schema import Policy


@dataclass
class ImportReport:
    """A summary of one import, for people to read and for tests to check.

    `counts` are totals (`headings`, `examples`, `rows`, ...); `breakdowns` are counts by a key
    (e.g. `authority` -> `{"root": 22, ...}`); `unresolved` lists references that point nowhere
    (e.g. `footnotes_without_file`); `warnings` are one-line messages naming file and line.
    """

    source: str
    path: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, int]] = field(default_factory=dict)
    unresolved: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str, *, file: Path | None = None, line: int | None = None) -> None:
        where = str(Location(file, line)) if file is not None else None
        self.warnings.append(f"{where}: {message}" if where else message)

    def tally(self, breakdown: str, key: str, n: int = 1) -> None:
        counts = self.breakdowns.setdefault(breakdown, {})
        counts[key] = counts.get(key, 0) + n


@dataclass
class ImportedPolicy:
    """An imported policy and the report of its import."""

    policy: Policy
    report: ImportReport


def read_text(path: Path, *, what: str) -> str:
    """A UTF-8 text file's content, or an `InputError` naming the file and what to do."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = f"check the path to the {what}"
        raise InputError([Problem("file not found", Location(path), hint)], what=what) from None
    except IsADirectoryError:
        hint = f"give the {what} file itself, not its folder"
        raise InputError([Problem("is a folder", Location(path), hint)], what=what) from None
    except UnicodeDecodeError as exc:
        problem = Problem(f"not UTF-8 text: {exc}", Location(path), "save the file as UTF-8")
        raise InputError([problem], what=what) from None
