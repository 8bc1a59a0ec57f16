"""Labelled responses the local grader learns from: the seed set, the policy's examples, gold labels.

The seed set (`graders/seed/responses.jsonl`) holds responses written by the policylab team across
many domains, styles and lengths; the policy's GOOD/BAD and labelled responses come from
`compile_examples`; gold labels come from files or from the workspace (human verdicts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import orjson

from policylab.chat import ChatMessage, transcript_text
from policylab.core import Behavior
from policylab.errors import InputError, Location, PolicylabError, Problem
from policylab.graders.base import Sample
from policylab.graders.io import read_gold
from policylab.policy.compile.examples import compile_examples
from policylab.policy.schema import Policy

__all__ = [
    "TrainingRow",
    "gold_rows",
    "policy_requests",
    "policy_rows",
    "seed_rows",
    "training_digest",
]


@dataclass(frozen=True)
class TrainingRow:
    id: str
    request: str
    response: str
    behavior: Behavior
    source: str
    """`seed`, `policy:<id>@<version>`, or `gold:<name>`."""
    group: str
    """What held-out evaluation splits by: the seed row's domain, the example's category, the file."""
    category: str | None = None


def _request_text(messages: Sequence[ChatMessage]) -> str:
    return Sample(id="_", messages=list(messages), response="").request_text


def seed_path() -> Path:
    return Path(str(resources.files("policylab.graders") / "seed" / "responses.jsonl"))


def seed_rows(path: Path | None = None) -> list[TrainingRow]:
    """The seed set. Raises `InputError` naming the line of any malformed row."""
    file = path or seed_path()
    rows: list[TrainingRow] = []
    problems: list[Problem] = []
    with file.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                rows.append(
                    TrainingRow(
                        id=str(obj["id"]),
                        request=str(obj["prompt"]),
                        response=str(obj["response"]),
                        behavior=Behavior(obj["behavior"]),
                        source="seed",
                        group=f"seed:{obj.get('domain') or 'unknown'}",
                    )
                )
            except (orjson.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
                problems.append(Problem(f"bad seed row: {exc!r}", Location(file, number)))
    if problems:
        raise InputError(problems, what=f"seed set {file}")
    return rows


def policy_rows(policy: Policy) -> list[TrainingRow]:
    """The policy's labelled responses (its examples' `response`, GOOD and BAD responses)."""
    out: list[TrainingRow] = []
    for row in compile_examples(policy):
        if row["response"] is None or row["behavior"] is None:
            continue
        messages = [ChatMessage.model_validate(m) for m in row["messages"]]
        out.append(
            TrainingRow(
                id=row["id"],
                request=_request_text(messages),
                response=row["response"],
                behavior=Behavior(row["behavior"]),
                source=row["source"],
                group=f"policy:{row['category']}",
                category=row["category"],
            )
        )
    return out


def policy_requests(policy: Policy) -> list[tuple[str, str, str]]:
    """(example id, request text, category) of every example: the neighbours for category kNN."""
    return [(e.id, transcript_text(e.conversation), e.category) for e in policy.examples]


def gold_rows(path: Path) -> list[TrainingRow]:
    """A gold JSONL file (`id`, `prompt`/`messages`, `response`, `behavior`) as training rows."""
    gold, bad = read_gold(path)
    if bad:
        raise InputError([b.problem for b in bad], what=f"gold file {path}")
    if not gold:
        raise PolicylabError(
            f"{path}: no gold rows", hint="each line needs id, prompt, response, behavior"
        )
    name = path.stem
    return [
        TrainingRow(
            id=g.sample.id,
            request=g.sample.request_text,
            response=g.sample.response,
            behavior=g.behavior,
            source=f"gold:{name}",
            group=f"gold:{name}",
            category=g.sample.category,
        )
        for g in gold
    ]


def training_digest(rows: Iterable[TrainingRow]) -> str:
    """A digest of the training data (texts and labels), recorded with every verdict."""
    digest = hashlib.sha256()
    for r in sorted(rows, key=lambda r: (r.source, r.id)):
        digest.update(orjson.dumps([r.source, r.id, r.request, r.response, r.behavior.value]))
    return digest.hexdigest()[:16]
