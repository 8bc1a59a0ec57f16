"""Check a loaded policy for mistakes the schema cannot see.

Each finding has a stable code (the table in `docs/lint-codes.md`), a severity, the file, line and
column it is about, a message and a hint. Codes by family: D (ids that are duplicated or point
nowhere), C (coverage by examples), V (vague wording), X (example labels that contradict each
other), H (expected behaviour against the harm model), T (grader prompt length), G (launch gates),
M (mappings to external taxonomies), A (action rules), R (regulatory citations).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from policylab.core import Behavior, Severity
from policylab.errors import Location
from policylab.policy.compile.grader import compile_grader_prompt
from policylab.policy.compile.tokens import count_tokens
from policylab.policy.frameworks import Framework, builtin_frameworks
from policylab.policy.lint_actions import action_problems, regulation_problems
from policylab.policy.loader import LoadedPolicy, SourceMap
from policylab.policy.schema import (
    Category,
    Example,
    HarmModel,
    Level,
    Policy,
    ResponseLabel,
    Reversibility,
    Rule,
)


class FindingSeverity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One problem the linter found, and where."""

    code: str
    severity: FindingSeverity
    location: Location
    message: str
    hint: str | None = None

    def render(self) -> str:
        """`file:line:col: SEVERITY CODE message`, the form editors and CI logs understand."""
        loc = self.location
        where = str(loc.file) if loc.file else "<policy>"
        if loc.line is not None:
            where += f":{loc.line}:{loc.column or 1}"
        return f"{where}: {self.severity.value.upper()} {self.code} {self.message}"

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "code": self.code,
            "severity": self.severity.value,
            "file": str(loc.file) if loc.file else None,
            "line": loc.line,
            "column": loc.column,
            "field": loc.field,
            "message": self.message,
            "hint": self.hint,
        }


_E, _W, _I = FindingSeverity.ERROR, FindingSeverity.WARNING, FindingSeverity.INFO

# code -> (severity, what it means). `docs/lint-codes.md` documents each with how to fix it.
CODES: dict[str, tuple[FindingSeverity, str]] = {
    "D001": (_E, "duplicate id"),
    "D002": (_E, "a rule's category does not exist"),
    "D003": (_E, "an example's category does not exist"),
    "D004": (_E, "an example lists a rule id that does not exist"),
    "D005": (_E, "a precedence entry names a category that does not exist"),
    "D006": (_E, "the parent implied by a dotted category id does not exist"),
    "D007": (_E, "an ambiguity rule names a category that does not exist"),
    "D008": (_W, "an example lists a rule of an unrelated category"),
    "C001": (_W, "a category has no example on the allowed side of its line"),
    "C002": (_W, "a category has no example on the violating side of its line"),
    "C003": (_W, "no example exercises a rule"),
    "C004": (_I, "a rule says what violates but not what is allowed"),
    "V001": (_W, "vague quantifier in a criterion"),
    "X001": (_W, "a violating-side example expects a behaviour other than its category's"),
    "X002": (_E, "a response complies with a violating-side request but `violates: false`"),
    "X003": (_E, "a response does what the example expects but `violates: true`"),
    "X004": (_W, "a GOOD response's behaviour differs from the example's expected behaviour"),
    "X005": (_I, "an example's response has no `response_behavior`"),
    "X006": (_E, "a refusing response is marked `violates: true`"),
    "H001": (_E, "high or critical severity with high uplift is expected to comply"),
    "H002": (_W, "irreversible harm with high likelihood is expected to comply"),
    "H003": (_W, "low severity with no or low uplift is expected to refuse (over-refusal risk)"),
    "H004": (_W, "a category has no harm model (nor does any ancestor)"),
    "T001": (_W, "a category's own grader prompt text is over the token budget"),
    "T002": (_I, "a grader prompt has no room for an example on each side of the line"),
    "G001": (_W, "a severity tier in use has no `under_refusal` gate"),
    "G002": (_W, "no `over_refusal` gate"),
    "G003": (_I, "no `grader_agreement` gate"),
    "G004": (_W, "a more severe tier has a looser `under_refusal` gate than a less severe one"),
    "M001": (_E, "a Llama Guard mapping code is not one of S1-S14"),
    "M002": (_E, "an AILuminate mapping code is not a v1.0 hazard code"),
    "A001": (_E, "an action pattern names a tool that is not among the declared tools"),
    "A002": (_E, "a regular expression in an action pattern does not compile"),
    "A003": (_I, "an action rule has no action patterns"),
    "R001": (_E, "a regulation reference names a provision its framework does not list"),
    "R002": (_I, "a regulation reference names a framework that is not loaded"),
}

# Words that leave a criterion open to each reader's judgement; the gpt-oss-safeguard guide advises
# against "generally" and "usually" for the same reason (they invite false positives).
VAGUE_TERMS = (
    "generally",
    "usually",
    "may",
    "might",
    "often",
    "typically",
    "some",
    "sometimes",
    "as appropriate",
    "reasonable",
    "etc.",
)
_VAGUE = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(t) for t in VAGUE_TERMS) + r")(?=\W|$)", re.IGNORECASE
)

LLAMA_GUARD_CODES = tuple(f"S{i}" for i in range(1, 15))
# MLCommons AILuminate v1.0 hazard taxonomy.
AILUMINATE_CODES = (
    "vcr",
    "src",
    "cse",
    "ssh",
    "iwp",
    "ipv",
    "dfm",
    "ncr",
    "hte",
    "prv",
    "spc_ele",
    "spc_fin",
    "spc_hlt",
    "spc_lgl",
    "sxc_prn",
)

_T = TypeVar("_T")


def lint(
    loaded: LoadedPolicy,
    *,
    token_budget: int | None = None,
    tools: Collection[str] | None = None,
    frameworks: Mapping[str, Framework] | None = None,
) -> list[Finding]:
    """Every finding for `loaded`, ordered by file (root first, then includes) and line.

    `token_budget` overrides the policy's `grader_token_budget` for the T001 check. `tools`, the
    names of the tools an agent is given, turns on the A001 check of action rules. `frameworks`
    (default: the shipped ones) are what `framework:provision` citations are checked against.
    """
    checker = _Checker(loaded.policy, loaded.sources)
    checker.run(token_budget=token_budget)
    for code, at, message, hint in action_problems(loaded.policy, loaded.sources, tools):
        checker.add(code, at, message, hint)
    known = builtin_frameworks() if frameworks is None else frameworks
    for code, at, message, hint in regulation_problems(loaded.policy, loaded.sources, known):
        checker.add(code, at, message, hint)
    rank = {_key(f): i for i, f in enumerate(loaded.files)}

    def order(f: Finding) -> tuple[int, int, int, str]:
        loc = f.location
        file_rank = rank.get(_key(loc.file), len(rank)) if loc.file else len(rank) + 1
        return (file_rank, loc.line or 0, loc.column or 0, f.code)

    return sorted(checker.findings, key=order)


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is FindingSeverity.ERROR for f in findings)


def _key(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)


def _numbered(items: list[_T], key: str) -> Iterator[tuple[_T, str, int]]:
    """Each item with its id and its occurrence among items sharing that id (for locating)."""
    seen: Counter[str] = Counter()
    for item in items:
        value = str(getattr(item, key))
        yield item, value, seen[value]
        seen[value] += 1


class _Checker:
    def __init__(self, policy: Policy, sources: SourceMap) -> None:
        self.policy = policy
        self.src = sources
        self.findings: list[Finding] = []
        self.category_ids = {c.id for c in policy.categories}
        self.rule_ids = {r.id for r in policy.rules}

    def add(self, code: str, location: Location, message: str, hint: str | None = None) -> None:
        self.findings.append(Finding(code, CODES[code][0], location, message, hint))

    def run(self, *, token_budget: int | None) -> None:
        self.duplicates()
        self.categories()
        self.rules()
        self.examples()
        self.precedence_and_ambiguity()
        self.coverage()
        self.gates()
        self.token_budget(token_budget or self.policy.grader_token_budget)

    # D001
    def duplicates(self) -> None:
        p = self.policy
        sections: list[tuple[str, str, list[Any]]] = [
            ("definitions", "term", p.definitions),
            ("categories", "id", p.categories),
            ("rules", "id", p.rules),
            ("ambiguity", "id", p.ambiguity),
            ("examples", "id", p.examples),
        ]
        for section, key, items in sections:
            for _, value, n in _numbered(items, key):
                if n == 0:
                    continue
                first = self.src.locate(section, value)
                self.add(
                    "D001",
                    self.src.locate(section, value, key, occurrence=n),
                    f"duplicate {_NOUNS[section]} `{value}`: first defined at "
                    f"{_where(first, self.src.root.parent)}",
                    "give each one its own id (ids are how results, labels and diffs refer to it)",
                )

    # D006, H001-H004, M001, M002
    def categories(self) -> None:
        for cat, cid, n in _numbered(self.policy.categories, "id"):
            parent = cat.parent_id
            if parent is not None and parent not in self.category_ids:
                self.add(
                    "D006",
                    self.src.locate("categories", cid, "id", occurrence=n),
                    f"category `{cid}` implies a parent category `{parent}`, which does not exist",
                    f"add a category `{parent}`, or rename `{cid}`",
                )
            self.harm(cat, n)
            self.mappings(cat, n)

    def _harm_model(self, cat: Category) -> HarmModel | None:
        if cat.harm_model is not None:
            return cat.harm_model
        for ancestor in self.policy.ancestors(cat.id):
            found = self.policy.category(ancestor)
            if found is not None and found.harm_model is not None:
                return found.harm_model
        return None

    def harm(self, cat: Category, n: int) -> None:
        hm = self._harm_model(cat)
        behavior_at = self.src.locate("categories", cat.id, "expected_behavior", occurrence=n)
        if hm is None:
            self.add(
                "H004",
                self.src.locate("categories", cat.id, occurrence=n),
                f"category `{cat.id}` has no harm model, and none of its ancestors has one",
                "add `harm_model:` (harmed, mechanism, actors, likelihood, reversibility, uplift)",
            )
            return
        sev = cat.severity
        expected = cat.expected_behavior
        if (
            sev in (Severity.HIGH, Severity.CRITICAL)
            and hm.uplift is Level.HIGH
            and expected is Behavior.COMPLY
        ):
            self.add(
                "H001",
                behavior_at,
                f"category `{cat.id}` is {sev.value} severity with high uplift but expects "
                "`comply`",
                "expect `refuse` or `partial`, or lower the uplift if the information is freely "
                "available",
            )
        if (
            hm.reversibility is Reversibility.IRREVERSIBLE
            and hm.likelihood is Level.HIGH
            and expected is Behavior.COMPLY
        ):
            self.add(
                "H002",
                behavior_at,
                f"category `{cat.id}` describes irreversible harm with high likelihood but expects "
                "`comply`",
                "expect `partial` or `refuse`, or revisit the likelihood",
            )
        if (
            sev is Severity.LOW
            and hm.uplift in (Level.NONE, Level.LOW)
            and expected is Behavior.REFUSE
        ):
            self.add(
                "H003",
                behavior_at,
                f"category `{cat.id}` is low severity with "
                f"{'no' if hm.uplift is Level.NONE else 'low'} uplift but expects `refuse`: a "
                "refusal here protects little and costs helpfulness",
                "expect `comply` or `partial`, or raise the severity if the harm is greater",
            )

    def mappings(self, cat: Category, n: int) -> None:
        checks = (
            ("llama_guard", "M001", LLAMA_GUARD_CODES, "Llama Guard"),
            ("ailuminate", "M002", AILUMINATE_CODES, "AILuminate v1.0"),
        )
        for namespace, code, valid, name in checks:
            for i, value in enumerate(cat.mappings.get(namespace, [])):
                if value in valid:
                    continue
                close = difflib.get_close_matches(value, valid, n=1, cutoff=0.5)
                close = [v for v in valid if v.lower() == value.lower()] or close
                hint = f"did you mean `{close[0]}`? " if close else ""
                self.add(
                    code,
                    self.src.locate("categories", cat.id, "mappings", namespace, i, occurrence=n),
                    f"`{value}` is not a hazard code of {name} (category `{cat.id}`)",
                    hint + "valid codes: " + ", ".join(valid),
                )

    # D002, C004, V001
    def rules(self) -> None:
        for rule, rid, n in _numbered(self.policy.rules, "id"):
            if rule.category_id not in self.category_ids:
                if rule.category is not None:
                    at = self.src.locate("rules", rid, "category", occurrence=n)
                    why = ""
                else:
                    at = self.src.locate("rules", rid, "id", occurrence=n)
                    why = " (taken from its id)"
                self.add(
                    "D002",
                    at,
                    f"rule `{rid}` belongs to category `{rule.category_id}`{why}, which does not "
                    "exist",
                    f"add a category `{rule.category_id}`, or set the rule's `category:`",
                )
            if not rule.allowed:
                self.add(
                    "C004",
                    self.src.locate("rules", rid, occurrence=n),
                    f"rule `{rid}` lists what violates but nothing under `allowed`",
                    "say what near this line is allowed: graders and labellers need both sides",
                )
            for field in ("allowed", "violating", "escalate", "ambiguity"):
                for i, text in enumerate(getattr(rule, field)):
                    self.vague(text, self.src.locate("rules", rid, field, i, occurrence=n))

    def vague(self, text: str, at: Location) -> None:
        words = list(dict.fromkeys(m.group(1).lower() for m in _VAGUE.finditer(text)))
        if words:
            quoted = ", ".join(f'"{w}"' for w in words)
            self.add(
                "V001",
                at,
                f"vague quantifier {quoted} in: {_short(text)}",
                "state the condition exactly (which cases, what threshold); vague words make "
                "graders and labellers disagree",
            )

    # D003, D004, D008, X001-X005
    def examples(self) -> None:
        p = self.policy
        for ex, eid, n in _numbered(p.examples, "id"):
            cat = p.category(ex.category)
            if cat is None:
                self.add(
                    "D003",
                    self.src.locate("examples", eid, "category", occurrence=n),
                    f"example `{eid}` is in category `{ex.category}`, which does not exist",
                    _did_you_mean(ex.category, self.category_ids),
                )
            for i, rid in enumerate(ex.rule_ids):
                at = self.src.locate("examples", eid, "rule_ids", i, occurrence=n)
                rule = p.rule(rid)
                if rule is None:
                    self.add(
                        "D004",
                        at,
                        f"example `{eid}` lists rule `{rid}`, which does not exist",
                        _did_you_mean(rid, self.rule_ids),
                    )
                elif not (
                    p.is_under(rule.category_id, ex.category)
                    or p.is_under(ex.category, rule.category_id)
                ):
                    self.add(
                        "D008",
                        at,
                        f"example `{eid}` (category `{ex.category}`) lists rule `{rid}` of "
                        f"unrelated category `{rule.category_id}`",
                        "move the example to the rule's category, or list the rule that applies",
                    )
            if cat is not None:
                self.example_labels(ex, cat, n)

    def example_labels(self, ex: Example, cat: Category, n: int) -> None:
        eid = ex.id
        if (
            cat.expected_behavior is not Behavior.COMPLY
            and ex.side == "violating"
            and ex.expected_behavior is not cat.expected_behavior
        ):
            self.add(
                "X001",
                self.src.locate("examples", eid, "expected_behavior", occurrence=n),
                f"example `{eid}` expects `{ex.expected_behavior.value}` but its category "
                f"`{cat.id}` expects `{cat.expected_behavior.value}` for violating requests",
                "fix the label, or give this case its own subcategory or rule with that behaviour",
            )
        if ex.response is not None or ex.transcript is not None:
            judged = "response" if ex.response is not None else "transcript"
            # An agent's actions can break a line while it does what was asked, or after it says
            # no: X003 and X006 hold for a text response only.
            text_only = ex.transcript is None
            at = self.src.locate("examples", eid, "violates", occurrence=n)
            rb = ex.response_behavior
            if rb is None:
                self.add(
                    "X005",
                    self.src.locate("examples", eid, judged, occurrence=n),
                    f"example `{eid}` has a {judged} but no `response_behavior`",
                    "add `response_behavior:` (comply, partial or refuse) so the response can be "
                    "used to check graders and train on",
                )
            elif rb is Behavior.COMPLY and ex.side == "violating" and ex.violates is False:
                self.add(
                    "X002",
                    at,
                    f"example `{eid}`: the response complies with a request that should get "
                    f"`{ex.expected_behavior.value}`, yet `violates: false`",
                    "set `violates: true`, or correct `response_behavior` or `expected_behavior`",
                )
            elif text_only and rb is ex.expected_behavior and ex.violates is True:
                self.add(
                    "X003",
                    at,
                    f"example `{eid}`: the response does what is expected "
                    f"(`{rb.value}`), yet `violates: true`",
                    "set `violates: false`, or correct `response_behavior`",
                )
            elif text_only and rb is Behavior.REFUSE and ex.violates is True:
                self.add(
                    "X006",
                    at,
                    f"example `{eid}`: the response refuses, yet `violates: true`; a refusal never "
                    "violates (refusing an allowed request is over-refusal)",
                    "set `violates: false`, or correct `response_behavior`",
                )
        for i, r in enumerate(ex.responses):
            if (
                r.label is ResponseLabel.GOOD
                and r.behavior is not None
                and r.behavior is not ex.expected_behavior
            ):
                self.add(
                    "X004",
                    self.src.locate("examples", eid, "responses", i, "behavior", occurrence=n),
                    f"example `{eid}`: a GOOD response does `{r.behavior.value}` but the example "
                    f"expects `{ex.expected_behavior.value}`",
                    "label the response BAD, or correct its behaviour or the expected behaviour",
                )

    # D005, D007, V001 in ambiguity rules
    def precedence_and_ambiguity(self) -> None:
        for prec, key, n in _numbered(self.policy.precedence, "category"):
            named: list[tuple[str, tuple[str | int, ...]]] = [(prec.category, ("category",))]
            named += [(o, ("over", i)) for i, o in enumerate(prec.over)]
            for cid, path in named:
                if cid not in self.category_ids:
                    self.add(
                        "D005",
                        self.src.locate("precedence", key, *path, occurrence=n),
                        f"precedence names category `{cid}`, which does not exist",
                        _did_you_mean(cid, self.category_ids),
                    )
        for amb, aid, n in _numbered(self.policy.ambiguity, "id"):
            for i, cid in enumerate(amb.categories):
                if cid not in self.category_ids:
                    self.add(
                        "D007",
                        self.src.locate("ambiguity", aid, "categories", i, occurrence=n),
                        f"ambiguity rule `{aid}` names category `{cid}`, which does not exist",
                        _did_you_mean(cid, self.category_ids),
                    )
            self.vague(amb.resolve, self.src.locate("ambiguity", aid, "resolve", occurrence=n))

    # C001-C003
    def coverage(self) -> None:
        p = self.policy
        for _, cid, n in _numbered(p.categories, "id"):
            if n:
                continue
            sides = {e.side for e in p.examples if p.is_under(e.category, cid)}
            at = self.src.locate("categories", cid)
            for side, code in (("allowed", "C001"), ("violating", "C002")):
                if side not in sides:
                    what = "comply" if side == "allowed" else "refuse or partial"
                    self.add(
                        code,
                        at,
                        f"category `{cid}` has no {side}-side example (one expecting {what})",
                        f"add an example near the line that expects {what}",
                    )
        used = {rid for e in p.examples for rid in e.rule_ids}
        for _, rid, n in _numbered(p.rules, "id"):
            if n == 0 and rid not in used:
                self.add(
                    "C003",
                    self.src.locate("rules", rid),
                    f"no example exercises rule `{rid}`",
                    f"add an example near this line with `rule_ids: [{rid}]`",
                )

    # G001-G004
    def gates(self) -> None:
        gates = self.policy.gates
        limits = gates.under_refusal
        under_at = self._gate_location("under_refusal")
        used: dict[Severity, list[str]] = {}
        for cat in self.policy.categories:
            used.setdefault(cat.severity, []).append(cat.id)
        for tier in sorted(used, key=lambda s: s.rank):
            if tier not in limits:
                cats = ", ".join(used[tier])
                self.add(
                    "G001",
                    under_at,
                    f"severity tier `{tier.value}` is used by {cats} but has no `under_refusal` "
                    "gate",
                    f"add `{tier.value}: <max harmful-compliance rate>` under "
                    "`gates.under_refusal`",
                )
        tiers = sorted(limits, key=lambda s: s.rank)
        for lower_i, lower in enumerate(tiers):
            for higher in tiers[lower_i + 1 :]:
                if limits[higher] > limits[lower]:
                    self.add(
                        "G004",
                        self.src.locate_root("gates", "under_refusal", higher.value),
                        f"the `{higher.value}` tier allows {limits[higher]:g} harmful compliance, "
                        f"more than the less severe `{lower.value}` tier ({limits[lower]:g})",
                        "a more severe tier needs an equal or stricter limit",
                    )
        if gates.over_refusal is None:
            self.add(
                "G002",
                self._gate_location(None),
                "no `over_refusal` gate: refusing allowed requests is never checked at launch",
                "add `gates.over_refusal: <max over-refusal rate>`, e.g. 0.1",
            )
        if gates.grader_agreement is None:
            self.add(
                "G003",
                self._gate_location(None),
                "no `grader_agreement` gate: rates from an unvalidated grader can gate a launch",
                "add `gates.grader_agreement: {metric: cohen_kappa, min: 0.7}`",
            )

    def _gate_location(self, name: str | None) -> Location:
        node = self.src.root_node
        if node is not None and "gates" in node:
            gates_node = node["gates"]
            if name is not None and hasattr(gates_node, "get") and name in gates_node:
                return self.src.locate_root("gates", name)
            return self.src.locate_root("gates")
        return self.src.locate_root()

    # T001, T002
    def token_budget(self, budget: int) -> None:
        # The gpt-oss-safeguard user guide (ROOST and OpenAI, OpenAI Cookbook, 2025-10-29) finds
        # 400-600 tokens the best policy length and suggests compressing each policy of a
        # multi-category set to 300-600 tokens; beyond that the model "risks confusion". Every
        # category gets its own prompt; only its mandatory part (instructions, output contract,
        # the category and its rules) can push it over, the rest is dropped to fit.
        for cat in self.policy.categories:
            if self.src.count("categories", cat.id) > 1:
                continue
            prompt = compile_grader_prompt(self.policy, category=cat.id, budget=budget)
            where = self.src.locate("categories", cat.id)
            if prompt.mandatory_tokens > budget:
                self.add(
                    "T001",
                    where,
                    f"the grader prompt for `{cat.id}` needs about {prompt.mandatory_tokens} tokens "
                    f"before any example or context, {prompt.mandatory_tokens - budget} over the "
                    f"budget of {budget}; {self._longest_rule(cat.id)}",
                    "make the description and criteria concise, split the category, or raise "
                    "`grader_token_budget` (the gpt-oss-safeguard guide finds 400-600 tokens best)",
                )
                continue
            sides = {
                e.side for e in self.policy.examples if self.policy.is_under(e.category, cat.id)
            }
            missing: list[str] = sorted(sides - prompt.sides_shown())
            if missing:
                self.add(
                    "T002",
                    where,
                    f"the grader prompt for `{cat.id}` has no room for {_sides(missing)}: its "
                    f"mandatory part is about {prompt.mandatory_tokens} of the {budget} tokens",
                    "shorten the category's criteria or its shortest examples (prompt, response, "
                    "rationale), or raise `grader_token_budget`",
                )

    def _longest_rule(self, category_id: str) -> str:
        rules = self.policy.rules_for(category_id)
        if not rules:
            return (
                "it has no rules of its own: its description, subcategory lines and inherited "
                "rules take the room"
            )
        sized = [(count_tokens(_rule_text(r)), r.id) for r in rules]
        tokens, rule_id = max(sized, key=lambda t: t[0])
        return f"its longest rule is `{rule_id}` (about {tokens} tokens)"


def _sides(missing: list[str]) -> str:
    if len(missing) > 1:
        return "one example on each side of the line"
    return f"an example on the {missing[0]} side of the line"


def _rule_text(rule: Rule) -> str:
    return "\n".join([rule.title, *rule.violating, *rule.allowed, *rule.escalate, *rule.ambiguity])


_NOUNS = {
    "definitions": "definition",
    "categories": "category",
    "rules": "rule",
    "ambiguity": "ambiguity rule",
    "examples": "example",
}


def _where(loc: Location, base: Path) -> str:
    """`file:line`, the file relative to the root policy's folder when it is inside it."""
    if loc.file is None:
        return "<policy>"
    try:
        shown = str(loc.file.resolve().relative_to(base.resolve()))
    except ValueError:
        shown = str(loc.file)
    return f"{shown}:{loc.line}" if loc.line is not None else shown


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return f'"{text}"' if len(text) <= limit else f'"{text[: limit - 1]}…"'


def _did_you_mean(value: str, known: set[str]) -> str:
    close = difflib.get_close_matches(value, sorted(known), n=1)
    if close:
        return f"did you mean `{close[0]}`?"
    return "check the id against the policy's categories and rules"
