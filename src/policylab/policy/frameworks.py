"""Regulatory frameworks, and the provisions a policy's categories and rules cite.

A framework file lists provisions, each with an id, a title and a one-line summary, optionally
under a parent provision:

```yaml
id: acme_charter                # lower case, digits and `_`
title: Acme Responsible AI Charter
version: "2025"                 # optional
url: https://example.com        # optional
provisions:
  - id: P1
    title: People stay in control
    summary: Agents ask before they act on a person's behalf.
  - id: P1.2
    parent: P1
    title: Money
    summary: No payment without the account holder's explicit consent.
```

An entry of `regulations:` in a policy is a **provision reference**, `framework:provision`
(`eu_ai_act:art_14`, `nist_ai_rmf:MEASURE-2`), or free text ("Computer Misuse Act 1990, s.1")
that is kept as written and traced to nothing. A reference finer than the file lists
(`eu_ai_act:art_14_4_e`, `nist_ai_rmf:MEASURE-2.7`) resolves to the nearest listed provision its id
starts with, followed by `_`, `.`, `-` or `(`. policylab ships `eu_ai_act` and `nist_ai_rmf`
(in `policylab/frameworks/`); a team's own file with the same id replaces the shipped one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from policylab.policy.schema import Category, Policy, Rule
from policylab.policy.yaml_files import read_yaml_model

__all__ = [
    "Citation",
    "Framework",
    "Provision",
    "builtin_frameworks",
    "citations",
    "load_framework",
    "load_frameworks",
    "parse_citation",
]

FRAMEWORK_ID = r"^[a-z][a-z0-9_]*$"
PROVISION_ID = r"^[A-Za-z0-9][A-Za-z0-9_.()\-]*$"
_CITATION = re.compile(
    r"^(?P<framework>[a-z][a-z0-9_]*):(?P<provision>[A-Za-z0-9][A-Za-z0-9_.()\-]*)$"
)
_FINER = "_.-("

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provision(_Model):
    """One article, section, function or category of a framework."""

    id: Annotated[str, StringConstraints(pattern=PROVISION_ID)]
    title: Text
    summary: str | None = None
    parent: str | None = None
    url: str | None = None


class Framework(_Model):
    """A regulation, standard or a team's own charter, as a list of provisions."""

    id: Annotated[str, StringConstraints(pattern=FRAMEWORK_ID)]
    title: Text
    version: str | None = None
    url: str | None = None
    provisions: list[Provision] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Framework:
        seen: set[str] = set()
        for p in self.provisions:
            if p.id in seen:
                raise ValueError(f"provision id {p.id!r} appears twice")
            seen.add(p.id)
        for p in self.provisions:
            if p.parent is not None and p.parent not in seen:
                raise ValueError(
                    f"provision {p.id!r} names parent {p.parent!r}, which is not listed"
                )
        return self

    def provision(self, provision_id: str) -> Provision | None:
        return next((p for p in self.provisions if p.id == provision_id), None)

    def resolve(self, provision_id: str) -> Provision | None:
        """The provision `provision_id` names: listed exactly, else the nearest listed one it
        refines (`art_14_4_e` -> `art_14`), else None."""
        exact = self.provision(provision_id)
        if exact is not None:
            return exact
        candidates = [
            p
            for p in self.provisions
            if provision_id.startswith(p.id) and provision_id[len(p.id)] in _FINER
        ]
        return max(candidates, key=lambda p: len(p.id), default=None)

    def children(self, provision_id: str) -> list[Provision]:
        return [p for p in self.provisions if p.parent == provision_id]

    def ancestors(self, provision_id: str) -> list[str]:
        """The parent chain of a listed provision, nearest first."""
        out: list[str] = []
        current = self.provision(provision_id)
        while current is not None and current.parent is not None and current.parent not in out:
            out.append(current.parent)
            current = self.provision(current.parent)
        return out

    def depth(self, provision_id: str) -> int:
        return len(self.ancestors(provision_id))


@dataclass(frozen=True)
class Citation:
    """One entry of a `regulations:` list, where it was found, and what it resolves to."""

    text: str
    owner_kind: Literal["category", "rule"]
    owner_id: str
    index: int
    framework_id: str | None = None
    provision_id: str | None = None

    @property
    def is_reference(self) -> bool:
        """A `framework:provision` reference, not free text."""
        return self.framework_id is not None


def parse_citation(text: str) -> tuple[str, str] | None:
    """`("eu_ai_act", "art_14")` for `eu_ai_act:art_14`; None for free text."""
    match = _CITATION.match(text.strip())
    if match is None:
        return None
    return match["framework"], match["provision"]


def citations(policy: Policy) -> list[Citation]:
    """Every `regulations:` entry of the policy's categories, then of its rules, in file order."""
    owners: list[tuple[Literal["category", "rule"], Category | Rule]] = [
        ("category", c) for c in policy.categories
    ]
    owners += [("rule", r) for r in policy.rules]
    out: list[Citation] = []
    for kind, owner in owners:
        for i, text in enumerate(owner.regulations):
            parsed = parse_citation(text)
            out.append(
                Citation(
                    text=text,
                    owner_kind=kind,
                    owner_id=owner.id,
                    index=i,
                    framework_id=parsed[0] if parsed else None,
                    provision_id=parsed[1] if parsed else None,
                )
            )
    return out


def load_framework(path: str | Path) -> Framework:
    """Read and validate a framework file; raises `InputError` naming file, line and field."""
    return read_yaml_model(
        path, Framework, what="framework file", starts_with="`id:`, `title:` and `provisions:`"
    )


@functools.cache
def builtin_frameworks() -> dict[str, Framework]:
    """The frameworks policylab ships, by id: `eu_ai_act`, `nist_ai_rmf`."""
    out: dict[str, Framework] = {}
    folder = resources.files("policylab") / "frameworks"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            with resources.as_file(entry) as path:
                framework = load_framework(path)
            out[framework.id] = framework
    return out


def load_frameworks(
    paths: Iterable[str | Path] = (), *, builtin: bool = True
) -> dict[str, Framework]:
    """The shipped frameworks (unless `builtin=False`) and those in `paths`, by id; a file
    replaces a shipped framework with the same id."""
    out = dict(builtin_frameworks()) if builtin else {}
    for path in paths:
        framework = load_framework(path)
        out[framework.id] = framework
    return out
