"""What a compiler works on: one category with its descendants, or the whole policy.

`scope` feeds the labelling guide and the training rows (a category and its whole subtree);
`grader_scope` feeds the grader prompt, which judges items of one category and so needs that
category's own criteria, its ancestors' and a line per child rather than the whole subtree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from policylab.errors import PolicylabError
from policylab.policy.schema import (
    AmbiguityRule,
    Category,
    Definition,
    Example,
    Policy,
    Precedence,
    Rule,
)


@dataclass
class Scope:
    """Categories (in tree order, with their depth), rules, examples and context for one compile."""

    policy: Policy
    focus: Category | None
    categories: list[tuple[Category, int]]
    rules: list[Rule]
    examples: list[Example]
    precedence: list[Precedence]
    ambiguity: list[AmbiguityRule]
    definitions: list[Definition] = field(default_factory=list)

    def rules_of(self, category_id: str) -> list[Rule]:
        return [r for r in self.rules if r.category_id == category_id]

    def examples_of(self, category_id: str) -> list[Example]:
        return [e for e in self.examples if e.category == category_id]


def tree(policy: Policy, categories: list[Category] | None = None) -> list[tuple[Category, int]]:
    """Categories depth-first, each parent before its children, in file order among siblings.

    A category whose parent is missing (a lint error) is treated as a root so it is not lost.
    """
    cats = policy.categories if categories is None else categories
    ids = {c.id for c in cats}
    out: list[tuple[Category, int]] = []
    seen: set[int] = set()

    def visit(cat: Category, depth: int) -> None:
        if id(cat) in seen:
            return
        seen.add(id(cat))
        out.append((cat, depth))
        for child in cats:
            if child.parent_id == cat.id:
                visit(child, depth + 1)

    for cat in cats:
        if cat.parent_id is None or cat.parent_id not in ids:
            visit(cat, 0)
    return out


def require_category(policy: Policy, category_id: str) -> Category:
    found = policy.category(category_id)
    if found is None:
        known = ", ".join(c.id for c in policy.categories) or "(none)"
        raise PolicylabError(
            f"policy {policy.id} has no category `{category_id}`",
            hint=f"use one of: {known}",
        )
    return found


def scope(policy: Policy, category: str | None = None) -> Scope:
    """The categories, rules, examples, precedence and ambiguity rules that bear on `category`.

    Precedence entries count when they name the category, one of its descendants or ancestors.
    Ambiguity rules count when they name no category (they apply everywhere) or a related one.
    Definitions are those whose term or an alias appears in the selected text.
    """
    if category is None:
        return Scope(
            policy=policy,
            focus=None,
            categories=tree(policy),
            rules=list(policy.rules),
            examples=list(policy.examples),
            precedence=list(policy.precedence),
            ambiguity=list(policy.ambiguity),
            definitions=list(policy.definitions),
        )
    focus = require_category(policy, category)

    def related(other: str) -> bool:
        return policy.is_under(other, focus.id) or policy.is_under(focus.id, other)

    cats = [c for c in policy.categories if policy.is_under(c.id, focus.id)]
    selected = Scope(
        policy=policy,
        focus=focus,
        categories=tree(policy, cats),
        rules=[r for r in policy.rules if policy.is_under(r.category_id, focus.id)],
        examples=[e for e in policy.examples if policy.is_under(e.category, focus.id)],
        precedence=[
            p for p in policy.precedence if related(p.category) or any(related(o) for o in p.over)
        ],
        ambiguity=[
            a for a in policy.ambiguity if not a.categories or any(related(c) for c in a.categories)
        ],
    )
    selected.definitions = used_definitions(policy.definitions, _texts(selected))
    return selected


@dataclass
class GraderScope:
    """What a grader prompt for one category (or, with no focus, the whole policy) may hold.

    `rules` is mandatory; the other lists are candidates the prompt takes while its budget lasts.
    """

    policy: Policy
    focus: Category | None
    lineage: list[Category]  # the focus's ancestors, root first
    children: list[Category]  # its direct subcategories, one routing line each
    categories: list[tuple[Category, int]]  # the whole tree, for the whole-policy prompt only
    rules: list[Rule]  # the ancestors' rules, then the focus's own
    precedence: list[Precedence]
    scoped_ambiguity: list[AmbiguityRule]  # those naming a related category
    global_ambiguity: list[AmbiguityRule]  # those naming none: they apply everywhere
    examples: list[Example]  # those of the focus and its descendants


def grader_scope(policy: Policy, category: str | None = None) -> GraderScope:
    """The parts a grader prompt for `category` (None: the whole policy) is assembled from.

    A category is related to the focus when it is the focus, an ancestor or a descendant: a
    precedence entry or an ambiguity rule that names one bears on the focus's items (a parent
    routes to its children, so what decides between them bears on it too).
    """
    if category is None:
        return GraderScope(
            policy=policy,
            focus=None,
            lineage=[],
            children=[],
            categories=tree(policy),
            rules=list(policy.rules),
            precedence=list(policy.precedence),
            scoped_ambiguity=[a for a in policy.ambiguity if a.categories],
            global_ambiguity=[a for a in policy.ambiguity if not a.categories],
            examples=list(policy.examples),
        )
    focus = require_category(policy, category)

    def related(other: str) -> bool:
        return policy.is_under(other, focus.id) or policy.is_under(focus.id, other)

    chain = [*reversed(policy.ancestors(focus.id)), focus.id]
    lineage = [c for cid in chain[:-1] if (c := policy.category(cid)) is not None]
    return GraderScope(
        policy=policy,
        focus=focus,
        lineage=lineage,
        children=policy.children(focus.id),
        categories=[],
        rules=[r for cid in chain for r in policy.rules_for(cid)],
        precedence=[
            p for p in policy.precedence if related(p.category) or any(related(o) for o in p.over)
        ],
        scoped_ambiguity=[a for a in policy.ambiguity if any(related(c) for c in a.categories)],
        global_ambiguity=[a for a in policy.ambiguity if not a.categories],
        examples=[e for e in policy.examples if policy.is_under(e.category, focus.id)],
    )


def _texts(s: Scope) -> str:
    parts: list[str] = []
    for cat, _ in s.categories:
        parts += [cat.title, cat.description]
    for rule in s.rules:
        parts += [rule.title, *rule.allowed, *rule.violating, *rule.escalate, *rule.ambiguity]
    for p in s.precedence:
        parts.append(p.reason)
    for a in s.ambiguity:
        parts += [a.when, a.resolve]
    for e in s.examples:
        parts.append(e.rationale)
    return "\n".join(parts)


def used_definitions(definitions: list[Definition], text: str) -> list[Definition]:
    """The definitions whose term or an alias appears in `text` as a whole word, any case."""
    out = []
    for d in definitions:
        names = [d.term, *d.aliases]
        pattern = r"(?<!\w)(?:" + "|".join(re.escape(n) for n in names if n) + r")(?!\w)"
        if re.search(pattern, text, flags=re.IGNORECASE):
            out.append(d)
    return out
