"""A discovered cluster as a proposed new category: a draft copy of the policy, ready to diff.

The draft adds one category (id and title from the cluster's distinctive terms, a description
saying where it came from) and a few of the cluster's conversations, already redacted, as
examples; its version is the next minor version with a `-draft` pre-release tag, with a changelog
entry. Severity and expected behaviour are the reviewer's call: they are parameters, and the
description says they were not derived from data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from policylab.core import Behavior, Severity
from policylab.errors import PolicylabError
from policylab.policy.schema import Category, ChangelogEntry, Example, Policy

__all__ = ["category_id_from_terms", "draft_version", "propose_category"]

_SEMVER_CORE = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def category_id_from_terms(terms: Sequence[str], taken: Sequence[str]) -> str:
    """An unused top-level category id from the leading term, e.g. `betting odds` -> `BETTING_ODDS`."""
    base = re.sub(r"[^A-Za-z0-9]+", "_", terms[0] if terms else "new").strip("_").upper()[:24]
    if not base or not base[0].isalpha():
        base = f"NEW_{base}" if base else "NEW"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def draft_version(version: str) -> str:
    """The next minor version, tagged as a draft: `1.4.2` -> `1.5.0-draft`."""
    m = _SEMVER_CORE.match(version)
    if not m:
        raise PolicylabError(f"policy version {version!r} is not a semantic version")
    return f"{m.group(1)}.{int(m.group(2)) + 1}.0-draft"


def propose_category(
    policy: Policy,
    *,
    terms: Sequence[str],
    examples: Sequence[str],
    cluster_label: str,
    size: int,
    expected_behavior: Behavior = Behavior.REFUSE,
    severity: Severity = Severity.MEDIUM,
    category_id: str | None = None,
    max_examples: int = 3,
) -> tuple[Policy, str]:
    """The draft policy with the proposed category added, and the new category's id."""
    taken = [c.id for c in policy.categories]
    cid = category_id or category_id_from_terms(terms, taken)
    if cid in taken:
        raise PolicylabError(
            f"category {cid} already exists in {policy.id}", hint="pass another --id"
        )
    shown = ", ".join(terms[:6]) or cluster_label
    category = Category(
        id=cid,
        title=" / ".join(t.capitalize() for t in terms[:3]) or cluster_label,
        description=(
            f"Proposed from {size} deployment conversations that no category of {policy.id} "
            f"{policy.version} fits (cluster: {cluster_label}). Distinctive terms: {shown}. "
            "Severity and expected behaviour are placeholders for the reviewer: set them, "
            "write the rules, and label the examples before adopting."
        ),
        severity=severity,
        expected_behavior=expected_behavior,
    )
    new_examples = [
        Example(
            id=f"{cid.lower().replace('_', '-')}-{n:02d}",
            category=cid,
            prompt=text,
            expected_behavior=expected_behavior,
            rationale=f"A deployment conversation from cluster {cluster_label!r} (redacted).",
            tags=["proposed", "deployment"],
        )
        for n, text in enumerate([t for t in examples if t.strip()][:max_examples], start=1)
    ]
    version = draft_version(policy.version)
    draft = policy.model_copy(
        update={
            "version": version,
            "categories": [*policy.categories, category],
            "examples": [*policy.examples, *new_examples],
            "changelog": [
                *policy.changelog,
                ChangelogEntry(
                    version=version,
                    summary=f"Draft: proposed category {cid} from a cluster of {size} "
                    f"deployment conversations ({cluster_label}).",
                ),
            ],
        }
    )
    return Policy.model_validate(draft.model_dump()), cid
