"""Compile a policy into a labelling guide for human annotators, as Markdown or one HTML page.

The guide says what to label (behaviour, violation, category, rule ids), then gives the definitions,
the taxonomy with each category's expected behaviour, harm model and rules, the precedence and
ambiguity rules, and each category's examples on both sides of its line. Every category, rule,
definition and example has an anchor (`#cat-CYB.2`, `#rule-CYB.2.a`, `#def-uplift`, `#ex-cyb-01`) so
the labelling page can link to the passage an item is about. The HTML page is self-contained: inline
CSS, no scripts, fonts or images from elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from policylab.chat import ChatMessage
from policylab.core import Behavior
from policylab.policy.compile._labels import LabelledResponse, labelled_responses
from policylab.policy.compile._scope import scope
from policylab.policy.schema import Category, Example, HarmModel, Policy, Rule
from policylab.templating import render

GuideFormat = Literal["markdown", "html"]


@dataclass(frozen=True)
class GuideExample:
    example: Example
    turns: list[ChatMessage]
    responses: list[LabelledResponse]


@dataclass(frozen=True)
class GuideCategory:
    category: Category
    depth: int
    harm_model: HarmModel | None
    inherited_from: str | None
    rules: list[Rule]
    allowed: list[GuideExample]
    violating: list[GuideExample]


@dataclass(frozen=True)
class TocNode:
    section: GuideCategory
    children: list[TocNode]


def anchor(kind: str, key: str) -> str:
    """The anchor id of a guide section: `cat-CYB.2`, `rule-CYB.2.a`, `def-safe-completion`, ..."""
    if kind == "def":
        key = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")
    return f"{kind}-{key}"


def compile_guide(
    policy: Policy, *, fmt: GuideFormat = "markdown", category: str | None = None
) -> str:
    """The labelling guide for the whole policy, or for one category and its descendants.

    Raises `PolicylabError` when `category` is not in the policy, `ValueError` for an unknown
    format.
    """
    if fmt not in ("markdown", "html"):
        raise ValueError(f"unknown guide format {fmt!r}: use 'markdown' or 'html'")
    selected = scope(policy, category)
    sections = [
        _section(policy, cat, depth, selected.rules_of(cat.id), selected.examples_of(cat.id))
        for cat, depth in selected.categories
    ]
    template = "guide.md.j2" if fmt == "markdown" else "guide.html.j2"
    return render(
        template,
        policy=policy,
        scope=selected,
        sections=sections,
        toc=_toc(sections),
        anchor=anchor,
        titles={c.id: c.title for c in policy.categories},
        rule_ids={r.id for r in selected.rules},
        category_ids={c.id for c, _ in selected.categories},
        Behavior=Behavior,
    )


def _section(
    policy: Policy, cat: Category, depth: int, rules: list[Rule], examples: list[Example]
) -> GuideCategory:
    harm, source = cat.harm_model, None
    if harm is None:
        for ancestor_id in policy.ancestors(cat.id):
            ancestor = policy.category(ancestor_id)
            if ancestor is not None and ancestor.harm_model is not None:
                harm, source = ancestor.harm_model, ancestor_id
                break
    shown = [GuideExample(e, e.conversation, labelled_responses(e)) for e in examples]
    return GuideCategory(
        category=cat,
        depth=depth,
        harm_model=harm,
        inherited_from=source,
        rules=rules,
        allowed=[g for g in shown if g.example.side == "allowed"],
        violating=[g for g in shown if g.example.side == "violating"],
    )


def _toc(sections: list[GuideCategory]) -> list[TocNode]:
    """The flat, depth-first sections as a tree, for nested lists."""
    roots: list[TocNode] = []
    stack: list[TocNode] = []
    for s in sections:
        node = TocNode(s, [])
        while stack and stack[-1].section.depth >= s.depth:
            stack.pop()
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return roots
