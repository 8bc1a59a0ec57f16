"""The one Jinja2 environment for the HTML and Markdown templates in `policylab/templates/`: the
policy compilers (labelling guide, grader prompt), the reports and the agent reports.

`.html.j2` templates are autoescaped; a missing variable is an error. Filters: `markdown` and
`markdown_inline` (safe Markdown to HTML), `fenced` (text shown literally in Markdown), `action` (an
action rule's pattern in words). (The grader prompts, plain text, have their own in
`graders/_render.py`.)
"""

from __future__ import annotations

import functools
import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup

from policylab.policy.actions import describe_pattern


@functools.cache
def _markdown() -> MarkdownIt:
    # Raw HTML and images are off: the guide must stay self-contained and safe to open.
    return MarkdownIt("commonmark", {"html": False}).disable("image")


def markdown_block(text: str | None) -> Markup:
    """Markdown as HTML (paragraphs, lists, emphasis, code, links)."""
    return Markup(_markdown().render(text or ""))


def markdown_inline(text: str | None) -> Markup:
    """Markdown as inline HTML, for one-line fields such as a rule's criteria."""
    return Markup(_markdown().renderInline(text or ""))


def fenced(text: str | None) -> str:
    """Text as a fenced Markdown code block, shown literally whatever Markdown it contains."""
    body = text or ""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("policylab", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["markdown"] = markdown_block
    env.filters["markdown_inline"] = markdown_inline
    env.filters["fenced"] = fenced
    env.filters["action"] = describe_pattern
    return env


def render(name: str, **context: Any) -> str:
    """Render `templates/policy/<name>`."""
    return environment().get_template(f"policy/{name}").render(**context)
