"""The linter's checks of action rules (codes A) and regulatory citations (codes R).

Each check yields `(code, location, message, hint)`; `policy.lint` turns them into findings.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Collection, Iterator, Mapping

from policylab.errors import Location
from policylab.policy.actions import pattern_regexes
from policylab.policy.frameworks import Framework, parse_citation
from policylab.policy.loader import SourceMap
from policylab.policy.schema import Category, Policy, Rule

Problem = tuple[str, Location, str, str | None]


def action_problems(
    policy: Policy, sources: SourceMap, tools: Collection[str] | None
) -> Iterator[Problem]:
    """A001 unknown tools (when `tools` is given), A002 regexes that do not compile, A003 action
    rules no pattern makes checkable."""
    seen: Counter[str] = Counter()
    known = sorted(tools) if tools is not None else None
    for rule in policy.rules:
        n = seen[rule.id]
        seen[rule.id] += 1
        if rule.is_action and not rule.actions:
            yield (
                "A003",
                sources.locate("rules", rule.id, "subject", occurrence=n),
                f"action rule `{rule.id}` has no `actions`: only a model or human grader can "
                "check it against a transcript",
                "add an `actions:` pattern (a tool call, its arguments or its result) so the "
                "`actions` grader can check it exactly",
            )
        for i, pattern in enumerate(rule.actions):
            steps: list[tuple[tuple[str | int, ...], str]] = (
                [(("tool",), pattern.tool)]
                if pattern.tool is not None
                else [(("sequence", j, "tool"), s.tool) for j, s in enumerate(pattern.steps)]
            )
            for path, tool in steps:
                if known is not None and tool not in known:
                    close = difflib.get_close_matches(tool, known, n=1)
                    hint = f"did you mean `{close[0]}`? " if close else ""
                    yield (
                        "A001",
                        sources.locate("rules", rule.id, "actions", i, *path, occurrence=n),
                        f"rule `{rule.id}` names tool `{tool}`, which is not among the declared "
                        "tools",
                        hint + f"declared tools: {', '.join(known) or '(none)'}",
                    )
            for path, regex in pattern_regexes(pattern):
                try:
                    re.compile(regex)
                except re.error as exc:
                    yield (
                        "A002",
                        sources.locate("rules", rule.id, "actions", i, *path, occurrence=n),
                        f"rule `{rule.id}`: the regular expression {regex!r} does not compile: "
                        f"{exc}",
                        "fix it (Python `re` syntax; quote it in YAML, and escape `\\` as `\\\\` "
                        "inside double quotes)",
                    )


def regulation_problems(
    policy: Policy, sources: SourceMap, frameworks: Mapping[str, Framework]
) -> Iterator[Problem]:
    """R001 references to provisions their framework does not list, R002 references to
    frameworks that are not loaded. Free-text citations are not checked."""
    owners: list[tuple[str, str, list[Category] | list[Rule]]] = [
        ("categories", "category", policy.categories),
        ("rules", "rule", policy.rules),
    ]
    for section, noun, items in owners:
        seen: Counter[str] = Counter()
        for owner in items:
            n = seen[owner.id]
            seen[owner.id] += 1
            for i, text in enumerate(owner.regulations):
                parsed = parse_citation(text)
                if parsed is None:
                    continue
                framework_id, provision_id = parsed
                at = sources.locate(section, owner.id, "regulations", i, occurrence=n)
                framework = frameworks.get(framework_id)
                if framework is None:
                    yield (
                        "R002",
                        at,
                        f"{noun} `{owner.id}` cites `{text}`, but no framework `{framework_id}` "
                        "is loaded, so it is not checked",
                        "pass its file with --frameworks FILE (loaded: "
                        f"{', '.join(sorted(frameworks)) or 'none'})",
                    )
                    continue
                if framework.resolve(provision_id) is None:
                    ids = [p.id for p in framework.provisions]
                    close = difflib.get_close_matches(provision_id, ids, n=1, cutoff=0.5)
                    hint = f"did you mean `{framework.id}:{close[0]}`? " if close else ""
                    yield (
                        "R001",
                        at,
                        f"{noun} `{owner.id}` cites `{text}`: {framework.title} lists no "
                        f"provision `{provision_id}`",
                        hint + f"use one of the {len(ids)} provisions of `{framework.id}`, or add "
                        "it to your framework file",
                    )
