"""The Model Spec's Markdown: sections under `{#anchor key=value}` headings, and example blocks.

Parsed with markdown-it (CommonMark), so `#` lines inside fenced code (the spec has two, in code
samples) are not mistaken for headings. Positions are kept as 1-based line numbers for messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

_HEADING = re.compile(
    r"^(?P<title>.*?)\s*\{#(?P<anchor>[^\s}]+)(?P<attrs>(?:\s+[A-Za-z_][\w-]*=[^\s}]+)*)\s*\}\s*$"
)
_ATTR = re.compile(r"([A-Za-z_][\w-]*)=([^\s}]+)")
_EXAMPLE_TITLE = re.compile(r"^\*\*Example\*\*\s*:?\s*(?P<title>.*)$", re.S)
# What a line-based count sees as a heading, code blocks included (how the data README counts them).
HEADING_LINE = re.compile(r"^#{1,6}\s", re.M)
FOOTNOTE_REF = re.compile(r"\[\^(?P<id>[A-Za-z0-9_-]+)\]")
CROSS_REF = re.compile(r"\[\?\]\(#(?P<anchor>[^)\s]+)\)")


@dataclass
class ExampleBlock:
    """`**Example**: title` followed by a fenced block of `<role>` turns."""

    title: str
    line: int
    body: str
    body_line: int
    lines: tuple[int, int]  # 1-based, end exclusive: the title paragraph through the closing fence


@dataclass
class Section:
    """A heading and its own body (up to the next heading of any level)."""

    level: int
    title: str
    anchor: str | None
    attrs: dict[str, str]
    line: int
    end_line: int
    tokens: list[Token] = field(default_factory=list)
    parent: int | None = None
    examples: list[ExampleBlock] = field(default_factory=list)

    @property
    def authority(self) -> str | None:
        return self.attrs.get("authority")

    @property
    def tags(self) -> list[str]:
        raw = self.attrs.get("tags", "")
        return [t for t in raw.split(",") if t]


@dataclass
class Document:
    lines: list[str]
    sections: list[Section]
    preamble: list[Token]


def parse_tokens(text: str) -> list[Token]:
    return MarkdownIt("commonmark").parse(text)


def parse_document(text: str) -> Document:
    """Split a Model Spec into sections; each section's tokens stop at the next heading."""
    tokens = parse_tokens(text)
    lines = text.splitlines()
    sections: list[Section] = []
    preamble: list[Token] = []
    stack: list[int] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            level = int(tok.tag[1:])
            inline = tokens[i + 1].content
            line = (tok.map[0] if tok.map else 0) + 1
            title, anchor, attrs = split_heading(inline)
            while stack and sections[stack[-1]].level >= level:
                stack.pop()
            parent = stack[-1] if stack else None
            if sections:
                sections[-1].end_line = line
            sections.append(Section(level, title, anchor, attrs, line, len(lines) + 1, [], parent))
            stack.append(len(sections) - 1)
            i += 3  # heading_open, inline, heading_close
            continue
        (sections[-1].tokens if sections else preamble).append(tok)
        i += 1
    for section in sections:
        section.examples = find_examples(section.tokens, lines)
    return Document(lines, sections, preamble)


def split_heading(inline: str) -> tuple[str, str | None, dict[str, str]]:
    """`Title {#anchor authority=root}` -> (`Title`, `anchor`, `{"authority": "root"}`)."""
    m = _HEADING.match(inline.strip())
    if not m:
        return inline.strip(), None, {}
    attrs = dict(_ATTR.findall(m.group("attrs")))
    return m.group("title").strip(), m.group("anchor"), attrs


def find_examples(tokens: list[Token], lines: list[str]) -> list[ExampleBlock]:
    """Top-level `**Example**: ...` paragraphs and the fenced block right after each."""
    out: list[ExampleBlock] = []
    for i, tok in enumerate(tokens):
        if tok.type != "paragraph_open" or tok.level != 0 or i + 1 >= len(tokens):
            continue
        m = _EXAMPLE_TITLE.match(tokens[i + 1].content)
        if not m or not tok.map:
            continue
        fence = tokens[i + 3] if i + 3 < len(tokens) else None
        start = tok.map[0] + 1
        if fence is None or fence.type != "fence" or not fence.map:
            out.append(ExampleBlock(m.group("title").strip(), start, "", start, (start, start + 1)))
            continue
        end = fence.map[1] + 1
        out.append(
            ExampleBlock(
                m.group("title").strip(), start, fence.content, fence.map[0] + 2, (start, end)
            )
        )
    return out


def own_text(section: Section, lines: list[str]) -> str:
    """The section's own Markdown, without its heading, subsections and example blocks."""
    skip: set[int] = set()
    for ex in section.examples:
        skip.update(range(ex.lines[0], ex.lines[1]))
    kept = [
        lines[n - 1].rstrip()
        for n in range(section.line + 1, section.end_line)
        if n not in skip and n - 1 < len(lines)
    ]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def paragraphs(tokens: list[Token]) -> list[tuple[int, str]]:
    """Every paragraph's inline Markdown (list items included), with its 1-based line."""
    out: list[tuple[int, str]] = []
    for i, tok in enumerate(tokens):
        if tok.type == "paragraph_open" and i + 1 < len(tokens):
            line = (tok.map[0] if tok.map else 0) + 1
            out.append((line, tokens[i + 1].content))
    return out
