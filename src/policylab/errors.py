"""Errors raised for bad input. Each names where the problem is, what was expected, and what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """A place in a user's file: 1-based line and column."""

    file: Path | None = None
    line: int | None = None
    column: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = [str(self.file) if self.file else "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        where = ":".join(parts)
        return f"{where} ({self.field})" if self.field else where


class PolicylabError(Exception):
    """Base class for errors a user can act on."""

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None):
        self.message = message
        self.location = location
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.location}: {self.message}" if self.location else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


@dataclass
class Problem:
    """One problem found while loading a file."""

    message: str
    location: Location
    hint: str | None = None

    def render(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


@dataclass
class ProblemList:
    problems: list[Problem] = field(default_factory=list)


class InputError(PolicylabError):
    """A file the user gave could not be read as what it claims to be; lists every problem found."""

    def __init__(self, problems: list[Problem], *, what: str = "input"):
        self.problems = problems
        count = len(problems)
        header = f"{count} problem{'s' if count != 1 else ''} in {what}:"
        body = "\n".join(p.render() for p in problems)
        super().__init__(f"{header}\n{body}")
