"""Import the OpenAI Model Spec (github.com/openai/model_spec, CC0-1.0) from its Markdown source.

What becomes what:

- **Categories.** Every heading with an `{#anchor}` is a category. Ids follow the heading levels
  under a root `MS`: `## Follow all applicable instructions {#follow_all_applicable_instructions}`
  under `# The chain of command {#chain_of_command}` is
  `MS.chain_of_command.follow_all_applicable_instructions` (characters other than letters, digits
  and `_` become `_`). A section that moves to another parent between releases therefore changes
  id; its anchor, kept in `mappings["model_spec"]`, does not. The authority level is kept in
  `mappings["model_spec_authority"]` (and `tags=` in `model_spec_tags`). The description is the
  section's own Markdown (subsections and example blocks left out; `[?](#a)` cross-references get
  the target's title; footnote markers `[^id]` stay: they name the example files).
- **Severity** comes from the authority level, i.e. how binding the section is, not how much harm
  it prevents: root and platform (the 2025-02/04 name of root) -> critical, system -> high,
  developer -> medium, user and guideline -> low. A section without a level takes the highest tier
  of its subsections, or low.
- **Expected behaviour.** The spec is not a refusal taxonomy, so most sections are `comply`.
  Requests under `stay_in_bounds` (limits on what the assistant does), `risk_taxonomy` and
  `chatgpt_u18` are `partial` (the spec prefers safe completions to hard refusals since 2025-09),
  `prohibited_content` is `refuse`, and `transformation_exception` is `comply` again. The nearest
  section in that table wins.
- **Rules** (heuristic, see `_spec_rules`): in sections with an authority level, each paragraph or
  list item stating requirements is a rule `<category>.r<n>`. Prohibitions ("should not", "must
  never", ...) are its `violating` items; obligations ("should", "must") and permissions
  ("may"/"can" about the assistant) are its `allowed` items. When a paragraph has no prohibition,
  `violating` is derived mechanically ("Not doing what this requires: ...") because a rule must
  name what violates it. Sections without a level (overview, definitions, grouping headings) are
  context and yield no rules.
- **Examples.** Every `**Example**: title` block (in the spec, and in `examples/<footnote>.md`
  files linked by footnote ids `[^abcd]`) is an example whose turns are chat messages. Candidate
  replies in `<comparison>` become `responses`: GOOD -> good, BAD -> bad, and OK (acceptable, not
  ideal) -> good with the OK noted in its rationale. The expected behaviour of an example is a
  heuristic: if its first GOOD reply says "I can't/cannot/won't/am unable" in its first two
  sentences it is `refuse` (a short reply) or `partial` (a longer one that offers something else),
  if it has a GOOD reply otherwise `comply`, and with no graded reply (all the footnote files) the
  category's behaviour.
- **Definitions** are the `**Term**: ...` paragraphs of the `definitions` section.
- **Version.** The release date comes from `version=`, else from a `versions/<YYYY-MM-DD>/` folder,
  else from the newest entry of the `CHANGELOG.md` beside the file; it becomes the semantic version
  `YYYY.M.D`. Changelog entries up to that release fill `changelog`.

Dangling references (footnotes without an example file, example files without a footnote,
cross-references to unknown anchors) are listed in the report's `unresolved`, never raised.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from policylab.core import Behavior, Severity
from policylab.errors import InputError, Location, Problem
from policylab.policy.importers._report import ImportedPolicy, ImportReport, read_text
from policylab.policy.importers._spec_examples import Candidate, parse_turns, to_conversation
from policylab.policy.importers._spec_markdown import (
    CROSS_REF,
    FOOTNOTE_REF,
    HEADING_LINE,
    ExampleBlock,
    Section,
    find_examples,
    own_text,
    paragraphs,
    parse_document,
    parse_tokens,
)
from policylab.policy.importers._spec_rules import Requirement, requirements, sentences
from policylab.policy.schema import (
    Category,
    ChangelogEntry,
    Definition,
    Example,
    ExampleResponse,
    Owner,
    Policy,
    ResponseLabel,
    Rule,
)

ROOT_ID = "MS"
POLICY_ID = "openai-model-spec"
SOURCE_URL = "https://github.com/openai/model_spec"

SEVERITY_BY_AUTHORITY: dict[str, Severity] = {
    "root": Severity.CRITICAL,
    "platform": Severity.CRITICAL,
    "system": Severity.HIGH,
    "developer": Severity.MEDIUM,
    "user": Severity.LOW,
    "guideline": Severity.LOW,
}
BEHAVIOR_BY_ANCHOR: dict[str, Behavior] = {
    "risk_taxonomy": Behavior.PARTIAL,
    "stay_in_bounds": Behavior.PARTIAL,
    "prohibited_content": Behavior.REFUSE,
    "transformation_exception": Behavior.COMPLY,
    "chatgpt_u18": Behavior.PARTIAL,
}

_DATE = re.compile(r"^v?(?P<y>\d{4})[-.](?P<m>\d{1,2})[-.](?P<d>\d{1,2})$")
_CHANGELOG_HEADING = re.compile(r"^##\s+(?P<version>v?\d{4}\.\d{1,2}\.\d{1,2})\s*$", re.M)
_EXAMPLES_HEADER = re.compile(r"^Examples for \[\^(?P<id>[^\]]+)\] in (?P<title>.*?):?\s*$")
_TERM = re.compile(r"^\*\*(?P<term>[^*]+?):?\*\*:?\s*(?P<rest>.*)$", re.S)
_LINK_TO_ANCHOR = re.compile(r"\]\(#(?P<anchor>[^)\s]+)\)")
_REFUSAL = re.compile(
    r"\bI\s*(?:can['’]?t|cannot|won['’]t|am unable|['’]m unable|am not able|['’]m not able)\b", re.I
)
_SHORT_REFUSAL_CHARS = 160
_Cleaner = Callable[[str], str]  # footnotes removed, cross-references resolved
_TITLE_CHARS = 100


@dataclass
class _Node:
    section: Section
    id: str
    severity: Severity
    behavior: Behavior


def import_model_spec(
    path: Path,
    *,
    examples_dir: Path | None = None,
    version: str | None = None,
    changelog: Path | None = None,
) -> Policy:
    """The Model Spec at `path` as a policy; see the module docstring for what becomes what."""
    return import_model_spec_with_report(
        path, examples_dir=examples_dir, version=version, changelog=changelog
    ).policy


def import_model_spec_with_report(
    path: Path,
    *,
    examples_dir: Path | None = None,
    version: str | None = None,
    changelog: Path | None = None,
) -> ImportedPolicy:
    """The Model Spec as a policy, with a report of counts, dangling references and warnings.

    `examples_dir` is the spec repository's `examples/` folder (files named by footnote id);
    `version` a release date (`2025-12-18`) when neither the folder nor a changelog tells it;
    `changelog` the release notes (default: `CHANGELOG.md` beside the spec, if there is one).
    """
    path = Path(path)
    text = read_text(path, what="Model Spec")
    report = ImportReport("model-spec", path)
    doc = parse_document(text)
    sections = doc.sections
    if not sections:
        hint = "give the spec's model_spec.md (headings such as `# Overview {#overview}`)"
        raise InputError([Problem("no headings found", Location(path), hint)], what="Model Spec")
    if any(tok.type != "paragraph_close" and tok.content.strip() for tok in doc.preamble):
        report.warn("text before the first heading is not imported", file=path, line=1)

    nodes = _nodes(sections, path, report)
    titles: dict[str, str] = {
        n.section.anchor: n.section.title for n in nodes if n.section.anchor is not None
    }

    def clean(markdown: str) -> str:
        return _resolve_cross_refs(FOOTNOTE_REF.sub("", markdown), titles)

    categories = [_root_category(nodes)]
    rules: list[Rule] = []
    examples: list[Example] = []
    footnotes: dict[str, _Node] = {}
    for node in nodes:
        section = node.section
        body = own_text(section, doc.lines)
        categories.append(_category(node, _resolve_cross_refs(body, titles)))
        if section.authority:
            reqs = requirements(paragraphs(section.tokens), clean)
            rules.extend(_rule(node, f"r{i}", req) for i, req in enumerate(reqs, start=1))
        for ex in section.examples:
            example = _example(
                ex, node, categories[-1], path, clean, report, source="model_spec.md"
            )
            if example is not None:
                examples.append(example)
        for ref in dict.fromkeys(m.group("id") for m in FOOTNOTE_REF.finditer(body)):
            if ref in footnotes:
                report.warn(
                    f"footnote [^{ref}] is used in two sections", file=path, line=section.line
                )
            footnotes.setdefault(ref, node)

    spec_examples = len(examples)
    if examples_dir is not None:
        examples.extend(
            _footnote_examples(Path(examples_dir), footnotes, titles, categories, report)
        )
    numbered = _dedupe_ids(examples)

    report.unresolved["cross_references"] = sorted(
        {m.group("anchor") for m in _LINK_TO_ANCHOR.finditer(text)} - set(titles)
    )

    release, entries = _release(path, version, changelog, report)
    semver = f"{release.year}.{release.month}.{release.day}" if release else "0.0.0"
    definitions = _definitions(nodes, doc.lines, clean)
    policy = Policy(
        id=POLICY_ID,
        version=semver,
        title=f"OpenAI Model Spec ({release.isoformat()})" if release else "OpenAI Model Spec",
        scope=_scope(path, release),
        owners=[Owner(name="OpenAI", role="publisher of the Model Spec (CC0-1.0)")],
        changelog=[e for e in entries if release is None or (e.date and e.date <= release)],
        definitions=definitions,
        categories=categories,
        rules=rules,
        examples=examples,
    )

    _count(report, text, sections, policy, spec_examples=spec_examples, numbered=numbered)
    if examples_dir is not None:
        report.counts["example_files"] = len(list(Path(examples_dir).glob("*.md")))
    report.counts["footnotes"] = len(footnotes)
    return ImportedPolicy(policy, report)


def _count(
    report: ImportReport,
    text: str,
    sections: list[Section],
    policy: Policy,
    *,
    spec_examples: int,
    numbered: int,
) -> None:
    counts = report.counts
    counts["heading_lines"] = len(HEADING_LINE.findall(text))
    counts["headings"] = len(sections)
    counts["headings_in_code_blocks"] = counts["heading_lines"] - len(sections)
    counts["anchors"] = sum(1 for s in sections if s.anchor)
    counts["sections_with_authority"] = sum(1 for s in sections if s.authority)
    counts["categories"] = len(policy.categories)
    counts["rules"] = len(policy.rules)
    counts["definitions"] = len(policy.definitions)
    counts["examples_in_spec"] = spec_examples
    counts["examples_from_files"] = len(policy.examples) - spec_examples
    counts["examples"] = len(policy.examples)
    counts["example_ids_numbered"] = numbered
    counts["responses"] = sum(len(e.responses) for e in policy.examples)
    for s in sections:
        if s.authority:
            report.tally("authority", s.authority)
    for c in policy.categories[1:]:
        report.tally("expected_behavior", c.expected_behavior.value)
    for e in policy.examples:
        report.tally("example_expected_behavior", e.expected_behavior.value)


def _nodes(sections: list[Section], path: Path, report: ImportReport) -> list[_Node]:
    """Ids, severities and behaviours for every section, following the heading hierarchy."""
    ids: list[str] = []
    seen: set[str] = set()
    anchors: Counter[str] = Counter(s.anchor for s in sections if s.anchor)
    for s in sections:
        if s.anchor is None:
            report.warn(
                f"heading {s.title!r} has no {{#anchor}}: id made from its title",
                file=path,
                line=s.line,
            )
        elif anchors[s.anchor] > 1:
            report.warn(
                f"anchor #{s.anchor} is used by {anchors[s.anchor]} headings",
                file=path,
                line=s.line,
            )
        segment = re.sub(r"[^A-Za-z0-9_]", "_", s.anchor or s.title.lower()).strip("_") or "section"
        base = f"{ids[s.parent] if s.parent is not None else ROOT_ID}.{segment}"
        cid, n = base, 2
        while cid in seen:
            cid, n = f"{base}_{n}", n + 1
        seen.add(cid)
        ids.append(cid)
        if s.authority and s.authority not in SEVERITY_BY_AUTHORITY:
            known = ", ".join(SEVERITY_BY_AUTHORITY)
            report.warn(
                f"unknown authority level {s.authority!r} (known: {known}): severity low",
                file=path,
                line=s.line,
            )

    severities: list[Severity | None] = [
        SEVERITY_BY_AUTHORITY.get(s.authority, Severity.LOW) if s.authority else None
        for s in sections
    ]
    for i in reversed(range(len(sections))):  # children come after their parents
        parent = sections[i].parent
        own = severities[i] or Severity.LOW
        severities[i] = own
        if parent is not None and sections[parent].authority is None:
            current = severities[parent]
            if current is None or own.rank > current.rank:
                severities[parent] = own

    nodes: list[_Node] = []
    for i, s in enumerate(sections):
        behavior = Behavior.COMPLY
        j: int | None = i
        while j is not None:
            anchor = sections[j].anchor
            if anchor in BEHAVIOR_BY_ANCHOR:
                behavior = BEHAVIOR_BY_ANCHOR[anchor]
                break
            j = sections[j].parent
        nodes.append(_Node(s, ids[i], severities[i] or Severity.LOW, behavior))
    return nodes


def _root_category(nodes: list[_Node]) -> Category:
    top = max((n.severity for n in nodes), key=lambda s: s.rank, default=Severity.LOW)
    return Category(
        id=ROOT_ID,
        title="OpenAI Model Spec",
        description=(
            "The whole Model Spec. Its top-level sections are the categories below; each keeps its "
            "anchor in `mappings.model_spec`."
        ),
        severity=top,
        expected_behavior=Behavior.COMPLY,
    )


def _category(node: _Node, body: str) -> Category:
    s = node.section
    mappings: dict[str, list[str]] = {}
    if s.anchor:
        mappings["model_spec"] = [s.anchor]
    if s.authority:
        mappings["model_spec_authority"] = [s.authority]
    if s.tags:
        mappings["model_spec_tags"] = s.tags
    description = (
        body or f"{s.title}: a grouping section with no text of its own; see its subsections."
    )
    return Category(
        id=node.id,
        title=s.title,
        description=description,
        severity=node.severity,
        expected_behavior=node.behavior,
        mappings=mappings,
    )


def _rule(node: _Node, suffix: str, req: Requirement) -> Rule:
    violating = list(req.prohibitions)
    if not violating:
        violating = [f"Not doing what this requires: {s}" for s in req.obligations] or [
            f"Refusing or withholding what this permits: {s}" for s in req.permissions
        ]
    return Rule(
        id=f"{node.id}.{suffix}",
        title=_shorten(req.sentences[0]),
        allowed=req.obligations + req.permissions,
        violating=violating,
    )


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) <= _TITLE_CHARS:
        return flat
    cut = flat[:_TITLE_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", re.sub(r"\]\([^)]*\)", "]", text.lower()))
    slug = "-".join(words)[:60].rstrip("-")
    return slug or "example"


def _example(
    block: ExampleBlock,
    node: _Node,
    category: Category,
    file: Path,
    clean: _Cleaner,
    report: ImportReport,
    *,
    source: str,
    footnote: str | None = None,
) -> Example | None:
    where = f"example {block.title[:50]!r}"
    if not block.body.strip():
        report.warn(f"{where} has no ```xml block after it: left out", file=file, line=block.line)
        return None
    turns, problems = parse_turns(block.body)
    conversation = to_conversation(turns)
    for line, message in problems + conversation.problems:
        report.warn(f"{where}: {message}", file=file, line=block.body_line + line - 1)
    if not conversation.messages:
        report.warn(f"{where} has no conversation turns: left out", file=file, line=block.line)
        return None
    responses = [r for c in conversation.candidates if (r := _response(c, clean)) is not None]
    for c in conversation.candidates:
        report.tally("response_label", c.label)
    title = clean(block.title).strip() or "untitled"
    good = [c.why for c in conversation.candidates if c.label == "GOOD" and c.why]
    rationale = f"Model Spec example “{title}” under “{node.section.title}”."
    if good:
        rationale += " A good reply: " + "; ".join(clean(g) for g in good) + "."
    tags = ["model_spec", f"source:{source}"] + ([f"footnote:{footnote}"] if footnote else [])
    anchor = node.id.rsplit(".", 1)[-1]
    base = f"ms.{anchor}.{footnote}" if footnote else f"ms.{anchor}"
    return Example(
        id=f"{base}.{_slug(block.title)}",
        category=category.id,
        messages=conversation.messages,
        expected_behavior=_expected_behavior(conversation.candidates, category.expected_behavior),
        responses=responses,
        rationale=rationale,
        tags=tags,
    )


def _response(candidate: Candidate, clean: _Cleaner) -> ExampleResponse | None:
    if not candidate.text:
        return None
    notes: list[str] = []
    if candidate.label == "OK":
        notes.append("OK in the spec: acceptable, not the best reply")
    if candidate.ref:
        notes.append(clean(f"judged against [?](#{candidate.ref})"))
    if candidate.why:
        notes.append(clean(candidate.why))
    if candidate.recipient:
        notes.append(f"sent to the tool `{candidate.recipient}`")
    label = ResponseLabel.BAD if candidate.label == "BAD" else ResponseLabel.GOOD
    return ExampleResponse(label=label, text=candidate.text, rationale="; ".join(notes) or None)


def _expected_behavior(candidates: list[Candidate], default: Behavior) -> Behavior:
    good = next((c for c in candidates if c.label == "GOOD"), None)
    good = good or next((c for c in candidates if c.label == "OK"), None)
    if good is None or not good.text:
        return default
    opening = " ".join(sentences(good.text)[:2])
    if not _REFUSAL.search(opening):
        return Behavior.COMPLY
    return Behavior.REFUSE if len(good.text) <= _SHORT_REFUSAL_CHARS else Behavior.PARTIAL


def _footnote_examples(
    folder: Path,
    footnotes: dict[str, _Node],
    titles: dict[str, str],
    categories: list[Category],
    report: ImportReport,
) -> list[Example]:
    if not folder.is_dir():
        hint = "give the spec repository's examples/ folder (files named <footnote id>.md)"
        raise InputError(
            [Problem("not a folder", Location(folder), hint)], what="Model Spec examples"
        )
    by_id = {c.id: c for c in categories}
    files = {f.stem: f for f in sorted(folder.glob("*.md"))}
    report.unresolved["footnotes_without_file"] = sorted(set(footnotes) - set(files))
    report.unresolved["files_without_footnote"] = sorted(set(files) - set(footnotes))

    def clean(markdown: str) -> str:
        return _resolve_cross_refs(FOOTNOTE_REF.sub("", markdown), titles)

    out: list[Example] = []
    for ref, file in files.items():
        node = footnotes.get(ref)
        if node is None:
            continue
        text = read_text(file, what="Model Spec example file")
        first = text.splitlines()[0] if text else ""
        header = _EXAMPLES_HEADER.match(first)
        if header is None:
            report.warn(
                "expected a first line `Examples for [^id] in <section>:`", file=file, line=1
            )
        elif header.group("id") != ref:
            report.warn(
                f"the header names [^{header.group('id')}], the file name {ref}", file=file, line=1
            )
        elif header.group("title") != node.section.title:
            report.warn(
                f"the header names section {header.group('title')!r}; the footnote is in "
                f"{node.section.title!r}",
                file=file,
                line=1,
            )
        blocks = find_examples(parse_tokens(text), text.splitlines())
        if not blocks:
            report.warn("no **Example** blocks found", file=file, line=1)
        category = by_id[node.id]
        for block in blocks:
            example = _example(
                block,
                node,
                category,
                file,
                clean,
                report,
                source=f"examples/{file.name}",
                footnote=ref,
            )
            if example is not None:
                out.append(example)
    return out


def _dedupe_ids(examples: list[Example]) -> int:
    """Number repeated example ids `-2`, `-3`, ... (titles repeat within a section); how many."""
    seen: Counter[str] = Counter()
    numbered = 0
    for i, example in enumerate(examples):
        seen[example.id] += 1
        if seen[example.id] > 1:
            examples[i] = example.model_copy(update={"id": f"{example.id}-{seen[example.id]}"})
            numbered += 1
    return numbered


def _resolve_cross_refs(markdown: str, titles: dict[str, str]) -> str:
    def title(m: re.Match[str]) -> str:
        anchor = m.group("anchor")
        return f"[{titles.get(anchor) or anchor}](#{anchor})"

    return CROSS_REF.sub(title, markdown)


def _definitions(nodes: list[_Node], lines: list[str], clean: _Cleaner) -> list[Definition]:
    """`**Term**: text` paragraphs of the `definitions` section, each up to the next term."""
    node = next((n for n in nodes if n.section.anchor == "definitions"), None)
    if node is None:
        return []
    section = node.section
    starts: list[tuple[int, str]] = []
    for i, tok in enumerate(section.tokens):
        if tok.type == "paragraph_open" and tok.level == 0 and tok.map:
            m = _TERM.match(section.tokens[i + 1].content)
            if m and not section.tokens[i + 1].content.startswith("**Example**"):
                starts.append((tok.map[0] + 1, m.group("term").strip()))
    skip = {n for ex in section.examples for n in range(*ex.lines)}
    out: list[Definition] = []
    for k, (line, term) in enumerate(starts):
        end = starts[k + 1][0] if k + 1 < len(starts) else section.end_line
        body = "\n".join(lines[n - 1].rstrip() for n in range(line, end) if n not in skip)
        m = _TERM.match(body.strip())
        text = clean(m.group("rest") if m else body)
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        if text:
            out.append(Definition(term=term, definition=text))
    return out


def _release(
    path: Path, version: str | None, changelog: Path | None, report: ImportReport
) -> tuple[dt.date | None, list[ChangelogEntry]]:
    entries: list[ChangelogEntry] = []
    notes = changelog if changelog is not None else path.parent / "CHANGELOG.md"
    if changelog is not None or notes.exists():
        entries = _changelog(notes)
    if version is not None:
        date = _parse_date(version)
        if date is None:
            hint = "give the release date, e.g. 2025-12-18"
            raise InputError(
                [Problem(f"not a release date: {version!r}", Location(path), hint)],
                what="Model Spec",
            )
        return date, entries
    folder = _parse_date(path.parent.name)
    if folder is not None:
        return folder, entries
    if entries and entries[0].date:
        return entries[0].date, entries
    report.warn(
        "release date unknown (no versions/<date>/ folder, no CHANGELOG.md): version 0.0.0; "
        "pass version=YYYY-MM-DD",
        file=path,
    )
    return None, entries


def _parse_date(text: str) -> dt.date | None:
    m = _DATE.match(text.strip())
    if not m:
        return None
    try:
        return dt.date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
    except ValueError:
        return None


def _changelog(path: Path) -> list[ChangelogEntry]:
    """`## vYYYY.MM.DD` sections of the spec's CHANGELOG.md, newest first as written."""
    text = read_text(path, what="Model Spec changelog")
    heads = list(_CHANGELOG_HEADING.finditer(text))
    out: list[ChangelogEntry] = []
    for i, head in enumerate(heads):
        date = _parse_date(head.group("version"))
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        summary = "\n".join(line.rstrip() for line in text[head.end() : end].strip().splitlines())
        if date is None or not summary:
            continue
        out.append(
            ChangelogEntry(
                version=f"{date.year}.{date.month}.{date.day}",
                date=date,
                summary=summary,
                author="OpenAI",
            )
        )
    return out


def _scope(path: Path, release: dt.date | None) -> str:
    when = f"release {release.isoformat()}" if release else "release unknown"
    return (
        f"The OpenAI Model Spec ({when}): the behaviour OpenAI intends for the models behind its "
        f"products, imported from `{path.name}` ({SOURCE_URL}, CC0-1.0).\n\n"
        "Categories are the spec's sections (`MS.<anchor>...`, following the headings). Severities "
        "follow each section's authority level; expected behaviours, rules and example labels are "
        "derived from the wording by heuristics (see `policylab.policy.importers.model_spec`), so "
        "review them before grading against this policy."
    )
