"""Compile a policy into grader prompts for a policy-following judge such as gpt-oss-safeguard.

The prompt follows the shape the gpt-oss-safeguard user guide recommends (ROOST and OpenAI, "User
guide for gpt-oss-safeguard", OpenAI Cookbook, 2025-10-29): INSTRUCTIONS, DEFINITIONS, criteria
(what violates and what does not), the output format, then short examples on both sides of the
line. The guide finds 400-600 tokens best, so every category (leaf or parent) gets its own prompt,
the one a judge uses for items of that category, assembled to fit a token budget (by default the
policy's `grader_token_budget`):

1. Mandatory, whatever the budget: the instructions, the output contract, the category (title,
   description, expected behaviour; a parent adds one routing line per child) and its rules,
   with its ancestors' rules (they apply to its items too).
2. Then each optional part is kept only if the whole prompt still fits, in this order:
   one example on each side of the line (the shortest of each side); precedence entries that
   name the category, an ancestor or a descendant; ambiguity rules scoped to one of those; the
   definitions whose term the prompt's text uses; more examples, alternating sides; ambiguity
   rules that apply to every category.

The first pair of examples goes before the context because a prompt that shows neither side of
the line teaches the judge less than a precedence or ambiguity line does; with it after the
context, no category of the example pack could show an example within 600 tokens. What did not
fit is listed in `CompiledPrompt.omitted`. The text lives in `templates/policy/grader.md.j2`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TypeVar

from policylab.chat import transcript_text
from policylab.core import Behavior
from policylab.policy.compile._labels import labelled_responses
from policylab.policy.compile._scope import GraderScope, grader_scope, tree, used_definitions
from policylab.policy.compile.tokens import count_tokens
from policylab.policy.schema import AmbiguityRule, Definition, Example, Policy, Precedence
from policylab.templating import render

_CLIP = 600
# The whole-policy prompt's default budget: the gpt-oss-safeguard guide reports the model copes with
# policies of about 10,000 tokens, though it works best with 400-600 (hence one prompt per category).
WHOLE_POLICY_BUDGET = 10_000
_T = TypeVar("_T")


@dataclass(frozen=True)
class Shot:
    """One example as the grader prompt shows it."""

    id: str
    side: str
    conversation: str
    response: str | None
    answer: str | None
    expected: Behavior
    rationale: str

    @property
    def tokens(self) -> int:
        parts = (self.conversation, self.response, self.answer, self.rationale)
        return count_tokens("\n".join(p for p in parts if p))


@dataclass(frozen=True)
class CompiledPrompt:
    """A grader prompt and how it was fitted to its budget.

    `str(prompt)` is the text. `mandatory_tokens` counts the parts kept whatever the budget; when
    it is over `budget` the prompt is too (lint T001). `included` and `omitted` name the optional
    parts (`precedence CYB over MED`, `ambiguity fiction`, `definition Uplift`, `example cyb-01`)
    that fitted and those that did not, in the order they were tried.
    """

    category: str | None
    text: str
    tokens: int
    budget: int
    mandatory_tokens: int
    included: list[str] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)
    shots: list[Shot] = field(default_factory=list)

    def __str__(self) -> str:
        return self.text

    @property
    def over_budget(self) -> bool:
        return self.tokens > self.budget

    def sides_shown(self) -> set[str]:
        """The sides of the line (allowed, violating) that at least one shown example is on."""
        return {shot.side for shot in self.shots}


def compile_grader_prompt(
    policy: Policy, *, category: str | None = None, budget: int | None = None
) -> CompiledPrompt:
    """The grader prompt for `category`, fitted to `budget` tokens (see the module docstring).

    `budget` defaults to the policy's `grader_token_budget`. With no category the prompt covers
    the whole policy (every category and rule, for items whose category is unknown); its budget
    defaults to `WHOLE_POLICY_BUDGET`.

    Raises `PolicylabError` when `category` is not in the policy.
    """
    if budget is None:
        budget = policy.grader_token_budget if category is not None else WHOLE_POLICY_BUDGET
    return _Assembly(grader_scope(policy, category), budget).run()


def compile_grader_prompt_text(
    policy: Policy, *, category: str | None = None, budget: int | None = None
) -> str:
    """The text of `compile_grader_prompt(...)`."""
    return compile_grader_prompt(policy, category=category, budget=budget).text


def grader_prompts(policy: Policy, *, budget: int | None = None) -> dict[str, CompiledPrompt]:
    """A grader prompt for every category, parents before their children, by category id."""
    return {
        cat.id: compile_grader_prompt(policy, category=cat.id, budget=budget)
        for cat, _ in tree(policy)
    }


def order_examples(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """The allowed and the violating examples, each shortest first (in tokens as shown).

    The guide asks for short examples, and under a budget a short one leaves room for more
    context; ties keep file order, so the prompt is stable.
    """

    def ranked(side: str) -> list[Example]:
        return sorted((e for e in examples if e.side == side), key=lambda e: _shot(e).tokens)

    return ranked("allowed"), ranked("violating")


class _Assembly:
    """Greedy assembly: each optional part is kept when the whole prompt still fits the budget."""

    def __init__(self, scope: GraderScope, budget: int) -> None:
        self.scope = scope
        self.budget = budget
        self.precedence: list[Precedence] = []
        self.ambiguity: list[AmbiguityRule] = []
        self.definitions: list[Definition] = []
        self.shots: list[Shot] = []
        self.included: list[str] = []
        self.omitted: list[str] = []
        self.titles = {c.id: c.title for c in scope.policy.categories}
        self.order = {id(a): i for i, a in enumerate(scope.policy.ambiguity)}
        allowed, violating = order_examples(scope.examples)
        self.pools = ([_shot(e) for e in allowed], [_shot(e) for e in violating])
        self.text = self.render()
        self.tokens = count_tokens(self.text)

    def run(self) -> CompiledPrompt:
        s = self.scope
        mandatory = self.tokens
        self.add_examples(first=True)  # before the context: see the module docstring
        for p in s.precedence:
            self.offer(f"precedence {p.category} over {', '.join(p.over)}", self.precedence, p)
        for a in s.scoped_ambiguity:
            self.offer(f"ambiguity {a.id}", self.ambiguity, a)
        for d in used_definitions(s.policy.definitions, self.content()):
            self.offer(f"definition {d.term}", self.definitions, d)
        self.add_examples(first=False)
        for a in s.global_ambiguity:
            self.offer(f"ambiguity {a.id}", self.ambiguity, a)
        return CompiledPrompt(
            category=s.focus.id if s.focus else None,
            text=self.text,
            tokens=self.tokens,
            budget=self.budget,
            mandatory_tokens=mandatory,
            included=self.included,
            omitted=self.omitted,
            shots=self.shots,
        )

    def render(self) -> str:
        return render(
            "grader.md.j2",
            policy=self.scope.policy,
            scope=self.scope,
            definitions=self.definitions,
            precedence=self.precedence,
            ambiguity=sorted(self.ambiguity, key=lambda a: self.order[id(a)]),
            shots=self.shots,
            titles=self.titles,
        )

    def keep_if_fits(self, labels: list[str], target: list[_T], items: list[_T]) -> bool:
        """Append `items` to `target`; keep them if the prompt still fits, else mark them omitted."""
        target.extend(items)
        text = self.render()
        tokens = count_tokens(text)
        if tokens > self.budget:
            del target[len(target) - len(items) :]
            self.omitted += labels
            return False
        self.text, self.tokens = text, tokens
        self.included += labels
        return True

    def offer(self, label: str, target: list[_T], item: _T) -> bool:
        return self.keep_if_fits([label], target, [item])

    def add_examples(self, *, first: bool) -> None:
        """Examples in allowed/violating pairs, so neither side of the line is shown alone.

        Each side is taken shortest first. When the next pair does not fit, no more examples are
        shown; once one side has none left, the other side's are offered one by one. With
        `first`, only the first pair (or, with one side only, the first example) is offered.
        """
        allowed, violating = self.pools
        while allowed and violating:
            pair = [allowed.pop(0), violating.pop(0)]
            if not self.keep_if_fits([f"example {s.id}" for s in pair], self.shots, pair):
                self.omitted += [f"example {s.id}" for s in [*allowed, *violating]]
                allowed.clear()
                violating.clear()
                return
            if first:
                return
        rest = allowed or violating
        while rest:
            self.offer(f"example {rest[0].id}", self.shots, rest.pop(0))
            if first:
                return

    def content(self) -> str:
        """The policy text shown so far: a definition is offered when its term appears in it."""
        s = self.scope
        cats = [c for c, _ in s.categories] or ([s.focus] if s.focus else [])
        parts = [t for c in cats for t in (c.title, c.description)]
        parts += [c.title for c in [*s.lineage, *s.children]]  # shown by id and title only
        for r in s.rules:
            parts += [r.title, *r.violating, *r.allowed, *r.escalate, *r.ambiguity]
        parts += [p.reason for p in self.precedence]
        parts += [t for a in self.ambiguity for t in (a.when, a.resolve)]
        return "\n".join(parts)


def _shot_response(example: Example) -> tuple[str, Behavior, bool] | None:
    """The labelled response a shot shows: on the violating side, one that violates if any (it
    shows the line being crossed, which teaches a judge more than a refusal does); else the first."""
    known = [
        (r.text, r.behavior, r.violation)
        for r in labelled_responses(example)
        if r.behavior is not None and r.violation is not None
    ]
    if example.side == "violating":
        known.sort(key=lambda k: not k[2])  # stable: violating responses first, in file order
    return known[0] if known else None


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1].rstrip() + "…"


def _shot(example: Example) -> Shot:
    found = _shot_response(example)
    answer: str | None = None
    response: str | None = None
    if found is not None:
        text, behavior, violation = found
        response = _clip(text)
        answer = json.dumps(
            {
                "behavior": behavior.value,
                "violation": violation,
                "category": example.category,
                "rule_ids": example.rule_ids,
            },
            ensure_ascii=False,
        )
    return Shot(
        id=example.id,
        side=example.side,
        conversation=_clip(transcript_text(example.conversation)),
        response=response,
        answer=answer,
        expected=example.expected_behavior,
        rationale=example.rationale,
    )
